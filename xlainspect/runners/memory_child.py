"""The child process of ``xlainspect memory``: compile-time memory figures of one program in one framework.

Compiling needs no data: JAX lowers from ``ShapeDtypeStruct`` inputs and TF traces from ``TensorSpec`` ones, so a
batch that would not fit in this machine's memory can still be measured. TF's module is compiled by JAX's XLA (TF
offers no memory analysis of its own compiled program), and the result says so. For a GPU without one, the compile
is deviceless (see :mod:`xlainspect.runners.jax_compile`). ``bisect`` searches the largest batch whose figures fit a limit
in the same process, so each probe costs one compile and no process start.

Run as ``python -m xlainspect.runners.memory_child '{"program": ..., "framework": ..., ...}'`` (a
:class:`~xlainspect.runners.protocol.MemoryRequest`); prints one ``RESULT {json}`` line, a
:class:`~xlainspect.runners.protocol.CompiledMemory`, :class:`~xlainspect.runners.protocol.BisectResult` or
:class:`~xlainspect.runners.protocol.MeasuredStep` by the request's mode; exit status 3 when a framework is missing.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from xlainspect.runners.children import (
    EXIT_FRAMEWORK_MISSING,
    answer,
    missing_framework,
    read_request,
)
from xlainspect.runners.protocol import BisectResult, CompiledMemory, MeasuredStep, MemoryFigures, MemoryRequest

if TYPE_CHECKING:
    import jax

    from xlainspect.programs import Program


def _figures(stats: Any, batch: int | None) -> MemoryFigures:
    """XLA's ``CompiledMemoryStats`` (JAX's ``memory_analysis()``) as figures."""
    return MemoryFigures(batch, int(stats.argument_size_in_bytes), int(stats.output_size_in_bytes),
                         int(stats.alias_size_in_bytes), int(stats.temp_size_in_bytes),
                         int(stats.generated_code_size_in_bytes))


def _device(target_config: str | None) -> jax.Device:
    import jax

    if target_config:
        from xlainspect.runners.jax_compile import deviceless_gpu

        return deviceless_gpu(target_config)
    return jax.devices()[0]


def _compile(program: Program, framework: str, batch: int | None, device: jax.Device,
             deviceless: bool) -> tuple[Any, str]:
    """Compiled memory statistics and the compiled module's name."""
    from xlainspect.runners.jax_compile import compile_hlo_proto, compile_program_for, hlo_module_name, tf_hlo_proto

    types = list(program.input_types(batch).values())
    if framework == "jax":
        compiled = compile_program_for(device, program, types)
        return compiled.memory_analysis(), hlo_module_name(compiled.as_text())
    executable = compile_hlo_proto(tf_hlo_proto(program, types), device, load=not deviceless)
    text = executable.hlo_modules()[0].to_string() if hasattr(executable, "hlo_modules") else ""
    return executable.get_compiled_memory_stats(), hlo_module_name(text)


