"""Tests for xlainspect.analysis.fingerprint: kernel identity is what a kernel computes, never what it is called.

Each case is a module holding one kernel, written twice: once as the base and once with one thing changed. A change
that alters the values computed must change the math fingerprint and make ``xlainspect diff --fail-on-diff`` exit 3;
a change that cannot alter a value (names, metadata, operand order of a commutative op, tuning) must not.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from xlainspect import parse_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.cli import main

# Computations every case may call: reducers, comparators and a nested fusion body.
PRELUDE = textwrap.dedent("""\
    HloModule m

    %add (a: f32[], b: f32[]) -> f32[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %s = f32[] add(%a, %b)
    }

    %max (a: f32[], b: f32[]) -> f32[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %s = f32[] maximum(%a, %b)
    }

    %lt (a: f32[], b: f32[]) -> pred[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %c = pred[] compare(%a, %b), direction=LT
    }

    %gt (a: f32[], b: f32[]) -> pred[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %c = pred[] compare(%a, %b), direction=GT
    }

    %inner_half (x: f32[4,4]) -> f32[4,4] {
      %x = f32[4,4]{1,0} parameter(0)
      %c = f32[] constant(0.5)
      %bc = f32[4,4]{1,0} broadcast(%c), dimensions={}
      ROOT %m = f32[4,4]{1,0} multiply(%x, %bc)
    }

    %inner_two (x: f32[4,4]) -> f32[4,4] {
      %x = f32[4,4]{1,0} parameter(0)
      %c = f32[] constant(2)
      %bc = f32[4,4]{1,0} broadcast(%c), dimensions={}
      ROOT %m = f32[4,4]{1,0} multiply(%x, %bc)
    }
    """)


def fused_module(root: str, shape: str, kind: str = "kLoop") -> str:
    """A module whose only kernel is a fusion with parameters p0, p1 (f32[4,4]), v (f32[4]), i (s32[2,1]),
    u (f32[2,4]), c0 (a zero), and ``root`` as its root."""
    return PRELUDE + textwrap.dedent(f"""\

        %fused (p0: f32[4,4], p1: f32[4,4], v: f32[4], i: s32[2,1], u: f32[2,4]) -> {shape} {{
          %p0 = f32[4,4]{{1,0}} parameter(0)
          %p1 = f32[4,4]{{1,0}} parameter(1)
          %v = f32[4]{{0}} parameter(2)
          %i = s32[2,1]{{1,0}} parameter(3)
          %u = f32[2,4]{{1,0}} parameter(4)
          %c0 = f32[] constant(0)
          %k = s32[] constant(1)
          ROOT %r = {root}
        }}

        ENTRY %main (p0: f32[4,4], p1: f32[4,4], v: f32[4], i: s32[2,1], u: f32[2,4]) -> {shape} {{
          %p0 = f32[4,4]{{1,0}} parameter(0)
          %p1 = f32[4,4]{{1,0}} parameter(1)
          %v = f32[4]{{0}} parameter(2)
          %i = s32[2,1]{{1,0}} parameter(3)
          %u = f32[2,4]{{1,0}} parameter(4)
          ROOT %f = {shape} fusion(%p0, %p1, %v, %i, %u), kind={kind}, calls=%fused
        }}
        """)


def entry_module(root: str, shape: str) -> str:
    """A module whose only kernel is the unfused entry root ``root`` over p0, p1 (f32[4,4]) and x, k (convolution
    input and filter)."""
    return PRELUDE + textwrap.dedent(f"""\

        ENTRY %main (p0: f32[4,4], p1: f32[4,4], x: f32[1,4,4,1], k: f32[3,3,1,1]) -> {shape} {{
          %p0 = f32[4,4]{{1,0}} parameter(0)
          %p1 = f32[4,4]{{1,0}} parameter(1)
          %x = f32[1,4,4,1]{{3,2,1,0}} parameter(2)
          %k = f32[3,3,1,1]{{3,2,1,0}} parameter(3)
          ROOT %r = {root}
        }}
        """)


GEMM = ('(f32[4,4]{{1,0}}, s8[16]{{0}}) custom-call(%p0, %p1), custom_call_target="__cublas$gemm", '
        'backend_config={{"operation_queue_id":"{queue}","gemm_backend_config":{{"alpha_real":{alpha},"beta":0,'
        '"dot_dimension_numbers":{{"lhs_contracting_dimensions":["1"],"rhs_contracting_dimensions":["0"]}},'
        '"epilogue":"DEFAULT","selected_algorithm":"{algorithm}"}}}}')
GEMM_SHAPE = "(f32[4,4], s8[16])"
CONV = ("f32[1,4,4,1]{{3,2,1,0}} convolution(%x, %k), window={{size=3x3 pad={pad}}}, dim_labels={labels}, "
        "feature_group_count=1")

# (case, base module, changed module): each change alters the values the kernel computes.
DIFFERENT_MATH = [
    ("dot contracting dims (W @ x vs W.T @ x)",
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={0}, rhs_contracting_dims={0}", "f32[4,4]")),
    ("dot operand precision",
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, "
                  "operand_precision={highest,highest}", "f32[4,4]")),
    ("reduce adds vs takes the maximum",
     fused_module("f32[4]{0} reduce(%p0, %c0), dimensions={1}, to_apply=%add", "f32[4]"),
     fused_module("f32[4]{0} reduce(%p0, %c0), dimensions={1}, to_apply=%max", "f32[4]")),
    ("reduce dimensions",
     fused_module("f32[4]{0} reduce(%p0, %c0), dimensions={1}, to_apply=%add", "f32[4]"),
     fused_module("f32[4]{0} reduce(%p0, %c0), dimensions={0}, to_apply=%add", "f32[4]")),
    ("constant 0.5 vs 2 (in a nested fusion)",
     fused_module("f32[4,4]{1,0} fusion(%p0), kind=kLoop, calls=%inner_half", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} fusion(%p0), kind=kLoop, calls=%inner_two", "f32[4,4]")),
    ("constant literal",
     fused_module("f32[4,4]{1,0} pad(%p0, %c0), padding=0_0x0_0", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} pad(%p0, %c0), padding=0_0x0_0", "f32[4,4]").replace(
         "%c0 = f32[] constant(0)", "%c0 = f32[] constant(1)")),
    ("comparison direction",
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT", "pred[4,4]"),
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=GT", "pred[4,4]")),
    ("comparison type",
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, type=FLOAT", "pred[4,4]"),
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, type=TOTALORDER", "pred[4,4]")),
    ("operand order of a non-commutative op",
     fused_module("f32[4,4]{1,0} subtract(%p0, %p1)", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} subtract(%p1, %p0)", "f32[4,4]")),
    ("slice start",
     fused_module("f32[2,4]{1,0} slice(%p0), slice={[0:2], [0:4]}", "f32[2,4]"),
     fused_module("f32[2,4]{1,0} slice(%p0), slice={[2:4], [0:4]}", "f32[2,4]")),
    ("dynamic-slice sizes",
     fused_module("f32[2,4]{1,0} dynamic-slice(%p0, %k, %k), dynamic_slice_sizes={2,4}", "f32[2,4]"),
     fused_module("f32[4,2]{1,0} dynamic-slice(%p0, %k, %k), dynamic_slice_sizes={4,2}", "f32[4,2]")),
    ("broadcast dimensions",
     fused_module("f32[4,4]{1,0} broadcast(%v), dimensions={0}", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} broadcast(%v), dimensions={1}", "f32[4,4]")),
    ("transpose dimensions",
     fused_module("f32[4,4]{1,0} transpose(%p0), dimensions={1,0}", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} transpose(%p0), dimensions={0,1}", "f32[4,4]")),
    ("reshape",
     fused_module("f32[16]{0} reshape(%p0)", "f32[16]"),
     fused_module("f32[2,8]{1,0} reshape(%p0)", "f32[2,8]")),
    ("concatenate dimension",
     fused_module("f32[4,8]{1,0} concatenate(%p0, %p1), dimensions={1}", "f32[4,8]"),
     fused_module("f32[8,4]{1,0} concatenate(%p0, %p1), dimensions={0}", "f32[8,4]")),
    ("iota dimension",
     fused_module("s32[4,4]{1,0} iota(), iota_dimension=0", "s32[4,4]"),
     fused_module("s32[4,4]{1,0} iota(), iota_dimension=1", "s32[4,4]")),
    ("padding",
     fused_module("f32[6,4]{1,0} pad(%p0, %c0), padding=1_1x0_0", "f32[6,4]"),
     fused_module("f32[6,4]{1,0} pad(%p0, %c0), padding=2_0x0_0", "f32[6,4]")),
    ("gather dimension numbers",
     fused_module("f32[2,4]{1,0} gather(%p0, %i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, "
                  "index_vector_dim=1, slice_sizes={1,4}", "f32[2,4]"),
     fused_module("f32[2,4]{1,0} gather(%p0, %i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={1}, "
                  "index_vector_dim=1, slice_sizes={1,4}", "f32[2,4]")),
    ("scatter combiner",
     fused_module("f32[4,4]{1,0} scatter(%p0, %i, %u), update_window_dims={1}, inserted_window_dims={0}, "
                  "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=%add", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} scatter(%p0, %i, %u), update_window_dims={1}, inserted_window_dims={0}, "
                  "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=%max", "f32[4,4]")),
    ("sort comparator",
     fused_module("f32[4,4]{1,0} sort(%p0), dimensions={1}, to_apply=%lt", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} sort(%p0), dimensions={1}, to_apply=%gt", "f32[4,4]")),
    ("reduce-precision bits",
     fused_module("f32[4,4]{1,0} reduce-precision(%p0), exponent_bits=5, mantissa_bits=10", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} reduce-precision(%p0), exponent_bits=5, mantissa_bits=7", "f32[4,4]")),
    ("element type",
     fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]"),
     fused_module("bf16[4,4]{1,0} convert(%p0)", "bf16[4,4]")),
    ("fusion kind",
     fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]", kind="kLoop"),
     fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]", kind="kInput")),
    ("convolution padding",
     entry_module(CONV.format(pad="1_1x1_1", labels="b01f_01io->b01f"), "f32[1,4,4,1]"),
     entry_module(CONV.format(pad="2_0x1_1", labels="b01f_01io->b01f"), "f32[1,4,4,1]")),
    ("convolution dimension labels",
     entry_module(CONV.format(pad="1_1x1_1", labels="b01f_01io->b01f"), "f32[1,4,4,1]"),
     entry_module(CONV.format(pad="1_1x1_1", labels="b01f_10io->b01f"), "f32[1,4,4,1]")),
    ("custom-call target",
     entry_module(GEMM.format(queue=0, alpha=1, algorithm=3), GEMM_SHAPE),
     entry_module(GEMM.format(queue=0, alpha=1, algorithm=3).replace("__cublas$gemm", "__cublas$lt$matmul"),
                  GEMM_SHAPE)),
    ("GEMM alpha in backend_config",
     entry_module(GEMM.format(queue=0, alpha=1, algorithm=3), GEMM_SHAPE),
     entry_module(GEMM.format(queue=0, alpha=2, algorithm=3), GEMM_SHAPE)),
    ("comparison order: total against partial (a NaN sorts differently)",
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, order=TOTAL", "pred[4,4]"),
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT", "pred[4,4]")),
    ("all-reduce replica groups",
     entry_module("f32[4,4]{1,0} all-reduce(%p0), replica_groups={{0,1}}, to_apply=%add", "f32[4,4]"),
     entry_module("f32[4,4]{1,0} all-reduce(%p0), replica_groups={{0},{1}}, to_apply=%add", "f32[4,4]")),
]

# (case, base module, changed module): each change leaves every computed value as it was.
SAME_MATH = [
    ("operand order of add", fused_module("f32[4,4]{1,0} add(%p0, %p1)", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} add(%p1, %p0)", "f32[4,4]")),
    ("metadata", fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]"),
     fused_module('f32[4,4]{1,0} negate(%p0), metadata={op_name="jit(f)/neg" source_file="f.py" source_line=3}',
                  "f32[4,4]")),
    ("GEMM tuning: queue and algorithm", entry_module(GEMM.format(queue=0, alpha=1, algorithm=3), GEMM_SHAPE),
     entry_module(GEMM.format(queue=1, alpha=1, algorithm=7), GEMM_SHAPE)),
    ("attribute order and spacing",
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} dot(%p0, %p1), rhs_contracting_dims={ 0 }, lhs_contracting_dims={1}", "f32[4,4]")),
    ("total order as jax 0.10's XLA and jax 0.12's write it",
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, type=TOTALORDER", "pred[4,4]"),
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, order=TOTAL", "pred[4,4]")),
    ("partial order spelled out", fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT", "pred[4,4]"),
     fused_module("pred[4,4]{1,0} compare(%p0, %p1), direction=LT, order=PARTIAL", "pred[4,4]")),
    ("sharding annotation", fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]"),
     fused_module("f32[4,4]{1,0} negate(%p0), sharding={replicated}", "f32[4,4]")),
]

LAYOUT_ONLY = ("transposed layout of the fusion's input and body",
               fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]"),
               fused_module("f32[4,4]{1,0} negate(%p0)", "f32[4,4]").replace(
                   "%p0 = f32[4,4]{1,0} parameter(0)", "%p0 = f32[4,4]{0,1} parameter(0)"))


def only_kernel(text: str):
    kernels = census(parse_hlo(text)).kernels
    assert len(kernels) == 1, [k.name for k in kernels]
    return kernels[0]


def rename_everything(text: str) -> str:
    """Every instruction and computation renamed (``%x`` -> ``%renamed_x``), the math left alone."""
    return re.sub(r"%([A-Za-z_][\w.\-]*)", r"%renamed_\1", text)


@pytest.mark.parametrize("case,base,changed", DIFFERENT_MATH, ids=[case for case, _, _ in DIFFERENT_MATH])
def test_a_change_of_math_changes_the_fingerprint(case, base, changed):
    assert base != changed
    a, b = only_kernel(base), only_kernel(changed)
    assert a.fingerprint != b.fingerprint, case
    assert a.layout_fingerprint != b.layout_fingerprint, case
    assert not diff_census(census(parse_hlo(base)), census(parse_hlo(changed))).same_math


@pytest.mark.parametrize("case,base,changed", SAME_MATH, ids=[case for case, _, _ in SAME_MATH])
def test_a_change_that_keeps_the_math_keeps_the_fingerprint(case, base, changed):
    assert base != changed
    a, b = only_kernel(base), only_kernel(changed)
    assert (a.fingerprint, a.layout_fingerprint) == (b.fingerprint, b.layout_fingerprint), case


@pytest.mark.parametrize("case,base,changed", DIFFERENT_MATH + SAME_MATH,
                         ids=[case for case, _, _ in DIFFERENT_MATH + SAME_MATH])
def test_renaming_every_name_keeps_the_fingerprint(case, base, changed):
    for text in (base, changed):
        renamed = rename_everything(text)
        assert "%renamed_main" in renamed
        assert only_kernel(renamed).layout_fingerprint == only_kernel(text).layout_fingerprint


def test_a_layout_change_is_same_math_with_a_different_layout():
    _, base, changed = LAYOUT_ONLY
    a, b = only_kernel(base), only_kernel(changed)
    assert a.fingerprint == b.fingerprint
    assert a.layout_fingerprint != b.layout_fingerprint
    result = diff_census(census(parse_hlo(base)), census(parse_hlo(changed)))
    assert result.same_math and not result.same_structure
    assert [pair.relation for pair in result.matched] == ["layout"]
    assert result.verdict() == ("same math, different layout: the 1 kernel on each side computes the same values, 1 "
                                "with different memory layouts")


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case,base,changed", DIFFERENT_MATH, ids=[case for case, _, _ in DIFFERENT_MATH])
def test_fail_on_diff_exits_3_on_a_change_of_math(tmp_path, capsys, case, base, changed):
    a, b = _write(tmp_path, "a.txt", base), _write(tmp_path, "b.txt", changed)
    assert main(["diff", a, b, "--fail-on-diff"]) == 3, case
    assert main(["diff", a, b, "--fail-on-diff", "--ignore-layout"]) == 3, case
    renamed = _write(tmp_path, "renamed.txt", rename_everything(base))
    assert main(["diff", a, renamed, "--fail-on-diff"]) == 0, case
    capsys.readouterr()


def test_fail_on_diff_on_layouts_unless_they_are_ignored(tmp_path, capsys):
    _, base, changed = LAYOUT_ONLY
    a, b = _write(tmp_path, "a.txt", base), _write(tmp_path, "b.txt", changed)
    assert main(["diff", a, b, "--fail-on-diff"]) == 3
    assert main(["diff", a, b, "--fail-on-diff", "--ignore-layout"]) == 0
    assert "L      f" in capsys.readouterr().out
