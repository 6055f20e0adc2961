"""Lazy access to JAX and TensorFlow, and the naming and precision rules every program's compiled function follows.

``import xlainspect.programs`` must not load either framework (it takes seconds, and a dump child process must set
``XLA_FLAGS`` first), so every function that needs one calls :func:`import_jax` or :func:`import_tf` when it runs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xlainspect.errors import FrameworkUnavailable


def import_jax() -> Any:
    """The ``jax`` module.

    Raises:
        FrameworkUnavailable: jax is not installed; the message names the package to install.
    """
    try:
        import jax
    except ImportError as e:
        raise FrameworkUnavailable("the JAX side of a synthetic program needs jax, which is not installed; "
                                   "run 'pip install xlainspect[jax]'") from e
    return jax


def import_tf() -> Any:
    """The ``tensorflow`` module.

    Raises:
        FrameworkUnavailable: tensorflow is not installed; the message names the package to install.
    """
    try:
        import tensorflow as tf
    except ImportError as e:
        raise FrameworkUnavailable("the TF side of a synthetic program needs tensorflow, which is not installed; "
                                   "run 'pip install xlainspect[tf]'") from e
    return tf


def is_tf_function(fn: Any) -> bool:
    """Whether ``fn`` is a ``tf.function`` (told without importing TensorFlow); any other callable is JAX's."""
    return type(fn).__module__.startswith("tensorflow") and hasattr(fn, "experimental_get_compiler_ir")


def is_array(value: Any) -> bool:
    """Whether an argument's leaf is an array or an array's description (it has a shape and an element type)."""
    return hasattr(value, "shape") and hasattr(value, "dtype")


def is_abstract(value: Any) -> bool:
    """Whether a leaf is a shape and type only (``jax.ShapeDtypeStruct``, ``tf.TensorSpec``): compile, never run."""
    return is_array(value) and not hasattr(value, "__array__") and not hasattr(value, "numpy")


def _renamed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    # Both frameworks name the compiled module after the Python function (`jit_<name>`,
    # `a_inference_<name>_<id>__...`); a generic `step` would make every dump look alike.
    fn.__name__ = name
    fn.__qualname__ = name
    return fn


def _precision_scope(jax: Any, args: Sequence[Any]) -> contextlib.AbstractContextManager[Any]:
    # With jax_enable_x64 off (the default) JAX silently converts float64 arguments to float32 at the call, so a
    # float64 program would quietly run in float32. Turning x64 on for the whole process would change the HLO of
    # float32 programs too (s64 indices), so it is turned on only around calls that pass float64 arrays.
    if any(getattr(arg, "dtype", None) == np.float64 for arg in args):
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def jax_jit(fn: Callable[..., Any], name: str, compiled: bool = True) -> Callable[..., Any]:
    """``jax.jit(fn)`` under the name ``name``, runnable with float32 or float64 arrays.

    The result is a thin wrapper around the jitted function: calling it, or its ``lower(*args)``, turns on
    ``jax_enable_x64`` for that call only when an argument is float64. ``__name__`` is ``name``, so JAX's module is
    ``jit_<name>``; the jitted function itself is ``.jitted``. With ``compiled=False`` (the seed's "no jit") the
    function runs op by op and has neither ``lower`` nor ``jitted``.
    """
    jax = import_jax()
    if not compiled:
        eager = _renamed(fn, name)

        @functools.wraps(eager, assigned=("__name__", "__qualname__", "__doc__"), updated=())
        def call_eagerly(*args: Any) -> Any:
            with _precision_scope(jax, args):
                return eager(*args)

        return call_eagerly
    jitted = jax.jit(_renamed(fn, name))

    @functools.wraps(jitted, assigned=("__name__", "__qualname__", "__doc__"), updated=())
    def call(*args: Any) -> Any:
        with _precision_scope(jax, args):
            return jitted(*args)

    def lower(*args: Any) -> Any:
        with _precision_scope(jax, args):
            return jitted.lower(*args)

    call.lower = lower  # type: ignore[attr-defined]
    call.jitted = jitted  # type: ignore[attr-defined]
    return call


def tf_jit(fn: Callable[..., Any], name: str, compiled: bool = True) -> Any:
    """``tf.function(fn, jit_compile=True)`` whose Python function is called ``name``.

    TF names the XLA module after the Python function (``a_inference_<name>_<id>__XlaMustCompile_true...``). With
    ``compiled=False`` (the seed's "no XLA") it is a ``tf.function`` graph that TF's own kernels run, op by op.
    """
    tf = import_tf()
    return tf.function(_renamed(fn, name), jit_compile=compiled)
