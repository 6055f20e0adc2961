"""Tests for xlainspect.testing: the assertions pass and fail when they should, with a diff in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.testing import assert_kernel_count, assert_same_kernels

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.requires_jax
def test_assert_kernel_count():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def loss(w, x):
        return jnp.sum(jnp.tanh(x @ w) ** 2)

    step = jax.jit(jax.grad(loss))
    args = (jnp.ones((4, 4)), jnp.ones((2, 4)))
    result = assert_kernel_count(step, args, max_kernels=50)
    assert result.kernel_count >= 1
    with pytest.raises(AssertionError) as info:
        assert_kernel_count(step, args, max_kernels=0)
    message = str(info.value)
    assert message.startswith(f"expected at most 0 kernels, got {result.kernel_count}\n")
    assert all(kernel.name in message for kernel in result.kernels)


def test_assert_kernel_count_rejects_a_plain_function():
    with pytest.raises(TypeError, match="is not a jax.jit function"):
        assert_kernel_count(lambda x: x, (1,), max_kernels=1)


def test_assert_same_kernels():
    jax_module = read_hlo(REPO / "dumps/cpu/matvec/jax/after_optimizations.txt")[0]
    tf_module = read_hlo(REPO / "dumps/cpu/matvec/tf/after_optimizations.txt")[0]
    # TF's front end compiled by JAX's XLA: another module from another framework, the same kernels.
    tf_via_jax_module = read_hlo(REPO / "dumps/cpu/matvec/tf_via_jax/after_optimizations.txt")[0]
    assert jax_module.name != tf_via_jax_module.name
    assert_same_kernels(jax_module, tf_via_jax_module)
    with pytest.raises(AssertionError) as info:
        assert_same_kernels(jax_module, tf_module)
    assert str(info.value).startswith("kernels differ\n")
    assert "verdict: A has 2 kernels" in str(info.value)


LAYOUT_A = """\
ENTRY %main (p: f32[4,4]) -> f32[4,4] {
  %p = f32[4,4]{1,0} parameter(0)
  ROOT %n = f32[4,4]{1,0} negate(%p)
}
"""


def test_assert_same_kernels_on_layouts():
    a = parse_hlo(LAYOUT_A)
    b = parse_hlo(LAYOUT_A.replace("ROOT %n = f32[4,4]{1,0}", "ROOT %n = f32[4,4]{0,1}"))
    with pytest.raises(AssertionError, match="same math, different layout"):
        assert_same_kernels(a, b)
    assert_same_kernels(a, b, ignore_layout=True)
