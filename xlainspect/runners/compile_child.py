"""The child process of ``xlainspect dump``: compiles and runs one synthetic program in one framework.

XLA reads ``XLA_FLAGS`` once, when a framework's XLA backend starts, so each capture needs a fresh process whose
environment carries the dump flags before jax or tensorflow is imported. The parent passes a
:class:`~xlainspect.runners.protocol.CompileRequest` as the only argument; the child prints one line starting with
``RESULT ``, a :class:`~xlainspect.runners.protocol.CompileResult` (versions, device, timings) or, when asked to
export TF's module, an :class:`~xlainspect.runners.protocol.ExportResult`. It reports a missing framework with exit
status 3 so the parent can say which package to install.

Run as ``python -m xlainspect.runners.compile_child '{"program": ..., "framework": ..., ...}'``.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from xlainspect.runners.children import (
    EXIT_FRAMEWORK_MISSING,
    answer,
    framework_modules,
    missing_framework,
    read_request,
)
from xlainspect.runners.protocol import CompileRequest, CompileResult, ExportResult

if TYPE_CHECKING:
    import numpy as np

    from xlainspect.programs import Program


def _jax_run(program: Program, inputs: dict[str, np.ndarray]) -> CompileResult:
    import jax
    import jaxlib

    from xlainspect.programs._frameworks import is_abstract

    function = program.jax_function()
    start = time.perf_counter()
    if any(is_abstract(value) for value in inputs.values()):
        function.lower(*inputs.values()).compile()  # shapes only: compile, nothing to run
    else:
        jax.block_until_ready(function(*inputs.values()))
    seconds = time.perf_counter() - start
    device = jax.devices()[0]
    return _result(jax.__version__, f"jaxlib {jaxlib.__version__}",
                   f"{device.platform} {getattr(device, 'device_kind', '')}".strip(),
                   seconds, getattr(function, "__name__", ""))


def _tf_run(program: Program, inputs: dict[str, np.ndarray]) -> CompileResult:
    import tensorflow as tf

    function = program.tf_function()
    start = time.perf_counter()
    outputs = function(*[tf.constant(value) for value in inputs.values()])
    for output in tf.nest.flatten(outputs):
        output.numpy()  # reading back synchronises
    seconds = time.perf_counter() - start
    devices = tf.config.list_logical_devices()
    return _result(tf.__version__, f"bundled with tensorflow {tf.__version__} (git {tf.version.GIT_VERSION})",
                   ", ".join(f"{d.device_type}" for d in devices) or "unknown",
                   seconds, getattr(getattr(function, "python_function", None), "__name__", ""))


def _torch_xla_run(program: Program, request: CompileRequest, inputs: dict[str, np.ndarray]) -> CompileResult:
    """Compiles and runs the program's PyTorch/XLA step once (XLA dumps the module as it compiles it)."""
    import torch
    import torch_xla

    from xlainspect.programs._torch import fallbacks

    step = program.torch_step("torch_xla", request.batch_size, request.dtype)
    args = step.arguments(inputs)  # materialised first, so that the step's module computes the step alone
    start = time.perf_counter()
    step.synchronize(step.run(*args))
    seconds = time.perf_counter() - start
    step.synchronize(step.run(*args))  # the second call compiles the module every later call runs (see capture)
    if left := fallbacks():
        raise RuntimeError(f"PyTorch/XLA ran part of {step.name} outside XLA, on the CPU: {left}; its dump would "
                           "hold fragments of the step, not the step")
    return _result(torch_xla.__version__, f"bundled with torch_xla {torch_xla.__version__} (torch {torch.__version__})", f"{step.device} (PJRT "
                   f"{torch_xla.runtime.device_type()})", seconds, step.name)


def _jax_deviceless(program: Program, inputs: dict[str, np.ndarray], target_config: str, proto_path: str | None,
                    function_name: str) -> CompileResult:
    """Compiles for a GPU that is not there: the program's JAX function, or (with ``proto_path``) TF's module."""
    import jax
    import jaxlib
    import numpy as np

    from xlainspect.runners.jax_compile import compile_hlo_proto, compile_program_for, deviceless_gpu

    device = deviceless_gpu(target_config)
    start = time.perf_counter()
    if proto_path is None:
        compile_program_for(device, program, [(np.shape(v), np.asarray(v).dtype) for v in inputs.values()])
        function_name = program.jax_function().__name__
    else:
        with open(proto_path, "rb") as file:
            compile_hlo_proto(file.read(), device, load=False)
    return _result(jax.__version__, f"jaxlib {jaxlib.__version__}",
                   f"{getattr(device, 'device_kind', 'GPU')} (deviceless: compiled, never run)",
                   time.perf_counter() - start, function_name)


def _jax_compiles_tf(proto_path: str, function_name: str) -> CompileResult:
    """Compiles TF's pre-optimization module with JAX's XLA on this machine's CPU, and runs nothing."""
    import jax
    import jaxlib

    from xlainspect.runners.jax_compile import compile_hlo_proto

    device = jax.devices()[0]
    start = time.perf_counter()
    with open(proto_path, "rb") as file:
        compile_hlo_proto(file.read(), device, load=True)
    return _result(jax.__version__, f"jaxlib {jaxlib.__version__}",
                   f"{device.platform} {getattr(device, 'device_kind', '')}".strip(),
                   time.perf_counter() - start, function_name)


def _result(framework_version: str, xla_version: str, device: str, first_call_s: float,
            function_name: str) -> CompileResult:
    """A route's figures, with the host they were made on."""
    return CompileResult(framework_version, xla_version, device, first_call_s, function_name, _host_cpu(),
                         platform.python_version(), platform.platform())


def _host_cpu() -> str:
    """The processor model, which the frameworks' device strings ("CPU", "cpu") leave out."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str]) -> int:
    request = read_request(CompileRequest, argv)
    if missing_framework(*framework_modules("jax" if request.hlo_proto else request.framework)):
        return EXIT_FRAMEWORK_MISSING
    # A JAX child compiling TF's exported module (hlo_proto) makes the inputs of the program's TF function.
    return answer(request, "tf" if request.hlo_proto else request.framework, "compiling it",
                  lambda program: _compile(request, program))


def _compile(request: CompileRequest, program: Program) -> CompileResult | ExportResult:
    inputs = program.inputs(batch_size=request.batch_size, dtype=request.dtype, seed=request.seed)
    if request.export_hlo is not None:
        from xlainspect.runners.jax_compile import export_tf_hlo

        return export_tf_hlo(program, inputs, request.export_hlo)
    if request.target_config:
        result = _jax_deviceless(program, inputs, request.target_config, request.hlo_proto, request.function_name)
    elif request.hlo_proto:
        result = _jax_compiles_tf(request.hlo_proto, request.function_name)
    elif request.framework == "torch_xla":
        result = _torch_xla_run(program, request, inputs)
    else:
        result = (_jax_run if request.framework == "jax" else _tf_run)(program, inputs)
    return replace(result, description=program.description, batch_size=program.batch_size(request.batch_size),
                   shapes=program.shapes(request.batch_size), frameworks=program.frameworks(request.batch_size))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
