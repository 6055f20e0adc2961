"""Lowering a user's function in the caller's process: its module before optimization, and its arguments.

A function cannot cross a process boundary; the module it lowers to can. This module does the part of
:func:`xlainspect.inspect` that must run where the function lives: trace and lower, never compile (so the caller's
process never starts an XLA compile with its own flags), for

* a JAX function, jitted or not: ``jax.jit(fn).lower(*args, **kwargs)``, kept as StableHLO text with its source
  locations (``as_text(debug_info=True)``: the text ``jax.jit`` itself would compile, so the child's module equals
  the one ``.compile()`` gives here). Static arguments, keyword arguments, pytrees, donation and x64 are jax's own
  business: the module already reflects them. The arguments are the dynamic leaves the module keeps, in parameter
  order (jax drops unused ones), each cast to the dtype the module expects;
* a ``tf.function``: TF's front end, ``fn.experimental_get_compiler_ir(*args, **kwargs)(stage="hlo_serialized")``,
  compiled later by JAX's XLA (TF offers no compile of its own module with chosen flags, nor its memory figures).

Arguments may be arrays or ``jax.ShapeDtypeStruct`` (and, for TF, ``tf.TensorSpec``): shapes alone lower and
compile, but cannot run, so such a lowering carries no arguments and says why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.programs._frameworks import is_abstract, is_tf_function
from xlainspect.runners.protocol import ArgumentBytes

WHO = "xlainspect.inspect"


@dataclass(frozen=True)
class Lowering:
    """A function lowered in the caller's process: what a child (or this process) compiles.

    Attributes:
        front_end: ``jax`` or ``tf``: which framework traced the function into HLO.
        front_end_version: e.g. ``jax 0.12.0.1``, ``tensorflow 2.21.0``.
        function_name: the function's ``__name__``.
        module: the module before optimization, as bytes of ``module_format``.
        module_format: ``stablehlo`` or ``hlo_proto`` (see :class:`~xlainspect.runners.protocol.InspectRequest`).
        arguments: the arrays the module takes, in parameter order; None when they cannot run it.
        no_arguments: why ``arguments`` is None ("" otherwise).
        lowered: JAX's ``Lowered`` for an in-process compile; None for TF.
        platform: the backend it was lowered for: JAX's default backend here (``cpu``, ``gpu``, ``tpu``); ``cpu``
            for TF's module, which JAX's XLA compiles for the CPU.
    """

    front_end: str
    front_end_version: str
    function_name: str
    module: bytes = field(repr=False)
    module_format: str
    arguments: tuple[Any, ...] | None = field(repr=False)
    no_arguments: str = ""
    lowered: Any = field(default=None, repr=False, compare=False)
    platform: str = "cpu"


def front_end_of(fn: Any) -> str:
    """``tf`` for a ``tf.function``, ``jax`` for any other callable (a JAX function, jitted or not).

    Raises:
        InputError: ``fn`` is not callable.
    """
    if is_tf_function(fn):
        return "tf"
    if not callable(fn):
        raise InputError(f"{WHO}: the first argument is not a function but {_kind(fn)}; pass a JAX function "
                         "(jitted or not) or a tf.function, then its arguments")
    return "jax"


def lower_function(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Lowering:
    """``fn`` traced and lowered for ``args`` and ``kwargs``, in this process, without compiling.

    Raises:
        InputError: ``fn`` is not a function, or does not trace with these arguments (the error's first line).
        FrameworkUnavailable: jax (or, for a tf.function, tensorflow) is not installed.
    """
    front_end = front_end_of(fn)
    return _lower_tf(fn, args, kwargs) if front_end == "tf" else _lower_jax(fn, args, kwargs)


def _lower_jax(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Lowering:
    try:
        import jax
        import numpy as np
    except ImportError as e:
        raise FrameworkUnavailable(f"{WHO} needs jax for a JAX function: pip install 'xlainspect[jax]'") from e
    from xlainspect.runners.jax_private import UnsupportedJax, check_jax, kept_arguments, static_arguments

    try:
        check_jax()
    except UnsupportedJax as e:
        raise FrameworkUnavailable(f"{WHO}: {e}") from e
    jitted = fn if hasattr(fn, "lower") and hasattr(fn, "_jit_info") else jax.jit(fn)
    name = _name(fn)
    try:
        lowered = jitted.lower(*args, **kwargs)
    except Exception as e:  # jax raises TypeError, ValueError and its own errors for a function that does not trace
        raise InputError(f"{WHO}: {name} does not trace with these arguments: {_first_line(e)}") from e
    text = lowered.as_text(debug_info=True).encode("utf-8")
    statics, static_names = static_arguments(jitted)
    positions = {index % len(args) for index in statics if -len(args) <= index < len(args)}
    dynamic = (tuple(a for i, a in enumerate(args) if i not in positions),
               {k: v for k, v in kwargs.items() if k not in static_names})
    leaves, tree = jax.tree.flatten(dynamic)
    avals = jax.tree.leaves(lowered.in_avals)
    arguments: tuple[Any, ...] | None = None
    why = ""
    if tree != lowered.in_tree or len(avals) != len(leaves):
        why = "the arguments could not be matched with the module's parameters"
    elif any(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves):
        why = "shapes only (jax.ShapeDtypeStruct): compiled, not run; pass arrays to time it"
    else:
        kept = kept_arguments(lowered, len(leaves))
        arguments = tuple(np.asarray(leaves[i], dtype=avals[i].dtype) for i in kept)
    return Lowering("jax", f"jax {jax.__version__}", name, text, "stablehlo", arguments, why, lowered,
                    jax.default_backend())


def _lower_tf(fn: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Lowering:
    import numpy as np
    import tensorflow as tf  # already imported: fn is a tf.function

    name = _name(getattr(fn, "python_function", fn))
    specs = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) if is_abstract(a) and not isinstance(a, tf.TensorSpec)
             else a for a in args]
    try:
        proto = fn.experimental_get_compiler_ir(*specs, **kwargs)(stage="hlo_serialized")
    except Exception as e:  # TF raises TypeError, ValueError and its own errors for a function that does not trace
        raise InputError(f"{WHO}: {name} does not trace with these arguments: {_first_line(e)}") from e
    leaves = [leaf for leaf in tf.nest.flatten((list(args), dict(kwargs)))
              if isinstance(leaf, (tf.Tensor, tf.Variable, np.ndarray)) or is_abstract(leaf)]
    arguments: tuple[Any, ...] | None = None
    why = ""
    if any(is_abstract(leaf) for leaf in leaves):
        why = "shapes only (TensorSpec or ShapeDtypeStruct): compiled, not run; pass arrays to time it"
    else:
        arguments = tuple(np.asarray(leaf) for leaf in leaves)
        parameters = _tf_parameter_count(proto)
        if parameters != len(arguments):
            why = (f"TF's module takes {parameters} parameters and the call gave {len(arguments)} arrays (a "
                   "captured tf.Variable is a parameter too): compiled, not run; pass the variables as arguments "
                   "to time it")
            arguments = None
    return Lowering("tf", f"tensorflow {tf.__version__}", name, proto, "hlo_proto", arguments, why)


def _tf_parameter_count(proto: bytes) -> int:
    """How many parameters the entry computation of a serialized ``HloModuleProto`` takes."""
    from tensorflow.compiler.xla.service import hlo_pb2

    module = hlo_pb2.HloModuleProto.FromString(proto)
    return len(module.host_program_shape.parameters)


def write_inputs(lowering: Lowering, folder: str) -> tuple[str, str | None, tuple[ArgumentBytes, ...]]:
    """Writes the module and the arguments for a child: (module path, arguments path or None, their records).

    The arguments are stored as raw bytes (``.npz`` of ``uint8`` views), their dtypes by name, because numpy's
    files cannot name the dtypes jax adds (``bfloat16``, ``float8_*``).
    """
    import numpy as np

    module_path = os.path.join(folder, "module.mlir" if lowering.module_format == "stablehlo" else "module.pb")
    with open(module_path, "wb") as file:
        file.write(lowering.module)
    if lowering.arguments is None:
        return module_path, None, ()
    records = tuple(ArgumentBytes(f"a{i}", str(value.dtype), tuple(value.shape))
                    for i, value in enumerate(lowering.arguments))
    arguments_path = os.path.join(folder, "arguments.npz")
    np.savez(arguments_path, **{record.name: np.ascontiguousarray(value).reshape(-1).view(np.uint8)
                                for record, value in zip(records, lowering.arguments)})
    return module_path, arguments_path, records


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _kind(value: Any) -> str:
    return "None" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"


def _first_line(error: BaseException) -> str:
    """The first non-empty line of an error, with its type: what the user needs to see to fix the call."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
