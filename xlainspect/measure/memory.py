"""What a compiled program holds in memory, from XLA's buffer assignment, and the largest batch that fits a device.

The seed found each framework's largest trainable batch by doubling it until the process ran out of memory. XLA
knows the answer at compile time: argument, output, alias and temporary bytes of the compiled program. Reading
those is faster, cannot crash the machine, and works for a GPU the user does not have (deviceless compilation).

The peak a program needs on its device is estimated as arguments + outputs - aliased bytes + temporaries. That is
XLA's own accounting of the buffers it allocates; it leaves out what the framework's runtime adds around a step (its
allocator's caching and fragmentation, the code, other live arrays), which the CPU check against a real run measures.

The results are the records of :mod:`xlainspect.measure.records` (``memory --json`` and the curve CSV are written
and read back there); they are re-exported here.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xlainspect.analysis.buffers import BufferValue, largest_temporaries, parse_buffer_assignment
from xlainspect.errors import InputError
from xlainspect.measure.records import (
    CURVE_COLUMNS,
    CurvePoint,
    FrameworkMemory,
    MaxBatch,
    OwnedBuffer,
    PeakCheck,
    csv_text,
)
from xlainspect.runners.children import (
    ChildFailed,
    NotProvided,
    child_python,
    dump_flags,
    framework_python,
    run_child,
    skip_unprovided,
)
from xlainspect.runners.intervals import union_length
from xlainspect.runners.protocol import BisectResult, CompiledMemory, MeasuredStep, MemoryFigures, MemoryRequest

if TYPE_CHECKING:
    from xlainspect.programs import ProgramChoice
    from xlainspect.runners.gpu_targets import GpuTarget

__all__ = ["FrameworkMemory", "MaxBatch", "MemoryFigures", "OwnedBuffer", "PeakCheck", "check_peaks", "curve_stem",
           "device_limit", "max_batch", "memory_report", "parse_size", "write_curve"]

_SIZE_RE = re.compile(r"^\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*$")


def parse_size(text: str) -> int:
    """``80GiB``, ``80GB``, ``512M``, ``1e9`` -> bytes (binary units for ``Ki``/``Mi``/``Gi``, decimal otherwise).

    Raises:
        InputError: not a size.
    """
    match = _SIZE_RE.match(text)
    if not match:
        raise InputError(f"--device-memory {text!r}: give a size such as 80GiB, 40GB or 17179869184")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit.upper() or " "))


def _route(framework: str, backend: str, target: GpuTarget | None) -> str:
    front = "TF front end, JAX's XLA" if framework == "tf" else "JAX"
    if target is not None:
        return f"{front}, deviceless for {target.name} ({target.description})"
    return f"{front}, on this machine's {'GPU' if backend == 'gpu' else 'CPU'}"


def _request(program: str, framework: str, backend: str, target: GpuTarget | None, mode: str = "analyse",
             batch_size: int | None = None, dump_dir: str | None = None, limit: int | None = None,
             start: int | None = None, resolution: int | None = None) -> MemoryRequest:
    """A request to a memory child that compiles deviceless for ``target``, or on this machine's GPU or CPU."""
    return MemoryRequest(program, framework, mode, batch_size, target.config if target is not None else None,
                         target is None and backend == "gpu", dump_dir, limit, start, resolution=resolution)


def _targets(program: str, backend: str, target: str | None) -> tuple[ProgramChoice, GpuTarget | None]:
    from xlainspect.programs import choose_program
    from xlainspect.runners.capture import gpu_visible
    from xlainspect.runners.gpu_targets import DEFAULT_TARGET, gpu_target

    choice = choose_program(program)
    if backend not in ("cpu", "gpu"):
        raise InputError(f"unknown backend {backend!r}; choose cpu or gpu")
    deviceless = backend == "gpu" and (target is not None or not gpu_visible())
    return choice, gpu_target(target or DEFAULT_TARGET) if deviceless else None


