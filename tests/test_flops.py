"""Tests for xlainspect.analysis.flops: convolution work tap by tap, and library GEMMs and convolutions counted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census

REPO = Path(__file__).resolve().parents[1]


def conv_cases():
    import jax

    def conv(**settings):
        return lambda x, w: jax.lax.conv_general_dilated(x, w, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                                         **settings)

    return {
        "strided, padded": (conv(window_strides=(2, 2), padding=((3, 3), (3, 3))), (4, 28, 28, 3), (8, 8, 3, 16)),
        "base-dilated (a strided conv's input gradient)": (
            conv(window_strides=(1, 1), padding=((3, 4), (3, 4)), lhs_dilation=(2, 2)), (4, 5, 5, 32), (4, 4, 32, 16)),
        "filter-dilated": (conv(window_strides=(1, 1), padding="SAME", rhs_dilation=(2, 2)), (2, 12, 12, 4),
                           (3, 3, 4, 8)),
        "grouped": (conv(window_strides=(1, 1), padding="VALID", feature_group_count=4), (2, 10, 10, 8),
                    (3, 3, 2, 12)),
    }


@pytest.mark.requires_jax
def test_convolution_flops_equal_xla_own_cost_analysis():
    import jax
    import jax.numpy as jnp

    for name, (function, x_shape, w_shape) in conv_cases().items():
        args = (jax.ShapeDtypeStruct(x_shape, jnp.float32), jax.ShapeDtypeStruct(w_shape, jnp.float32))
        compiled = jax.jit(function).lower(*args).compile()
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        ours = census(parse_hlo(compiled.as_text())).flops
        assert ours == int(analysis["flops"]), name
        assert ours > 0, name


CUDNN = textwrap.dedent("""\
    ENTRY %main (x: f32[128,28,28,1], w: f32[16,8,8,1], dy: f32[128,14,14,16]) -> f32[1] {
      %x = f32[128,28,28,1]{3,2,1,0} parameter(0)
      %w = f32[16,8,8,1]{3,2,1,0} parameter(1)
      %dy = f32[128,14,14,16]{3,2,1,0} parameter(2)
      %fwd = (f32[128,14,14,16]{3,2,1,0}, u8[0]{0}) custom-call(%x, %w), window={size=8x8 stride=2x2 pad=3_3x3_3}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convForward"
      %dx = (f32[128,28,28,1]{3,2,1,0}, u8[0]{0}) custom-call(%dy, %w), window={size=8x8 stride=2x2 pad=3_3x3_3}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convBackwardInput"
      %dw = (f32[16,8,8,1]{3,2,1,0}, u8[0]{0}) custom-call(%x, %dy), window={size=8x8 stride=2x2 pad=3_3x3_3}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convBackwardFilter"
      ROOT %z = f32[1]{0} constant({0})
    }
    """)


def test_cudnn_convolutions_in_each_direction_cost_the_forward_convolution():
    kernels = {k.name: k for k in census(parse_hlo(CUDNN)).kernels}
    # The forward convolution: 8x8 filter, stride 2, padding 3, on 28x28: per output row 14 positions, of which the
    # taps that fall inside the image: counted by hand below.
    taps = sum(1 for out in range(14) for k in range(8) if 0 <= out * 2 - 3 + k <= 27)
    expected = 2 * 128 * 16 * 1 * taps * taps
    assert {name: k.flops for name, k in kernels.items() if name in ("fwd", "dx", "dw")} == {
        "fwd": expected, "dx": expected, "dw": expected}


GEMM = textwrap.dedent("""\
    ENTRY %main (a: f32[64,32], b: f32[32,16]) -> (f32[64,16], s8[256]) {
      %a = f32[64,32]{1,0} parameter(0)
      %b = f32[32,16]{1,0} parameter(1)
      ROOT %g = (f32[64,16]{1,0}, s8[256]{0}) custom-call(%a, %b), custom_call_target="__cublas$gemm", backend_config={"gemm_backend_config":{"alpha_real":1,"beta":0,"dot_dimension_numbers":{"lhs_contracting_dimensions":["1"],"rhs_contracting_dimensions":["0"],"lhs_batch_dimensions":[],"rhs_batch_dimensions":[]}}}
    }
    """)


def test_cublas_gemm_flops_come_from_its_backend_config():
    (kernel,) = census(parse_hlo(GEMM)).kernels
    assert kernel.flops == 2 * 64 * 16 * 32
    broken = GEMM.replace('"lhs_contracting_dimensions":["1"]', '"lhs_contracting_dimensions":["7"]')
    assert census(parse_hlo(broken)).kernels[0].flops == 0  # no estimate rather than a wrong one


# The CNN programs' FLOPs on CPU and for the H100 (cuDNN custom-calls there). Two are left out on purpose: JAX's
# dpsgd_mnist H100 module computes per-example filter gradients with cuDNN on a filter padded with interior zeros
# (9x9 instead of a 5x5 filter dilated by 2), which does 3.8x that convolution's work on zeros; and the FFNN modules
# differ by 4-7% where one backend lowers a small contraction as a dot and the other as multiply + reduce.
@pytest.mark.parametrize("program,framework", [("sgd_mnist", "jax"), ("sgd_mnist", "tf"), ("dpsgd_mnist", "tf")])
def test_the_same_step_costs_the_same_flops_on_cpu_and_h100(program, framework):
    cpu, gpu = (census(read_hlo(REPO / "dumps" / backend / program / framework / "after_optimizations.txt")[0])
                for backend in ("cpu", "gpu-h100"))
    assert any(k.opcode == "custom-call" and k.flops for k in gpu.kernels)  # cuDNN does the convolutions there
    assert cpu.flops == gpu.flops > 0