def _analyse(program: Program, framework: str, batch: int | None, device: jax.Device, deviceless: bool,
             dump_dir: str | None) -> CompiledMemory:
    stats, module = _compile(program, framework, batch, device, deviceless)
    assignment = text = ""
    if dump_dir:
        assignments = sorted(glob.glob(os.path.join(dump_dir, f"*{module}*after_optimizations-buffer-assignment.txt")))
        modules = sorted(glob.glob(os.path.join(dump_dir, f"*{module}*after_optimizations.txt")))
        assignment = _read(assignments[-1]) if assignments else ""
        text = _read(modules[-1]) if modules else ""
    return CompiledMemory(_figures(stats, batch), module, _xla_version(), _device_name(device), assignment, text)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _bisect(program: Program, framework: str, device: jax.Device, deviceless: bool, limit: int, start: int,
            max_probes: int, resolution: int | None = None) -> BisectResult:
    """Largest batch whose argument + output - alias + temp bytes fit ``limit``, to within ``resolution`` examples
    (the seed's ``--thresh``: stop when the batch that fits and the one that does not are at most that far apart),
    or to within 0.1% when it is None.

    Bytes grow almost linearly with the batch, so two probes predict where the limit is crossed; steps outward
    from the prediction, doubling, find a batch that fits and one that does not, and bisection closes the gap.
    Each probe is a compile (seconds for a GPU target), so this takes about ten probes where doubling from the
    start and then bisecting would take twenty or more.
    """
    curve: dict[int, MemoryFigures] = {}
    # Both frameworks index a batched array with 32-bit integers: beyond this many examples the step does not
    # trace at all, so the search stops there and says the answer is a lower bound.
    cap = (2**31 - 1) // max(int(np.prod(s.shape[1:])) for s in program.input_specs(start) if s.role != "parameter")

    def fits(batch: int) -> bool:
        batch = min(batch, cap)
        if batch not in curve:
            curve[batch] = _analyse(program, framework, batch, device, deviceless, None).figures
        return curve[batch].peak <= limit

    def bracket() -> tuple[int, int | None]:
        """The largest batch known to fit (0 if none) and the smallest known not to, above it."""
        low = max([b for b in curve if curve[b].peak <= limit], default=0)
        above = [b for b in curve if b > low and curve[b].peak > limit]
        return low, min(above) if above else None

    if fits(start):
        fits(2 * start)
        slope = max((curve[2 * start].peak - curve[start].peak) / start, 1.0)
        guess = min(cap, max(start + 1, int(start + (limit - curve[start].peak) / slope)))
        step = max(1, guess // 100)
        if fits(guess):
            while guess < cap and fits(guess + step) and len(curve) < max_probes:
                if guess + step >= cap:
                    break
                step *= 2
        else:
            while guess - step > start and not fits(guess - step) and len(curve) < max_probes:
                step *= 2
    low, high = bracket()
    if high is None and low >= cap:
        return BisectResult(cap, None, tuple(curve[b] for b in sorted(curve)), False, True, _xla_version(),
                            _device_name(device))
    if high is None:
        high = min(max(curve) * 2, cap + 1)

    def closed(low: int, high: int) -> bool:
        return high - low <= (resolution if resolution is not None else max(1, low // 1000))

    while not closed(low, high) and len(curve) < max_probes:
        middle = min((low + high) // 2, cap)
        if fits(middle):
            low = middle
        else:
            high = middle
    exact = closed(low, high)
    point = start * 4
    while point < low:  # a few points along the way, so the curve shows its shape, not only its ends
        fits(point)
        point *= 4
    return BisectResult(low, high, tuple(curve[b] for b in sorted(curve)), exact, False, _xla_version(),
                        _device_name(device))


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _measure(program: Program, framework: str, batch: int | None, device: jax.Device) -> MeasuredStep:
    """Runs one step and measures the resident memory it added at its peak (Linux: VmHWM after clear_refs).

    Inputs are made, and the program compiled and run once, before the measurement, so neither the arguments nor
    the compiler's own memory count; what is left is what the step allocates while it runs.
    """
    inputs = program.inputs(batch_size=batch)
    if framework == "jax":
        import jax

        args = [jax.device_put(value) for value in inputs.values()]
        compiled = program.jax_function().lower(*args).compile()
        figures: MemoryFigures | None = _figures(compiled.memory_analysis(), batch)

        def step() -> None:
            jax.block_until_ready(compiled(*args))
    else:
        import tensorflow as tf

        function = program.tf_function()
        args = [tf.constant(value) for value in inputs.values()]
        figures = None

        def step() -> None:
            for output in tf.nest.flatten(function(*args)):
                output.numpy()
    step()  # compile (TF), warm the allocator's first-use paths
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")  # reset the peak-RSS high-water mark to the current RSS
    before = _status_kib("VmRSS")
    step()
    peak = _status_kib("VmHWM")
    return MeasuredStep(batch, (peak - before) * 1024, before * 1024, figures, _xla_version(), _device_name(device))


def _xla_version() -> str:
    import jaxlib

    return f"jaxlib {jaxlib.__version__}"


def _device_name(device: jax.Device) -> str:
    return getattr(device, "device_kind", device.platform)


def main(argv: list[str]) -> int:
    request = read_request(MemoryRequest, argv)
    if not request.on_gpu:
        os.environ["JAX_PLATFORMS"] = "cpu"  # CPU, or a deviceless GPU: jax must not try to start CUDA
    if missing_framework("jax", *(("tensorflow",) if request.framework == "tf" else ())):  # all go through JAX's XLA
        return EXIT_FRAMEWORK_MISSING
    return answer(request, request.framework, "compiling it", lambda program: _run(request, program))


def _run(request: MemoryRequest, program: Program) -> CompiledMemory | BisectResult | MeasuredStep:
    device = _device(request.target_config)
    deviceless = bool(request.target_config)
    batch = program.batch_size(request.batch_size)
    if request.mode == "measure":
        return _measure(program, request.framework, batch, device)
    if request.mode == "bisect":
        assert request.limit is not None and request.start is not None  # MemoryRequest.from_json requires them
        return _bisect(program, request.framework, device, deviceless, request.limit, request.start,
                       request.max_probes, request.resolution)
    return _analyse(program, request.framework, batch, device, deviceless, request.dump_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
