"""Assertions for users' own test suites: pin down what XLA compiles, and see the diff when it changes.

    from xlainspect.testing import assert_kernel_count, assert_same_kernels

    def test_step_stays_fused():
        assert_kernel_count(jax.jit(step), (params, batch), max_kernels=30)

Failures raise ``AssertionError`` with the census or the kernel diff in the message, so a CI log says which kernels
appeared, not only that a number changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from xlainspect.analysis.census import Census, census
from xlainspect.analysis.diff import diff_census
from xlainspect.hlo import HloModule, parse_hlo
from xlainspect.output.format import diff_text


def compiled_module(fn: Callable[..., Any], args: Sequence[Any]) -> HloModule:
    """The optimized HLO module XLA compiles for a ``jax.jit`` function on ``args`` (compiled here, not run)."""
    lower = getattr(fn, "lower", None)
    if lower is None:
        raise TypeError(f"{fn!r} is not a jax.jit function (it has no .lower); wrap it with jax.jit")
    return parse_hlo(lower(*args).compile().as_text(), f"<compiled {getattr(fn, '__name__', 'function')}>")


def _describe(result: Census) -> str:
    lines = [f"{result.kernel_count} kernels ({result.launches} launches) in {result.module}:"]
    for kernel in result.kernels:
        trips = f" x{kernel.trips}" if kernel.trips != 1 else ""
        lines.append(f"  {kernel.name} [{kernel.kind}]{trips}")
    return "\n".join(lines)


def assert_kernel_count(fn: Callable[..., Any], args: Sequence[Any], max_kernels: int | None = None,
                        min_kernels: int | None = None, max_fusions: int | None = None) -> Census:
    """Asserts bounds on the kernels XLA compiles for a jitted JAX function, and returns the census.

    Raises:
        AssertionError: a bound is not met; the message lists every kernel.
    """
    result = census(compiled_module(fn, args))
    problems = []
    if max_kernels is not None and result.kernel_count > max_kernels:
        problems.append(f"expected at most {max_kernels} kernels, got {result.kernel_count}")
    if min_kernels is not None and result.kernel_count < min_kernels:
        problems.append(f"expected at least {min_kernels} kernels, got {result.kernel_count}")
    if max_fusions is not None and result.fusion_count > max_fusions:
        problems.append(f"expected at most {max_fusions} fusions, got {result.fusion_count}")
    if problems:
        raise AssertionError("; ".join(problems) + "\n" + _describe(result))
    return result


def assert_same_kernels(module_a: HloModule, module_b: HloModule, ignore_layout: bool = False) -> None:
    """Asserts two modules launch the same kernels, names ignored: the same math, as often, with the same layouts.

    Args:
        ignore_layout: accept kernels that compute the same values with different memory layouts.

    Raises:
        AssertionError: the kernels differ; the message is the full ``xlainspect diff`` table.
    """
    result = diff_census(census(module_a), census(module_b))
    if not (result.same_math if ignore_layout else result.same_structure):
        raise AssertionError("kernels differ\n" + diff_text(result, module_a.name, module_b.name, module_a.source,
                                                            module_b.source))
