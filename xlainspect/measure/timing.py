"""Timing compiled programs: compile time, steady-state step time, and (JAX) time per HLO instruction.

Each framework is measured in its own child process (:mod:`xlainspect.runners.time_child`) in one invocation, so their
figures sit side by side from the same machine state. Per-kernel times come from the framework's profiler, matched
to HLO instructions by the events' ``hlo_op`` and ``hlo_module`` fields, and joined with the census for achieved
FLOP/s and bytes/s. What ``time --json`` prints is a :class:`~xlainspect.measure.records.TimingRecord`, and files
of it are read back only through that class.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from xlainspect.analysis.census import CONTROL_OPCODES, census
from xlainspect.errors import CaptureError, InputError
from xlainspect.hlo import HloModule, parse_hlo
from xlainspect.measure.records import KernelTime, TimingRecord, TimingSummary
from xlainspect.measure.spread import Spread
from xlainspect.runners.capture import ALL_FRAMEWORKS, TORCH_FRAMEWORKS, gpu_visible
from xlainspect.runners.children import (
    ChildFailed,
    NotProvided,
    child_python,
    dump_flags,
    framework_python,
    run_child,
    skip_unprovided,
)
from xlainspect.runners.protocol import ExportResult, TimeRequest, TimeResult
from xlainspect.runners.sides import manifest_beside

__all__ = ["COMMAND_BUFFERS_OFF", "FrameworkTiming", "KernelTime", "TimingReport", "check_timing_fits_dump",
           "command_buffer_calls", "kernel_times", "kernel_times_by_name", "kernel_times_for_module",
           "module_fingerprint", "time_program", "timing_for_dump"]


@dataclass(frozen=True)
class FrameworkTiming:
    """One framework's measurements of a program."""

    framework: str
    framework_version: str
    compile_s: float
    runs_ms: tuple[float, ...]
    kernels: tuple[KernelTime, ...] = ()
    module_name: str = ""
    note: str = ""
    module_text: str = field(default="", repr=False)  # the optimized module that ran, when the framework gives it
    # Mean wall time of the profiled runs: kernel totals and busy time are per-run means over the same runs, so only
    # the mean bounds them (one slow run lifts the mean busy time above the median step).
    profiled_step_ms: float | None = None
    busy_ms: float | None = None  # per profiled run, time at least one op of the module ran (JAX's profiler)
    module_fingerprint: str = ""  # module_fingerprint() of the module that ran, "" when none was compiled

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def spread(self) -> Spread | None:
        """The step time's spread over the timed runs; None for a single run."""
        return Spread.of(self.runs_ms)

    @property
    def iqr_ms(self) -> tuple[float, float]:
        """First and third quartiles (both the one run's time when there was one)."""
        spread = self.spread
        return (spread.q1, spread.q3) if spread is not None else (self.runs_ms[0], self.runs_ms[0])

    def summary(self) -> TimingSummary:
        """What ``time --json`` keeps of it: statistics of the runs, not the runs (ms to 4 decimals)."""
        q1, q3 = self.iqr_ms

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return TimingSummary(self.framework_version, round(self.compile_s, 4), round(self.median_ms, 4),
                             round(min(self.runs_ms), 4), round(max(self.runs_ms), 4), round(q1, 4), round(q3, 4),
                             len(self.runs_ms), self.module_name, tuple(k.rounded() for k in self.kernels), self.note,
                             ms(self.profiled_step_ms),
                             ms(self.busy_ms), self.module_fingerprint)

    def to_json(self) -> dict[str, Any]:
        return self.summary().to_json()


@dataclass(frozen=True)
class TimingReport:
    """Both frameworks' timings of one program, and the failures (framework, message)."""

    program: str
    batch_size: int | None
    frameworks: dict[str, FrameworkTiming]
    failures: tuple[tuple[str, str], ...] = ()
    variant: str = "full"  # the ablation build (xlainspect.programs.Variant.slug); "full" is the seed's fast one
    backend: str = "cpu"

    def record(self) -> TimingRecord:
        """What ``time --json`` prints."""
        return TimingRecord(self.program, self.batch_size,
                            {name: timing.summary() for name, timing in self.frameworks.items()}, self.failures,
                            self.variant, self.backend)

    def to_json(self) -> dict[str, Any]:
        return self.record().to_json()