def memory_report(program_name: str, frameworks: Sequence[str] = ("jax", "tf"), backend: str = "cpu",
                  batch_size: int | None = None, target: str | None = None, most: int = 10,
                  progress: Callable[[str], None] | None = None,
                  python: str | None = None) -> tuple[list[FrameworkMemory], list[str]]:
    """Each framework's compile-time memory figures, largest temporaries and per-example-gradient bytes.

    Args:
        python: the interpreter the frameworks run under (another environment's jax, say); None for
            ``$XLAINSPECT_PYTHON`` or xlainspect's own.

    Returns:
        The figures per framework, and the failures (one line each).

    Raises:
        InputError: unknown program, backend or target.
    """
    program, gpu = _targets(program_name, backend, target)
    batch_size = program.batch_size(batch_size)
    interpreter = child_python(python)
    report = progress or (lambda line: None)
    results, failures = [], []
    for framework in frameworks:
        if framework == "torch_xla":
            try:
                results.append(_torch_xla_memory(program, batch_size, backend, gpu, most, report, python))
            except ChildFailed as e:
                failures.append(str(e))
            continue
        with tempfile.TemporaryDirectory(prefix="xlainspect-memory-") as dump:
            request = _request(program.spec, framework, backend, gpu, batch_size=batch_size, dump_dir=dump)
            try:
                result = run_child(request, CompiledMemory, report, "compiling",
                                   xla_flags=dump_flags(dump),
                                   backend="gpu" if request.on_gpu else "cpu", python=interpreter)
            except NotProvided as e:
                if (failure := skip_unprovided(framework, frameworks, program_name, report, e)) is not None:
                    failures.append(failure)
                continue
            except ChildFailed as e:
                failures.append(str(e))
                continue
        figures = result.figures
        largest, per_example = _owners(program, figures.batch_size, result.buffer_assignment, result.module_text,
                                       most)
        results.append(FrameworkMemory(framework, _route(framework, backend, gpu), result.device, result.module,
                                       figures, largest, per_example, library_fusions(result.module_text)))
    return results, failures


def _torch_xla_memory(program: ProgramChoice, batch_size: int | None, backend: str, gpu: GpuTarget | None, most: int,
                      report: Callable[[str], None], python: str | None) -> FrameworkMemory:
    """PyTorch/XLA's figures, from the buffer assignment its own XLA dumps: PyTorch/XLA has no memory analysis of
    its own, and its module is what it compiles, so its XLA's accounting is the one that holds.

    Arguments are the entry's parameters, outputs the bytes of the entry's result, temporaries everything else XLA
    allocates for the step (what JAX's ``memory_analysis`` calls them: a live-out allocation also holds the
    temporaries XLA packed into it before the result was written); nothing is aliased (PyTorch/XLA donates no
    buffers to a ``torch_xla.compile``'d step). The three add up to the buffer assignment's "Total bytes used".

    Raises:
        InputError: a GPU backend (PyTorch runs on the CPU here).
        ChildFailed: the PyTorch/XLA child failed.
    """
    from xlainspect.hlo import parse_hlo
    from xlainspect.hlo.dump_folder import dumped_modules, result_arrays
    from xlainspect.runners.protocol import CompileRequest, CompileResult

    if backend != "cpu" or gpu is not None:
        raise InputError("torch_xla: xlainspect runs PyTorch/XLA on the CPU only; use --backend cpu (or compare "
                         "deviceless GPU modules with 'xlainspect dump --framework torch_xla --backend gpu')")
    with tempfile.TemporaryDirectory(prefix="xlainspect-memory-") as dump:
        result = run_child(CompileRequest(program.spec, "torch_xla", batch_size), CompileResult, report, "compiling",
                           xla_flags=dump_flags(dump), python=framework_python("torch_xla", python))
        named = [m for m in dumped_modules(dump)  # the step's modules, not its <name>_clear_pending helpers
                 if m.after is not None and result.function_name in m.name and not m.helper]
        if not named:
            raise ChildFailed(f"torch_xla: XLA wrote no module named after {result.function_name}")
        # The step itself: the fewest results (a recompile may return leftover intermediates), newest on a tie.
        module = min(named, key=lambda m: (result_arrays(m), -m.number))
        assert module.after is not None
        module_text = module.after.read_text(encoding="utf-8")
        assignment_file = module.after.with_name(module.after.name.replace(".txt", "-buffer-assignment.txt"))
        assignment = assignment_file.read_text(encoding="utf-8") if assignment_file.exists() else ""
    if not assignment:
        raise ChildFailed(f"torch_xla: XLA dumped no buffer assignment for {module.name}")
    allocations = parse_buffer_assignment(assignment)
    argument = sum(a.size for a in allocations if "parameter" in a.kinds)
    output = sum(leaf.byte_size or 0 for leaf in parse_hlo(module_text).entry.root.shape.leaves())
    allocated = sum(a.size for a in allocations
                    if not any(word in a.kinds for word in ("parameter", "constant", "thread-local")))
    figures = MemoryFigures(batch_size, argument, output, 0, max(allocated - output, 0))
    largest, per_example = _owners(program, batch_size, assignment, module_text, most)
    return FrameworkMemory("torch_xla", "PyTorch/XLA front end and its own XLA's buffer assignment, on this "
                           "machine's CPU", result.device, module.name, figures, largest, per_example,
                           library_fusions(module_text))


