"""Tests for xlainspect.analysis.flops: taps, library GEMMs and convolutions, zero padding, sums of products."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.flops import instruction_flops
from xlainspect.programs import PROGRAMS as ALL_PROGRAMS

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




def flops_of(text: str) -> dict[str, int]:
    """FLOPs of each kernel of an inline module, by name."""
    return {kernel.name: kernel.flops for kernel in census(parse_hlo(text)).kernels}


def test_fused_cudnn_convolution_counts_the_convolution_not_its_bias_or_activation():
    text = textwrap.dedent("""\
        ENTRY %main (x: f32[8,10,10,4], w: f32[6,3,3,4], b: f32[6]) -> f32[8,8,8,6] {
          %x = f32[8,10,10,4]{3,2,1,0} parameter(0)
          %w = f32[6,3,3,4]{3,2,1,0} parameter(1)
          %b = f32[6]{0} parameter(2)
          %c = (f32[8,8,8,6]{3,2,1,0}, u8[0]{0}) custom-call(%x, %w, %b), window={size=3x3}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convBiasActivationForward", backend_config={"cudnn_conv_backend_config":{"activation_mode":"kRelu","conv_result_scale":1,"side_input_scale":0}}
          ROOT %r = f32[8,8,8,6]{3,2,1,0} get-tuple-element(%c), index=0
        }
        """)
    # VALID 3x3 on 10x10: every one of the 8x8 outputs reads 9 real taps; 4 input features per output feature.
    assert flops_of(text)["c"] == 2 * 8 * 6 * 4 * (8 * 3) * (8 * 3)


def gemm_module(target: str, lhs: str, rhs: str, out: str, numbers: str, extra_operands: str = "",
                extra_parameters: str = "", config: str = "") -> str:
    return textwrap.dedent(f"""\
        ENTRY %main () -> {out} {{
          %a = {lhs} parameter(0)
          %b = {rhs} parameter(1)
          {extra_parameters}
          %g = ({out}, s8[256]{{0}}) custom-call(%a, %b{extra_operands}), custom_call_target="{target}", backend_config={{"gemm_backend_config":{{"alpha_real":1,{config}"dot_dimension_numbers":{numbers}}}}}
          ROOT %r = {out} get-tuple-element(%g), index=0
        }}
        """)


BATCHED = ('{"lhs_contracting_dimensions":["2"],"rhs_contracting_dimensions":["1"],"lhs_batch_dimensions":["0"],'
           '"rhs_batch_dimensions":["0"]}')


def test_batched_cublas_gemm_with_beta_counts_2_m_n_k_per_batch_not_the_accumulation():
    text = gemm_module("__cublas$gemm", "f32[4,64,32]{2,1,0}", "f32[4,32,16]{2,1,0}", "f32[4,64,16]{2,1,0}", BATCHED,
                       ", %c", "%c = f32[4,64,16]{2,1,0} parameter(2)", '"beta":1,')
    assert flops_of(text)["g"] == 2 * 4 * 64 * 16 * 32


@pytest.mark.parametrize("target,epilogue", [("__cublas$lt$matmul", "BIAS_RELU"), ("__cublas$lt$matmul", "GELU"),
                                             ("__cublas$lt$matmul$f8", "DEFAULT")])
def test_cublaslt_matmul_counts_its_contraction_whatever_the_epilogue(target, epilogue):
    numbers = ('{"lhs_contracting_dimensions":["0"],"rhs_contracting_dimensions":["0"],"lhs_batch_dimensions":[],'
               '"rhs_batch_dimensions":[]}')  # lhs is K x M: a transposed operand
    text = gemm_module(target, "f32[96,40]{1,0}", "f32[96,24]{1,0}", "f32[40,24]{1,0}", numbers, ", %bias",
                       "%bias = f32[24]{0} parameter(2)", f'"epilogue":"{epilogue}","beta":0,')
    assert flops_of(text)["g"] == 2 * 40 * 24 * 96


# cuDNN wants channels in fours or eights: XLA pads a 1-channel image and its filter with zeros to 4 channels and
# slices the output. The pads sit in their own kernels, so finding them means crossing fusion boundaries.
PADDED_CONV = textwrap.dedent("""\
    %pad_x (p: f32[8,28,28,1]) -> f32[8,28,28,4] {
      %p = f32[8,28,28,1]{3,2,1,0} parameter(0)
      %zero = f32[] constant(0)
      ROOT %pad = f32[8,28,28,4]{3,2,1,0} pad(%p, %zero), padding=0_0x0_0x0_0x0_3
    }

    %pad_w (q: f32[16,5,5,1]) -> f32[16,5,5,4] {
      %q = f32[16,5,5,1]{3,2,1,0} parameter(0)
      %zero.1 = f32[] constant(0)
      ROOT %pad.1 = f32[16,5,5,4]{3,2,1,0} pad(%q, %zero.1), padding=0_0x0_0x0_0x0_3
    }

    ENTRY %main (x: f32[8,28,28,1], w: f32[16,5,5,1]) -> f32[8,24,24,16] {
      %x = f32[8,28,28,1]{3,2,1,0} parameter(0)
      %w = f32[16,5,5,1]{3,2,1,0} parameter(1)
      %xp = f32[8,28,28,4]{3,2,1,0} fusion(%x), kind=kLoop, calls=%pad_x
      %wp = f32[16,5,5,4]{3,2,1,0} fusion(%w), kind=kLoop, calls=%pad_w
      %c = (f32[8,24,24,16]{3,2,1,0}, u8[0]{0}) custom-call(%xp, %wp), window={size=5x5}, dim_labels=b01f_o01i->b01f, custom_call_target="__cudnn$convForward"
      ROOT %r = f32[8,24,24,16]{3,2,1,0} get-tuple-element(%c), index=0
    }
    """)


def test_a_conv_on_zero_padded_channels_counts_the_logical_channels():
    logical = 2 * 8 * 16 * 1 * (24 * 5) * (24 * 5)
    assert flops_of(PADDED_CONV)["c"] == logical
    # Negative cases: padding with a value other than zero is data, and so is a tensor nobody padded.
    assert flops_of(PADDED_CONV.replace("constant(0)", "constant(1)"))["c"] == 4 * logical


def test_backward_filter_on_padded_channels_counts_the_logical_channels():
    text = PADDED_CONV.replace("%wp = f32[16,5,5,4]{3,2,1,0} fusion(%w), kind=kLoop, calls=%pad_w\n", "").replace(
        "ENTRY %main (x: f32[8,28,28,1], w: f32[16,5,5,1]) -> f32[8,24,24,16]",
        "ENTRY %main (x: f32[8,28,28,1], w: f32[16,5,5,1]) -> f32[16,5,5,4]").replace(
        "%w = f32[16,5,5,1]{3,2,1,0} parameter(1)", "%dy = f32[8,24,24,16]{3,2,1,0} parameter(1)").replace(
        "(f32[8,24,24,16]{3,2,1,0}, u8[0]{0}) custom-call(%xp, %wp)", "(f32[16,5,5,4]{3,2,1,0}, u8[0]{0}) custom-call(%xp, %dy)"
    ).replace("__cudnn$convForward", "__cudnn$convBackwardFilter").replace(
        "ROOT %r = f32[8,24,24,16]{3,2,1,0}", "ROOT %r = f32[16,5,5,4]{3,2,1,0}")
    assert flops_of(text)["c"] == 2 * 8 * 16 * 1 * (24 * 5) * (24 * 5)


def test_a_filter_dilated_by_interior_zeros_costs_what_the_dilated_convolution_does():
    # JAX's per-example filter gradient for the H100: a 5x5 filter dilated by 2, written as a 9x9 filter with zeros
    # between its taps. It must cost what XLA:CPU's rhs_dilate=2x2 convolution of the same step costs.
    padded = textwrap.dedent("""\
        %dilate (p: f32[64,5,5,1]) -> f32[64,9,9,1] {
          %p = f32[64,5,5,1]{3,2,1,0} parameter(0)
          %zero = f32[] constant(0)
          ROOT %pad = f32[64,9,9,1]{3,2,1,0} pad(%p, %zero), padding=0_0_0x0_0_1x0_0_1x0_0_0
        }

        ENTRY %main (x: f32[16,12,12,4], w: f32[64,5,5,1]) -> f32[16,4,4,64] {
          %x = f32[16,12,12,4]{3,2,1,0} parameter(0)
          %w = f32[64,5,5,1]{3,2,1,0} parameter(1)
          %wp = f32[64,9,9,1]{3,2,1,0} fusion(%w), kind=kLoop, calls=%dilate
          %c = (f32[16,4,4,64]{3,2,1,0}, u8[0]{0}) custom-call(%x, %wp), window={size=9x9}, dim_labels=b01f_o01i->b01f, feature_group_count=4, custom_call_target="__cudnn$convForward"
          ROOT %r = f32[16,4,4,64]{3,2,1,0} get-tuple-element(%c), index=0
        }
        """)
    dilated = textwrap.dedent("""\
        ENTRY %main (x: f32[16,12,12,4], w: f32[5,5,1,64]) -> f32[16,4,4,64] {
          %x = f32[16,12,12,4]{3,2,1,0} parameter(0)
          %w = f32[5,5,1,64]{3,2,1,0} parameter(1)
          ROOT %c = f32[16,4,4,64]{3,2,1,0} convolution(%x, %w), window={size=5x5 rhs_dilate=2x2}, dim_labels=b01f_01io->b01f, feature_group_count=4
        }
        """)
    assert flops_of(padded)["c"] == flops_of(dilated)["c"] == 2 * 16 * 64 * 1 * (4 * 5) * (4 * 5)


def test_a_split_k_gemm_on_zero_padded_k_counts_the_logical_k():
    # Triton split-K: K=104 padded to 112 and split 4 x 28 by a bitcast; the 4 becomes a batch dimension.
    text = textwrap.dedent("""\
        %pad_a (p: f32[128,104]) -> f32[128,112] {
          %p = f32[128,104]{1,0} parameter(0)
          %zero = f32[] constant(0)
          ROOT %pad = f32[128,112]{1,0} pad(%p, %zero), padding=0_0x0_8
        }

        %pad_b (q: f32[104,50]) -> f32[112,50] {
          %q = f32[104,50]{1,0} parameter(0)
          %zero.1 = f32[] constant(0)
          ROOT %pad.1 = f32[112,50]{1,0} pad(%q, %zero.1), padding=0_8x0_0
        }

        %gemm (a: f32[128,4,28], b: f32[4,28,50]) -> f32[4,128,50] {
          %a = f32[128,4,28]{2,1,0} parameter(0)
          %b = f32[4,28,50]{2,1,0} parameter(1)
          ROOT %dot = f32[4,128,50]{2,1,0} dot(%a, %b), lhs_batch_dims={1}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}
        }

        ENTRY %main (x: f32[128,104], w: f32[104,50]) -> f32[4,128,50] {
          %x = f32[128,104]{1,0} parameter(0)
          %w = f32[104,50]{1,0} parameter(1)
          %xp = f32[128,112]{1,0} fusion(%x), kind=kLoop, calls=%pad_a
          %wp = f32[112,50]{1,0} fusion(%w), kind=kLoop, calls=%pad_b
          %xs = f32[128,4,28]{2,1,0} bitcast(%xp)
          %ws = f32[4,28,50]{2,1,0} bitcast(%wp)
          ROOT %g = f32[4,128,50]{2,1,0} fusion(%xs, %ws), kind=kCustom, calls=%gemm
        }
        """)
    assert flops_of(text)["g"] == 2 * 128 * 50 * 104
    # Only one side padded (the other side's rows 104..111 are real data times zero): still the logical K.
    one_side = text.replace("%wp = f32[112,50]{1,0} fusion(%w), kind=kLoop, calls=%pad_b", "").replace(
        "ENTRY %main (x: f32[128,104], w: f32[104,50])", "ENTRY %main (x: f32[128,104], wp: f32[112,50])").replace(
        "%w = f32[104,50]{1,0} parameter(1)", "%wp = f32[112,50]{1,0} parameter(1)")
    assert flops_of(one_side)["g"] == 2 * 128 * 50 * 104


SUM_OF_PRODUCT = textwrap.dedent("""\
    %add (l: f32[], r: f32[]) -> f32[] {
      %l = f32[] parameter(0)
      %r = f32[] parameter(1)
      ROOT %s = f32[] add(%l, %r)
    }

    %matvec (w: f32[5,7], x: f32[7]) -> f32[5] {
      %w = f32[5,7]{1,0} parameter(0)
      %x = f32[7]{0} parameter(1)
      %bx = f32[5,7]{1,0} broadcast(%x), dimensions={1}
      %m = f32[5,7]{1,0} multiply(%w, %bx)
      %zero = f32[] constant(0)
      ROOT %red = f32[5]{0} reduce(%m, %zero), dimensions={1}, to_apply=%add
    }

    ENTRY %main (w: f32[5,7], x: f32[7]) -> f32[5] {
      %w = f32[5,7]{1,0} parameter(0)
      %x = f32[7]{0} parameter(1)
      ROOT %f = f32[5]{0} fusion(%w, %x), kind=kInput, calls=%matvec
    }
    """)


def test_a_dot_written_as_a_sum_of_products_costs_what_the_dot_does():
    # XLA:GPU's strength reduction of a matrix-vector dot; XLA:CPU keeps the dot (2 x 5 x 7).
    assert flops_of(SUM_OF_PRODUCT)["f"] == 2 * 5 * 7
    scaled = SUM_OF_PRODUCT.replace("%bx = f32[5,7]{1,0} broadcast(%x), dimensions={1}",
                                    "%half = f32[] constant(0.5)\n  %bx = f32[5,7]{1,0} broadcast(%half), dimensions={}")
    assert flops_of(scaled)["f"] == 0  # a scaled sum is no contraction
    assert flops_of(SUM_OF_PRODUCT.replace("ROOT %s = f32[] add", "ROOT %s = f32[] maximum"))["f"] == 0


def test_without_the_module_nothing_is_followed_across_fusions():
    module = parse_hlo(PADDED_CONV)
    entry = module.entry
    custom = entry.by_name["c"]
    assert instruction_flops(entry, custom, module) == 2 * 8 * 16 * 1 * (24 * 5) * (24 * 5)
    assert instruction_flops(entry, custom) == 4 * instruction_flops(entry, custom, module)


# Every committed program, both frameworks: the same step costs the same FLOPs on CPU and for the H100 (where cuDNN,
# Triton split-K GEMMs on zero-padded K, interior-padded filters and strength-reduced dots do the work). A missing dump
# fails: regenerate it with the command in the other backend's manifest. They agree exactly today; the bound is 1%, not
# the 5%, because counting a split-K GEMM's padded K (104 -> 112) puts the FFNN steps only 2.5-3.7% apart.
PROGRAMS = tuple(ALL_PROGRAMS)


@pytest.mark.parametrize("framework", ["jax", "tf"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_the_same_step_costs_the_same_flops_on_cpu_and_h100(program, framework):
    paths = [REPO / "dumps" / backend / program / framework / "after_optimizations.txt" for backend in ("cpu", "gpu-h100")]
    missing = [str(path.relative_to(REPO)) for path in paths if not path.is_file()]
    assert not missing, f"committed dump missing: {missing}"
    cpu, gpu = (census(read_hlo(path)[0]).flops for path in paths)
    assert cpu > 0
    assert abs(gpu - cpu) <= 0.01 * cpu, (cpu, gpu)


@pytest.mark.parametrize("program", ["sgd_mnist", "dpsgd_mnist"])
def test_the_h100_cnn_steps_do_their_convolutions_in_cudnn(program):
    gpu = census(read_hlo(REPO / "dumps" / "gpu-h100" / program / "jax" / "after_optimizations.txt")[0])
    assert any(k.kind.startswith("__cudnn$") and k.flops for k in gpu.kernels)