def kernel_times(kernel_events: Mapping[str, Sequence[float]], runs: int, step_us: float, hlo_text: str,
                 kernel_runs: Mapping[str, Sequence[int]] | None = None,
                 launches: Mapping[str, int] | None = None) -> tuple[KernelTime, ...]:
    """Per-instruction time per run from profiler durations, with its spread and achieved rates from the census.

    Args:
        kernel_events: event durations (µs) by ``hlo_op`` over ``runs`` profiled runs.
        runs: how many runs the profile covered.
        step_us: the steady-state step time, the denominator of ``share``.
        hlo_text: the optimized module that ran, for FLOPs and bytes per kernel.
        kernel_runs: for each ``hlo_op``, the run (from 0) each of its durations fell in. A kernel can launch many
            times per run (a loop body), so its spread is taken over per-run totals, never over single launches.
            None or empty when the runs could not be told apart: then no kernel claims a spread.
        launches: each ``hlo_op``'s launches over the runs, where ``kernel_events`` merged the ones that ran at
            once; None or missing ops: one launch per event.
    """
    by_name = {}
    containers: set[str] = set()
    if hlo_text:
        module = parse_hlo(hlo_text)
        by_name = {kernel.name: kernel for kernel in census(module).kernels}
        # A while/conditional/call event spans the kernels of its body: counting it too would count them twice.
        containers = {i.name for i in module.instructions() if i.opcode in CONTROL_OPCODES}
    result = []
    for op, durations in kernel_events.items():
        if op in containers:
            continue
        total = sum(durations) / runs
        calls = max(round((launches or {}).get(op, len(durations)) / runs), 1)
        kernel = by_name.get(op)
        flops_rate = bytes_rate = None
        if kernel is not None and total > 0:
            seconds = total / 1e6
            flops_rate = kernel.flops * kernel.trips / seconds if kernel.flops else None
            bytes_rate = (kernel.bytes_read + kernel.bytes_written) * kernel.trips / seconds
        spread = _per_run_spread(durations, kernel_runs.get(op), runs) if kernel_runs else None
        result.append(KernelTime(op, calls, total, total / step_us if step_us else 0.0, flops_rate, bytes_rate,
                                 spread))
    return tuple(sorted(result, key=lambda k: -k.total_us))


def _per_run_spread(durations: Sequence[float], run_of: Sequence[int] | None, runs: int) -> Spread | None:
    """The spread of one kernel's per-run totals; a run in which it never launched totals 0."""
    if run_of is None or len(run_of) != len(durations):
        return None
    totals = [0.0] * runs
    for duration, run in zip(durations, run_of):
        totals[min(max(run, 0), runs - 1)] += duration
    return Spread.of(totals)


def module_fingerprint(module: HloModule) -> str:
    """What a compiled module runs, names ignored: a hash of its kernels' math and layout fingerprints and launch
    counts (:mod:`xlainspect.analysis.fingerprint`), in no particular order.

    Kernel names repeat across batch sizes and compiler versions, so names alone cannot say whether times measured on
    one module belong to another; two modules with the same fingerprint launch the same kernels equally often.
    Metadata (source paths, op names) is left out, so a dump whose paths were made portable still agrees.
    """
    kernels = sorted(f"{k.fingerprint}/{k.layout_fingerprint}/{k.trips}" for k in census(module).kernels)
    return hashlib.sha256("\n".join(kernels).encode()).hexdigest()[:16]


COMMAND_BUFFERS_OFF = "--xla_gpu_enable_command_buffer="
"""XLA flag that turns CUDA-graph command buffers off, so the profiler sees each kernel with its ``hlo_op``."""


def command_buffer_calls(module: HloModule) -> tuple[str, ...]:
    """The ``call`` instructions into XLA:GPU command buffers (computations named ``command_buffer*``), in the entry
    or in a loop's body (jax 0.11 puts a ``lax.scan`` body's kernels into them).

    XLA:GPU's command-buffer scheduling moves runs of kernels into such computations and launches each as one CUDA
    graph; the profiler then sees the graph, not the kernels in it, so their ``hlo_op`` times are lost.
    """
    return tuple(i.name for computation in module.computations for i in computation.instructions
                 if i.opcode == "call" and any(c.name.startswith("command_buffer") for c in i.called_computations))


