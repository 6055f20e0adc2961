"""The child process of :func:`xlainspect.inspect`: compiles a module the caller lowered, with JAX's XLA.

A notebook's own process may have started XLA already, and XLA reads ``XLA_FLAGS`` once per process; a function
cannot cross a process boundary, but the module it lowers to can. So the caller traces and lowers only
(:mod:`xlainspect.runners.lowering`), writes the module before optimization and the arguments to files, and this
child compiles the module with JAX's XLA (the route ``--compiler jax`` and ``tf_via_jax`` take for TF's modules),
reports the optimized module and XLA's memory figures, and, when asked, times it and profiles it per HLO op.

The module is compiled through JAX's client directly (``compile_and_load``), not through ``jax.jit``, so the
arguments are handed to the executable as the module's parameters, in order. A module that donates buffers
(``input_output_alias``) consumes its arguments; each run then gets fresh copies, made before its clock starts.
The child compiles for its first device, which must be of the platform the caller lowered for (a notebook on a GPU
lowers for the GPU; a CPU compile of that module would answer another question); otherwise it exits with status 4.

Run as ``python -m xlainspect.runners.inspect_child '{"program": ..., "module_path": ..., ...}'`` (an
:class:`~xlainspect.runners.protocol.InspectRequest`); prints one ``RESULT {json}`` line, an
:class:`~xlainspect.runners.protocol.InspectResult`; exit status 3 when jax is missing.

The in-process route of :func:`xlainspect.inspect` calls :func:`compile_module` and :func:`time_executable` too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xlainspect.runners.children import (
    EXIT_FRAMEWORK_MISSING,
    EXIT_NO_GPU,
    missing_framework,
    print_result,
    read_request,
)
from xlainspect.runners.jax_compile import hlo_module_name
from xlainspect.runners.protocol import ArgumentBytes, InspectRequest, InspectResult, MemoryFigures, TimeResult

if TYPE_CHECKING:
    import jax
    import numpy as np


def compile_module(module: bytes, module_format: str, device: jax.Device) -> Any:
    """The module before optimization (``stablehlo`` text or an ``hlo_proto``) compiled and loaded for ``device``."""
    from xlainspect.runners.jax_compile import compile_hlo_proto
    from xlainspect.runners.jax_private import compile_stablehlo

    if module_format == "stablehlo":
        return compile_stablehlo(module.decode("utf-8"), device, True)
    return compile_hlo_proto(module, device, load=True)


def memory_figures(stats: Any) -> MemoryFigures:
    """XLA's ``CompiledMemoryStats`` (JAX's ``memory_analysis()``) as figures, the batch size not applying."""
    from xlainspect.runners.memory_child import _figures  # one reading of XLA's stats for every route

    return _figures(stats, None)


def device_name(device: jax.Device) -> str:
    """``cpu``, or the platform and the device's kind where they differ (``gpu NVIDIA H200``)."""
    kind = getattr(device, "device_kind", "") or ""
    return device.platform if kind.lower() in ("", device.platform) else f"{device.platform} {kind}"


def donates(module_text: str) -> bool:
    """Whether the optimized module may consume its arguments (it aliases or donates parameter buffers)."""
    head = module_text.split("\n", 1)[0]
    return "input_output_alias=" in head or "buffer_donor=" in head


def time_executable(executable: Any, arguments: Sequence[np.ndarray], module_text: str, repeats: int, warmup: int,
                    profile_runs: int, version: str, compile_s: float) -> TimeResult:
    """Step times of a loaded executable over ``repeats`` runs after ``warmup``, and a profile of more runs.

    Each run reads its arguments from device buffers placed before its clock starts; a donating module gets fresh
    buffers every run (a donated buffer is gone after the run). Profiled runs include that placement in their wall
    time, which only the step-time comparison in the kernel table uses.
    """
    import jax

    from xlainspect.runners.time_child import _jax_profile, _tuples  # the profiler path ``xlainspect time`` uses

    device = executable.local_devices()[0] if hasattr(executable, "local_devices") else jax.devices()[0]
    fresh = donates(module_text)
    placed = [jax.device_put(value, device) for value in arguments]

    def buffers() -> list[Any]:
        return [jax.device_put(value, device) for value in arguments] if fresh else placed

    def run() -> None:
        jax.block_until_ready(executable.execute(buffers()))

    for _ in range(warmup):
        run()
    runs = []
    for _ in range(repeats):
        ready = buffers()
        jax.block_until_ready(ready)
        start = time.perf_counter()
        jax.block_until_ready(executable.execute(ready))
        runs.append(time.perf_counter() - start)
    module_name = hlo_module_name(module_text)
    note = "fresh copies of the donated arguments before every run" if fresh else ""
    if not profile_runs:
        return TimeResult(version, compile_s, tuple(runs), module_name, module_text, note=note)
    profile = _jax_profile(run, profile_runs, module_name)
    return TimeResult(version, compile_s, tuple(runs), module_name, module_text,
                      {op: tuple(durations) for op, durations in profile.kernels.items()}, profile_runs,
                      tuple(profile.runs_s), profile.busy_us, note,
                      kernel_runs=_tuples(profile.kernel_runs), launches=dict(profile.launches))


def read_arguments(path: str, arguments: Sequence[ArgumentBytes]) -> list[np.ndarray]:
    """The arrays of an arguments file, each as the dtype and shape its :class:`ArgumentBytes` says."""
    import jax.numpy as jnp
    import numpy as np

    with np.load(path) as stored:
        return [stored[argument.name].view(jnp.dtype(argument.dtype)).reshape(argument.shape)
                for argument in arguments]


def inspect_module(request: InspectRequest) -> InspectResult:
    """Compiles the request's module on this process's first device; times it when the request asks."""
    import jax
    import jaxlib

    jax.config.update("jax_enable_x64", True)  # arguments keep the dtypes the caller's module has (f64 too)
    device = jax.devices()[0]
    with open(request.module_path, "rb") as file:
        module = file.read()
    executable, text, compile_s = compile_timed(module, request.module_format, device)
    xla_version = f"jaxlib {jaxlib.__version__}"
    timing = None
    if request.repeats and request.arguments_path is not None:
        timing = time_executable(executable, read_arguments(request.arguments_path, request.arguments), text,
                                 request.repeats, request.warmup, request.profile_runs, xla_version, compile_s)
    return InspectResult(xla_version, device_name(device), compile_s, text,
                         memory_figures(executable.get_compiled_memory_stats()), timing)


def compile_timed(module: bytes, module_format: str, device: jax.Device) -> tuple[Any, str, float]:
    """:func:`compile_module`, with the optimized module's text and the seconds the compile took."""
    start = time.perf_counter()
    executable = compile_module(module, module_format, device)
    compile_s = time.perf_counter() - start
    return executable, executable.hlo_modules()[0].to_string(), compile_s


def platform_mismatch(platform: str) -> str:
    """Why this process cannot compile a module lowered for ``platform``, or "" when its JAX's backend is that."""
    import jax

    here = jax.default_backend()
    if here == platform:
        return ""
    return (f"the function was lowered for {platform}, but JAX in the child process sees only {here}; run it with "
            f"in_process=True, or make the {platform} visible to child processes")


def main(argv: list[str]) -> int:
    request = read_request(InspectRequest, argv)
    if missing_framework("jax"):
        return EXIT_FRAMEWORK_MISSING
    if why := platform_mismatch(request.platform):
        print(why, file=sys.stderr)
        return EXIT_NO_GPU
    print_result(inspect_module(request))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
