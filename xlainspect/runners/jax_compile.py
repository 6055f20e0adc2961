"""Compiling with JAX's XLA from a child process: for a GPU that is not there, and for modules TF's front end made.

Two routes that NOTES describes and that jax 0.10.2 supports:

* Deviceless GPU: a compile-only CUDA device from ``jax.experimental.topologies.get_topology_desc`` with a target
  description, inputs as ``ShapeDtypeStruct`` placed on it, then ``lower(...).compile()``. XLA runs its full GPU
  pipeline (fusion, Triton and cuBLAS choices, ``ptxas``) without a GPU; no autotuning runs, so GEMM choices are the
  heuristic defaults. JAX must stay on the CPU platform (``JAX_PLATFORMS=cpu``) or it fails at ``cuInit``.
* Another front end's module: TF's pre-optimization ``HloModuleProto`` converted to StableHLO and compiled by JAX's
  client (the compile-only GPU one, or the CPU one, whose executable can also run). This separates what TF's front
  end emitted from what TF's older XLA did with it.

Only children import this module; it loads jax (or tensorflow) when a function is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xlainspect.runners.protocol import ExportResult

if TYPE_CHECKING:
    import jax
    import numpy as np

    from xlainspect.programs import Program


def deviceless_gpu(target_config: str) -> jax.Device:
    """The compile-only CUDA device of a one-GPU topology described by ``target_config``."""
    from jax.experimental import topologies

    topology = topologies.get_topology_desc(platform="cuda", target_config=target_config, topology="1x1x1")
    return topology.devices[0]


def compile_program_for(device: jax.Device, program: Program,
                        types: Sequence[tuple[tuple[int, ...], Any]]) -> jax.stages.Compiled:
    """``program``'s JAX function compiled for ``device`` (e.g. a deviceless GPU) from input (shape, dtype) only."""
    import jax
    import numpy as np

    mesh = jax.sharding.Mesh(np.array([device]), ("d",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    specs = [jax.ShapeDtypeStruct(shape, dtype, sharding=sharding) for shape, dtype in types]
    return program.jax_function().lower(*specs).compile()


def compile_hlo_proto(proto: bytes, device: jax.Device, load: bool) -> Any:
    """A serialized ``HloModuleProto`` (or an HLO module's text, as PyTorch/XLA's dump holds it) compiled by JAX's
    XLA for ``device``.

    Args:
        load: True for a device that can run it (the result has ``execute``); False for a compile-only device.
    """
    from xlainspect.runners.jax_private import compile_stablehlo, hlo_module_from_text, hlo_to_stablehlo

    if proto.lstrip().startswith(b"HloModule"):  # text: XLA's own parser makes the proto
        proto = hlo_module_from_text(proto.decode("utf-8")).as_serialized_hlo_module_proto()
    return compile_stablehlo(hlo_to_stablehlo(proto), device, load)


def tf_hlo_proto(program: Program, types: Sequence[tuple[tuple[int, ...], Any]]) -> bytes:
    """TF's module before XLA optimizes it (an ``HloModuleProto``), traced from input (shape, dtype) only."""
    import tensorflow as tf

    specs = [tf.TensorSpec(shape, tf.as_dtype(dtype)) for shape, dtype in types]
    return program.tf_function().experimental_get_compiler_ir(*specs)(stage="hlo_serialized")


def export_tf_hlo(program: Program, inputs: dict[str, np.ndarray], path: str) -> ExportResult:
    """Writes :func:`tf_hlo_proto` for ``inputs``' shapes: what TF's front end made of ``program``."""
    import numpy as np
    import tensorflow as tf

    proto = tf_hlo_proto(program, [(np.shape(value), np.asarray(value).dtype) for value in inputs.values()])
    with open(path, "wb") as file:
        file.write(proto)
    return ExportResult(tf.__version__, len(proto), program.function_name)


def hlo_module_name(hlo_text: str) -> str:
    """The name in an HLO text's ``HloModule`` line, or "" when it has none."""
    first = hlo_text.split("\n", 1)[0]
    return first.split()[1].rstrip(",") if first.startswith("HloModule ") else ""