def time_program(program_name: str, frameworks: tuple[str, ...] = ("jax", "tf"), batch_size: int | None = None,
                 repeats: int = 20, warmup: int = 3, profile_runs: int = 5,
                 progress: Callable[[str], None] | None = None, vectorize: bool = True,
                 compiled: bool = True, backend: str = "cpu", tf_via_jax: bool = False,
                 python: str | None = None) -> TimingReport:
    """Times a synthetic program in each framework, each in a fresh child process.

    Args:
        vectorize: False times the seed's ablation build that loops over the examples (DP-SGD programs only).
        compiled: False times the step without ``jax.jit`` / XLA; there is then no module, so no per-kernel table.
        backend: ``cpu`` or ``gpu``; on GPU, when command buffers hide per-kernel time, the profiled runs are
            repeated in a fresh process with them off (the step times stay those of the default build).
        tf_via_jax: time TF's pre-optimization HLO compiled and run by JAX's XLA instead of TF's runtime: the
            fallback when TF's profiler attributes no time to HLO ops (labelled as such in the result).
        python: the interpreter the frameworks run under (another environment's jax, say); None for
            ``$XLAINSPECT_PYTHON`` or xlainspect's own.

    Raises:
        InputError: unknown program, framework or backend, a bad count, ``vectorize=False`` for a program without
            per-example gradients, or ``tf_via_jax`` with an ablation build.
    """
    from xlainspect.programs import Variant, choose_program

    program = choose_program(program_name)
    if repeats < 1 or warmup < 0 or profile_runs < 0:
        raise InputError("--repeats must be at least 1, --warmup and --profile-runs at least 0")
    if backend not in ("cpu", "gpu"):
        raise InputError(f"unknown backend {backend!r}; choose cpu or gpu")
    if backend == "gpu" and not gpu_visible():  # say so at once, not after starting a child per framework
        raise CaptureError("--backend gpu: no NVIDIA GPU is visible on this machine (nvidia-smi lists none), and "
                           "timing needs one; to see what XLA compiles for a GPU without one, use 'xlainspect dump "
                           f"--program {program_name} --backend gpu' (deviceless)")
    variant = Variant(vectorize, compiled)
    if program.builtin is None and variant.slug != "full":
        raise InputError(f"{program_name}: the ablation builds (--no-vectorize, --no-compile) exist only for the "
                         "built-in programs; time your program's own build")
    if program.builtin is None and tf_via_jax:
        raise InputError(f"--tf-via-jax checks TF's module against a built-in program's float64 reference, which "
                         f"{program_name} has not")
    if not vectorize and not program.has_per_example_gradients:
        raise InputError(f"{program_name} has no per-example gradients, so there is nothing to stop vectorizing; "
                         "--no-vectorize applies to the DP-SGD programs")
    if tf_via_jax and variant.slug != "full":
        raise InputError("--tf-via-jax times TF's compiled module; it cannot be combined with --no-vectorize or "
                         "--no-compile")
    for framework in frameworks:
        if framework not in ALL_FRAMEWORKS:
            raise InputError(f"unknown framework {framework!r}; choose one of: {', '.join(ALL_FRAMEWORKS)}")
        if framework in TORCH_FRAMEWORKS and variant.slug != "full":
            raise InputError(f"{framework}: the ablation builds (--no-vectorize, --no-compile) are JAX's and TF's; "
                             "eager PyTorch (torch) is the uncompiled build, torch_xla the compiled one")
        if program.builtin is not None and (why := program.builtin.unavailable(framework)):
            raise InputError(f"{program.name}: {why}")
        if framework in TORCH_FRAMEWORKS and backend == "gpu":
            raise InputError(f"{framework}: xlainspect runs PyTorch on the CPU only (its environment holds the CUDA "
                             "build, but nothing here has been checked on a GPU); use --backend cpu")
    batch_size = program.batch_size(batch_size)
    interpreter = child_python(python)
    report = progress or (lambda line: None)
    timings: dict[str, FrameworkTiming] = {}
    failures: list[tuple[str, str]] = []
    given: tuple[str, ...] = ALL_FRAMEWORKS
    for framework in frameworks:
        if framework not in given:  # a user's program that gives one framework's function only
            skip_unprovided(framework, frameworks, program_name, report)
            continue
        request = TimeRequest(program.spec, framework, batch_size, repeats, warmup, profile_runs, backend, vectorize,
                              compiled)
        try:
            if framework == "tf" and tf_via_jax:
                result = _tf_via_jax(request, report, backend, interpreter)
            elif framework == "torch_xla":
                result = _torch_xla(request, report, python)
            else:
                result = run_child(request, TimeResult, report, "timing", backend=backend,
                                   python=framework_python(framework, python) if framework == "torch"
                                   else interpreter)
                if backend == "gpu":
                    result = _without_command_buffers(result, request, report, interpreter)
        except NotProvided as e:
            if (failure := skip_unprovided(framework, frameworks, program_name, report, e)) is not None:
                failures.append((framework, failure))
            continue
        except ChildFailed as e:
            failures.append((framework, str(e)))
            continue
        given, batch_size = result.frameworks, result.batch_size if batch_size is None else batch_size
        timing = framework_timing(result, framework, result.framework_version)
        if framework == "tf" and not tf_via_jax and compiled and profile_runs and not timing.kernels:
            timing = replace(timing, note=(result.note + "; " if result.note else "") + (
                "TF's profiler attributed no time to HLO ops on this backend; --tf-via-jax times TF's HLO in JAX's "
                "runtime instead"))
        timings[framework] = timing
    return TimingReport(program.name, batch_size, timings, tuple(failures), variant.slug, backend)