def library_fusions(module_text: str) -> int:
    """How many XLA:CPU library fusions (YNNPACK, XNNPACK) the module launches: each names its kind once, in its
    backend config (``"kind":"__ynn_fusion"``); their scratch is memory the buffer assignment does not hold."""
    return len(re.findall(r'"kind":\s*"__(?:ynn|xnn)_fusion"', module_text))


def _owners(program: ProgramChoice, batch: int | None, assignment: str, module_text: str,
            most: int) -> tuple[tuple[OwnedBuffer, ...], int | None]:
    from xlainspect.hlo import parse_hlo

    allocations = parse_buffer_assignment(assignment)
    op_names: dict[str, str] = {}
    if module_text:
        for instruction in parse_hlo(module_text).instructions():
            metadata = instruction.metadata
            op_names[instruction.name] = metadata.op_name if metadata is not None else ""
    gradient_shapes = _per_example_shapes(program, batch)
    per_example = None
    if program.has_per_example_gradients:
        # Values in one allocation reuse its bytes over time: count the bytes that ever hold a per-example
        # gradient (the union of their ranges), so the figure never exceeds the temporaries it is part of.
        per_example = int(sum(union_length([(v.offset, v.offset + v.size) for v in a.values
                                         if _dims(v) in gradient_shapes and not v.shape.startswith("(")])
                          for a in allocations if a.is_temporary))

    def owned(value: BufferValue) -> OwnedBuffer:
        return OwnedBuffer(value.instruction + value.index, value.shape.split("{")[0], value.size,
                           op_names.get(value.instruction, ""), _dims(value) in gradient_shapes)

    return tuple(owned(v) for v in largest_temporaries(allocations, most)), per_example


def _dims(value: BufferValue) -> tuple[int, ...]:
    inside = value.shape.split("[", 1)[1].split("]", 1)[0] if "[" in value.shape else ""
    return tuple(sorted(int(d) for d in inside.split(",") if d.strip().isdigit()))


def _per_example_shapes(program: ProgramChoice, batch: int | None) -> set[tuple[int, ...]]:
    """Sorted dims of every weight's shape with the batch added: how a per-example weight gradient buffer looks.

    Only weights (rank 2 and up): a per-example bias gradient, ``[batch, features]``, has the shape of the layer's
    activations, so a shape cannot tell the two apart. Weights are where the bytes are anyway. A buffer may also
    hold them with the batch folded into the first dimension: TF's vectorized embedding gradient of a ``10004 x 16``
    table is ``f32[B * 10004, 16]``.
    """
    if batch is None or program.builtin is None or not program.has_per_example_gradients:
        return set()
    weights = [spec.shape for spec in program.builtin.input_specs(batch)
               if spec.role == "parameter" and len(spec.shape) >= 2]
    return ({tuple(sorted((*shape, batch))) for shape in weights}
            | {tuple(sorted((batch * shape[0], *shape[1:]))) for shape in weights})


def max_batch(program_name: str, device_memory: int, frameworks: Sequence[str] = ("jax", "tf"),
              backend: str = "cpu", target: str | None = None, start: int = 16,
              progress: Callable[[str], None] | None = None, python: str | None = None,
              resolution: int | None = None) -> tuple[list[MaxBatch], list[str]]:
    """Bisects on the batch size with compile-time figures only, per framework, in one child process each.

    Args:
        python: the interpreter the frameworks run under (another environment's jax, say); None for
            ``$XLAINSPECT_PYTHON`` or xlainspect's own.
        resolution: stop when the batch that fits and the smallest known not to are at most this many examples
            apart, as the seed's ``--thresh`` did; None for 0.1% of the batch that fits.

    Raises:
        InputError: a program without a batch, a bad limit, start or resolution, or as :func:`memory_report`.
    """
    program, gpu = _targets(program_name, backend, target)
    program.require_batch("'memory max-batch' applies to programs with a batch")
    if device_memory <= 0 or start < 1:
        raise InputError("--device-memory must be positive and the starting batch at least 1")
    if resolution is not None and resolution < 1:
        raise InputError(f"--resolution {resolution}: give a whole number of examples, at least 1")
    interpreter = child_python(python)
    report = progress or (lambda line: None)
    results, failures = [], []
    for framework in frameworks:
        request = _request(program.spec, framework, backend, gpu, mode="bisect", limit=device_memory, start=start,
                           resolution=resolution)
        try:
            result = run_child(request, BisectResult, report, "bisecting the batch of",
                               backend="gpu" if request.on_gpu else "cpu", python=interpreter)
        except NotProvided as e:
            if (failure := skip_unprovided(framework, frameworks, program_name, report, e)) is not None:
                failures.append(failure)
            continue
        except ChildFailed as e:
            failures.append(str(e))
            continue
        results.append(MaxBatch(framework, _route(framework, backend, gpu), device_memory, result.max_batch,
                                result.exact, result.curve, result.capped, resolution))
    return results, failures


