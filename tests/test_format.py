"""Tests for ``xlainspect.output.format``: text tables whose columns are sized from their data."""

from __future__ import annotations

import textwrap

from xlainspect import parse_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.analysis.passes import PassStep
from xlainspect.output.format import diff_text, timeline_text

# TF names kernels after the ops they came from; such names run far past the 34 characters the table once allowed.
LONG = "gradient_tape_sequential_dense_1_matmul_biasadd_relu_fusion.17"

MODULE = textwrap.dedent("""\
    HloModule NAME

    %exp (p: f32[8]) -> f32[8] {
      %p = f32[8]{0} parameter(0)
      ROOT %e = f32[8]{0} exponential(%p)
    }

    %neg (p: f32[8]) -> f32[8] {
      %p = f32[8]{0} parameter(0)
      ROOT %n = f32[8]{0} negate(%p)
    }

    %extra (p: f32[8]) -> f32[8] {
      %p = f32[8]{0} parameter(0)
      ROOT %t = f32[8]{0} EXTRA(%p)
    }

    ENTRY %main (x: f32[8]) -> f32[8] {
      %x = f32[8]{0} parameter(0)
      %FIRST = f32[8]{0} fusion(%x), kind=kLoop, calls=%exp
      %SECOND = f32[8]{0} fusion(%FIRST), kind=kLoop, calls=%neg
      ROOT %ONLY = f32[8]{0} fusion(%SECOND), kind=kLoop, calls=%extra
    }
    """)


def module_text(name: str, first: str, second: str, only: str, extra: str) -> str:
    return (MODULE.replace("NAME", name).replace("FIRST", first).replace("SECOND", second)
            .replace("ONLY", only).replace("EXTRA", extra))


def columns(line: str, *cells: str) -> list[int]:
    """Where each cell starts in a table line."""
    return [line.index(cell) for cell in cells]


def test_diff_columns_widen_for_long_kernel_names_and_stay_in_line():
    a = module_text("a", LONG, "neg_fusion", LONG.replace("17", "18"), "tanh")
    b = module_text("b", "exp_fusion", LONG.replace("17", "19"), "abs_fusion", "abs")
    text = diff_text(diff_census(census(parse_hlo(a)), census(parse_hlo(b))))
    lines = text.splitlines()
    first = next(line for line in lines if line.startswith("  =      " + LONG + " "))
    second = next(line for line in lines if line.startswith("  =      neg_fusion "))
    assert columns(first, "exp_fusion", "exponential") == columns(second, LONG.replace("17", "19"), "negate")
    only_a = next(line for line in lines if line.startswith("  " + LONG.replace("17", "18") + " "))
    only_b = next(line for line in lines if line.startswith("  abs_fusion "))
    assert columns(only_a, "kLoop")[0] == columns(only_b, "kLoop")[0] > len(LONG)


def test_diff_columns_keep_their_widths_for_short_names():
    a = module_text("a", "exp_fusion", "neg_fusion", "tanh_fusion", "tanh")
    b = module_text("b", "exp_fusion.1", "neg_fusion.1", "abs_fusion", "abs")
    lines = diff_text(diff_census(census(parse_hlo(a)), census(parse_hlo(b)))).splitlines()
    assert "  =      exp_fusion                         exp_fusion.1                       exponential" in lines
    assert "  tanh_fusion                        kLoop: tanh" in lines
    assert f"  {'kernels':<28}{'3':>10}{'3':>10}{'':>10}" in lines  # the widths of before: 28, then 10 per side


def test_diff_count_rows_widen_for_long_custom_call_targets():
    target = "__xla_cpu_runtime_OneDnnMatMulReorderAndLayoutAssignment"
    a = module_text("a", "exp_fusion", "neg_fusion", "tanh_fusion", "tanh")
    b = a.replace("ROOT %tanh_fusion = f32[8]{0} fusion(%neg_fusion), kind=kLoop, calls=%extra",
                  f'ROOT %c = f32[8]{{0}} custom-call(%neg_fusion), custom_call_target="{target}"')
    lines = diff_text(diff_census(census(parse_hlo(a)), census(parse_hlo(b)))).splitlines()
    header = next(line for line in lines if line.rstrip().endswith("B-A"))
    row = next(line for line in lines if line.startswith("    " + target))
    assert row.endswith("+1") and len(row) == len(header)  # the numbers stay under their headings
    assert row.index(target) + len(target) < len(row) - 30  # and the label does not run into them


def step(index: int, name: str, fusions: int) -> PassStep:
    return PassStep(index, "pipeline", name, f"{index}.txt", 10 + index, fusions, {"kLoop": fusions} if fusions else {},
                    1, ())


def test_timeline_shows_long_pass_names_whole_with_the_counts_in_line():
    long_name = "gpu-conv-rewriter-and-cudnn-fused-convolution-rewriter-with-bias-activation"
    lines = timeline_text([step(1, "fusion", 0), step(2, long_name, 2), step(3, "dce", 2)]).splitlines()
    assert f"{long_name} (pipeline)" in lines[2]  # shown whole, not cut at the old 58 characters
    end = lines[0].index("instrs") + len("instrs")  # the counts end under their heading on every row
    assert [line[:end].split()[-1] for line in lines[1:4]] == ["11", "12", "13"]
    assert [line[end:].split()[0] for line in lines[1:4]] == ["0", "2", "2"]
    assert lines[2][5] == "*" and lines[3][5] == " "  # the fusion counts changed in step 2 only


def test_timing_text_gives_each_kernel_its_spread_in_line_with_the_header():
    from xlainspect.measure.spread import Spread
    from xlainspect.measure.timing import FrameworkTiming, KernelTime, TimingReport
    from xlainspect.output.format import timing_text

    kernels = (KernelTime("fusion.1", 2, 1234.5, 0.5, None, None, Spread(1000.0, 1100.0, 1300.0, 1500.0)),
               KernelTime(LONG, 1, 12.0, 0.01, None, None, Spread(11.0, 11.5, 12.5, 13.0)))
    report = TimingReport("p", 8, {"jax": FrameworkTiming("jax", "0", 1.0, (2.0, 2.5, 3.0), kernels, "m")})
    lines = timing_text(report).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("hlo_op"))
    first = next(line for line in lines if line.startswith("  fusion.1 "))
    second = next(line for line in lines if line.startswith("  " + LONG))
    end = header.index("± us") + len("± us")  # each spread ends under its heading
    assert first[:end].endswith(" 100.0") and second[:end].endswith(" 0.5")
    assert first[:header.index("total us") + 8].endswith("1234.5")
    assert "  total us: per step, the mean over the profiled runs; ± us: half the interquartile range of each run's " \
           "total" in lines
    unknown = TimingReport("p", 8, {"jax": FrameworkTiming("jax", "0", 1.0, (2.0,), (KernelTime("f", 1, 1.0, 0.5),),
                                                           "m")})
    assert "  ± us: unknown (one profiled run, or the profile did not mark the runs)" in timing_text(unknown)