T = TypeVar("T", bound=FrameworkTiming)


def framework_timing(result: TimeResult, framework: str, version: str, cls: type[T] = FrameworkTiming,
                     **extra: Any) -> T:
    """What a child's raw timings say: the steady runs in ms, each profiled kernel's time per step, the profiled
    and busy times, and the module's fingerprint (so times are only ever attached to the module they measured).

    Args:
        cls, extra: a subclass of :class:`FrameworkTiming` to make, and its own fields.
    """
    runs_ms = tuple(seconds * 1e3 for seconds in result.runs_s)
    kernels = kernel_times(result.kernels, result.profiled_runs, statistics.median(runs_ms) * 1e3, result.hlo_text,
                           result.kernel_runs, result.launches) if result.profiled_runs else ()
    profiled = result.profiled_runs_s
    return cls(framework, version, result.compile_s, runs_ms, kernels, result.module_name, result.note,
               result.hlo_text, statistics.fmean(profiled) * 1e3 if profiled else None,
               result.busy_us_per_run / 1e3 if result.busy_us_per_run else None,
               module_fingerprint(parse_hlo(result.hlo_text)) if result.hlo_text else "", **extra)


def _torch_xla(request: TimeRequest, report: Callable[[str], None], python: str | None) -> TimeResult:
    """Times PyTorch/XLA's step with XLA's dumper on, so that the child can say which module ran and give its text
    (PyTorch/XLA hands out only its unoptimized HLO)."""
    with tempfile.TemporaryDirectory(prefix="xlainspect-torch_xla-") as folder:
        return run_child(request, TimeResult, report, "timing", xla_flags=dump_flags(folder),
                         python=framework_python("torch_xla", python))


def _tf_via_jax(request: TimeRequest, report: Callable[[str], None], backend: str, python: str) -> TimeResult:
    """TF's child writes its pre-optimization HLO; a JAX child compiles, runs and profiles it."""
    with tempfile.TemporaryDirectory(prefix="xlainspect-tf-hlo-") as folder:
        proto = os.path.join(folder, "tf_before_optimizations.pb")
        run_child(replace(request, backend="cpu", export_hlo=proto), ExportResult, report, "exporting the HLO of",
                  python=python)
        return run_child(replace(request, framework="jax", hlo_proto=proto), TimeResult, report,
                         "timing TF's HLO of", backend=backend, python=python)


def _without_command_buffers(result: TimeResult, request: TimeRequest, report: Callable[[str], None],
                             python: str) -> TimeResult:
    """On GPU: when command buffers hid kernels from the profiler, profile again in a process with them off."""
    # The profiler naming a command buffer as the op says so too, whatever the module text shows.
    hidden = any(op.startswith("command_buffer") for op in result.kernels)
    if not request.profile_runs or not result.hlo_text or not (
            hidden or command_buffer_calls(parse_hlo(result.hlo_text))):
        return result
    report(f"{request.framework}: command buffers (CUDA graphs) hide per-kernel time; profiling again with "
           f"{COMMAND_BUFFERS_OFF}")
    again = run_child(request, TimeResult, report, "profiling", xla_flags=COMMAND_BUFFERS_OFF, backend="gpu",
                      python=python)
    note = (f"step times with command buffers on (the default); per-kernel times from a second process with "
            f"{COMMAND_BUFFERS_OFF}, whose module {again.module_name} is the one profiled")
    return replace(result, kernels=again.kernels, kernel_runs=again.kernel_runs, launches=again.launches,
                   profiled_runs=again.profiled_runs,
                   hlo_text=again.hlo_text, module_name=again.module_name,
                   note="; ".join(filter(None, (result.note, note))))


