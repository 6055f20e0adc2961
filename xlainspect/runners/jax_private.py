"""The jax versions xlainspect supports, and every private jax API it uses, in one place.

Two paths need what jax's public API does not offer: converting TF's ``HloModuleProto`` to StableHLO and compiling it
with a given client (``--compiler jax``, ``tf_via_jax`` timing and memory), and XLA's own HLO text parser (the test
oracle and the parser benchmark). Private modules move between jax releases, so each name is looked up here, with
the places it has lived in the supported releases, and a version outside the supported range is refused with one
line before anything else runs.

Only children, tests and benchmarks import this module; it imports jax when a function is called.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jax

OLDEST = (0, 10, 2)  # the oldest jax whose paths the compatibility tests run
BEYOND = (0, 13)  # the first minor release not yet checked
SUPPORTED = "jax 0.10.2 to 0.12.x"


class UnsupportedJax(Exception):
    """The installed jax is outside the supported range, or lacks an API that the supported releases have."""


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.12.0.1"`` as ``(0, 12, 0, 1)``; a suffix such as ``.dev20261001`` or ``rc1`` is left out."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0].split("dev")[0].split("rc")[0]))


def unsupported_reason(version: str) -> str | None:
    """Why jax ``version`` is not supported, or None when it is."""
    parsed = version_tuple(version)
    if parsed < OLDEST or parsed[:2] >= BEYOND:
        return (f"jax {version} is not supported; xlainspect supports {SUPPORTED} "
                "(pip install 'jax>=0.10.2,<0.13', or point --python at an environment that has one)")
    return None


def check_jax() -> None:
    """Raises :class:`UnsupportedJax` unless the installed jax is a supported release."""
    import jax

    reason = unsupported_reason(jax.__version__)
    if reason is not None:
        raise UnsupportedJax(reason)


def _first(candidates: Sequence[tuple[str, str]], what: str) -> Any:
    """The first ``(module, attribute path)`` of ``candidates`` that exists: where ``what`` lives in this jax."""
    for module_name, attribute in candidates:
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split(".") if attribute else ():
                value = getattr(value, part)
        except (ImportError, AttributeError):
            continue
        return value
    import jax

    raise UnsupportedJax(f"jax {jax.__version__} has no {what} (looked where {SUPPORTED} keep it); install a "
                         "supported jax: pip install 'jax>=0.10.2,<0.13'")


def hlo_to_stablehlo(proto: bytes) -> Any:
    """A serialized ``HloModuleProto`` as StableHLO (bytecode or text, as this jaxlib's converter returns it)."""
    convert = _first([("jax._src.lib", "_jax.mlir.hlo_to_stablehlo"),  # jaxlib 0.7 and later
                      ("jax._src.lib", "xla_extension.mlir.hlo_to_stablehlo")], "hlo_to_stablehlo")
    return convert(proto)


def compile_stablehlo(stablehlo: Any, device: jax.Device, load: bool) -> Any:
    """``stablehlo`` compiled by ``device``'s client for that one device.

    Args:
        load: True for a device that can run it (the result has ``execute``); False for a compile-only device.
    """
    mlir = _first([("jax._src.interpreters.mlir", "")], "jax._src.interpreters.mlir")
    ir = _first([("jax._src.lib.mlir", "ir")], "jax._src.lib.mlir.ir")
    xla_client = _first([("jax._src.lib", "xla_client")], "jax._src.lib.xla_client")
    with mlir.make_ir_context():
        module = ir.Module.parse(stablehlo)
        devices = xla_client.DeviceList((device,))
        options = xla_client.CompileOptions()
        if load:
            return device.client.compile_and_load(module, devices, options)
        return device.client.compile(module, devices, options)


def hlo_module_from_text(text: str) -> Any:
    """XLA's own parse of HLO text (an ``HloModule`` binding); raises what XLA raises on text it rejects."""
    parse = _first([("jax._src.lib", "xla_client.hlo.hlo_module_from_text"),  # jaxlib 0.10 and 0.12
                    ("jax._src.lib", "xla_client._xla.hlo_module_from_text")], "hlo_module_from_text")
    return parse(text)


def static_arguments(jitted: Any) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The positions and names of a ``jax.jit`` function's static arguments, which its lowered module leaves out.

    jax keeps them on the jitted object's private ``_jit_info`` (0.10.2 to 0.12: ``static_argnums``,
    ``static_argnames``, the names including those of the static positions).
    """
    info = getattr(jitted, "_jit_info", None)
    if info is None or not hasattr(info, "static_argnums"):
        import jax

        raise UnsupportedJax(f"jax {jax.__version__}: a jitted function without _jit_info.static_argnums "
                             f"(looked where {SUPPORTED} keep it)")
    return tuple(info.static_argnums), tuple(getattr(info, "static_argnames", ()))


def kept_arguments(lowered: Any, count: int) -> tuple[int, ...]:
    """Which of a lowered function's ``count`` flat dynamic arguments its module takes, in parameter order.

    ``jax.jit`` drops unused arguments (``keep_unused=False``, the default) from the module; jax records the kept
    ones in the private ``Lowered._lowering.compile_args["kept_var_idx"]`` (0.10.2 to 0.12).
    """
    compile_args = getattr(getattr(lowered, "_lowering", None), "compile_args", None)
    if not isinstance(compile_args, dict) or "kept_var_idx" not in compile_args:
        import jax

        raise UnsupportedJax(f"jax {jax.__version__}: a lowered function without compile_args['kept_var_idx'] "
                             f"(looked where {SUPPORTED} keep it)")
    kept = tuple(sorted(compile_args["kept_var_idx"]))
    if any(index >= count for index in kept):
        raise UnsupportedJax(f"kept_var_idx {kept} names more than the {count} arguments given")
    return kept