def device_limit(device_memory: str | None, target: str | None) -> int:
    """The bytes ``memory max-batch`` must fit: ``--device-memory`` when given, else the ``--target``'s own memory.

    Raises:
        InputError: neither is given, the size is not one, or the target gives no memory size.
    """
    from xlainspect.runners.gpu_targets import gpu_target

    if device_memory is not None:
        return parse_size(device_memory)
    if target is None:
        raise InputError("the largest batch needs --device-memory SIZE (e.g. 80GiB) or --target NAME: the memory to "
                         "fit")
    memory = gpu_target(target).memory_bytes
    if not memory:
        raise InputError(f"GPU target {target!r} gives no device_memory_size; add --device-memory SIZE")
    return memory


def curve_stem(out_dir: str | os.PathLike[str], program: str, backend: str, target: str | None,
               force: bool) -> Path:
    """Where a max-batch curve goes (``<stem>.csv``, ``.png``, ``.svg``), checked before any work: an earlier curve
    is kept. The folder is made when the curve is written, so a run that fails leaves nothing behind.

    Raises:
        InputError: an earlier curve is there and ``force`` is not set.
    """
    from xlainspect.programs import choose_program

    name = choose_program(program).name  # a user's FILE.py:NAME is filed as <stem>.<NAME>
    stem = Path(out_dir) / f"{name}-{backend}{'-' + Path(target).stem if target else ''}"
    csv_path = stem.with_name(stem.name + ".csv")
    if csv_path.exists() and not force:
        raise InputError(f"{csv_path}: a curve from an earlier run is there; add --force or give --out")
    return stem


def write_curve(results: Sequence[MaxBatch], path: str | os.PathLike[str]) -> Path:
    """The bytes-against-batch curve of every framework as CSV (:class:`CurvePoint` rows), written atomically.

    Raises:
        InputError: the results folder cannot be made.
    """
    from xlainspect.hlo.files import atomic_write_text

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{Path(path).parent}: cannot create the results folder: {e.strerror}") from None
    points = [CurvePoint(result.framework, point, point.peak <= result.limit) for result in results
              for point in result.curve]
    atomic_write_text(path, csv_text(CURVE_COLUMNS, (point.to_row() for point in points)))
    return Path(path)


def check_peaks(program_name: str, batch_sizes: Sequence[int], framework: str = "jax",
                progress: Callable[[str], None] | None = None) -> list[PeakCheck]:
    """Runs one step per batch size on this machine's CPU and compares its resident-memory peak with the figures.

    Only JAX: TF's CPU allocator keeps the memory a step frees and hands it to the next, so a warm TF step adds no
    resident memory to measure.

    Raises:
        InputError: another framework, a program without a batch, or a failed run (the message says why).
    """
    program, _ = _targets(program_name, "cpu", None)
    if framework != "jax":
        raise InputError("peak checks run JAX steps only: TF's CPU allocator keeps freed memory for the next step, "
                         "so a warm TF step adds no resident memory to measure")
    program.require_batch("check a training step")
    report = progress or (lambda line: None)
    checks = []
    for batch in batch_sizes:
        request = MemoryRequest(program.spec, framework, "measure", batch)
        try:
            result = run_child(request, MeasuredStep, report, "running")
        except ChildFailed as e:
            raise InputError(str(e)) from None
        figures = result.figures
        if figures is None:
            raise InputError(f"{framework}: the step ran, but its compiled program gave no memory figures")
        checks.append(PeakCheck(framework, batch, figures.temp + figures.output - figures.alias, result.measured))
    return checks