def kernel_times_by_name(path: str, framework: str, dump: Path | None = None) -> dict[str, float]:
    """Per-step time (µs) by HLO instruction name for one framework, from ``xlainspect time --json`` output.

    Args:
        dump: the dump's ``after_optimizations.txt`` the times will label; they must fit it
            (:func:`check_timing_fits_dump`).

    Raises:
        InputError: the file cannot be read, is not that JSON, has no per-kernel times for ``framework``, or was
            measured on another program, batch size, backend or module than ``dump``.
    """
    record = TimingRecord.read(path)
    if dump is not None:
        check_timing_fits_dump(record, framework, dump)
    return record.kernel_times(framework)


def timing_for_dump(path: str, framework: str, dump: Path, module: HloModule | None = None) -> TimingSummary:
    """One framework's step and per-kernel times (with their spreads) from ``time --json`` output, checked to
    belong to the dump whose kernels they will label.

    Args:
        dump: the dump's ``after_optimizations.txt``.
        module: that file already parsed, to spare parsing it again for the fingerprint check.

    Raises:
        InputError: the file cannot be read, has no per-kernel times for ``framework``, or was measured on another
            program, batch size, backend or module than ``dump``.
        RecordError: the file is not ``time --json`` output.
    """
    record = TimingRecord.read(path)
    check_timing_fits_dump(record, framework, dump, module)
    return record.timed(framework)


def check_timing_fits_dump(record: TimingRecord, framework: str, dump: Path, module: HloModule | None = None) -> None:
    """Refuses per-kernel times measured on another program, batch size, backend or module than the dump they would
    label.

    Kernel names repeat across batch sizes, backends and compiler versions (``fusion.12`` is ``fusion.12`` at batch
    16 and at 128), so times from another configuration would attach silently and print meaningless deltas. The
    module fingerprint (:func:`module_fingerprint`) catches what names cannot: the same program and batch compiled by
    another framework version or with other flags. What a file older than a field does not say is not checked.

    Args:
        module: the dump's module, when the caller has parsed it already.

    Raises:
        InputError: one line naming the timing file, the dump, and what differs.
    """
    manifest = manifest_beside(dump)
    if manifest is None:
        return  # a module file no 'xlainspect dump' filed: nothing says what it was compiled for
    summary = record.frameworks.get(framework)
    differ = []
    if record.program != manifest.program:
        differ.append(f"program {record.program} against {manifest.program}")
    if record.batch_size is not None and manifest.batch_size is not None and record.batch_size != manifest.batch_size:
        differ.append(f"batch size {record.batch_size} against {manifest.batch_size}")
    if record.backend and manifest.backend and record.backend != manifest.backend:
        differ.append(f"backend {record.backend} against {manifest.backend}")
    if summary is not None and summary.module and manifest.module_name and summary.module != manifest.module_name:
        differ.append(f"module {summary.module} against {manifest.module_name}")
    if not differ and summary is not None and summary.module_fingerprint:
        dumped = module_fingerprint(module if module is not None else parse_hlo(dump.read_text(encoding="utf-8")))
        if dumped != summary.module_fingerprint:
            differ.append(f"module fingerprint {summary.module_fingerprint} against {dumped}: other kernels, from "
                          "another framework version or other flags")
    if differ:
        batch = f" --batch-size {manifest.batch_size}" if manifest.batch_size is not None else ""
        backend = f" --backend {manifest.backend}" if manifest.backend != "cpu" else ""
        raise InputError(f"{record.source}: its {framework} times do not belong to {dump.parent}/ ("
                         + ", ".join(differ) + f"); time the dump's program: 'xlainspect time --program "
                         f"{manifest.program}{batch}{backend} --json'")


def kernel_times_for_module(path: str, module_name: str) -> dict[str, float]:
    """Per-step time (µs) by instruction name for the framework whose timed module is ``module_name``.

    ``xlainspect time --json`` names the module each framework ran; a picture of that module takes its times.

    Raises:
        InputError: the file cannot be read, is not that JSON, or no framework in it ran ``module_name``.
    """
    record = TimingRecord.read(path)
    return record.kernel_times(record.framework_that_ran(module_name))
