"""Tests for xlainspect.analysis.diff and xlainspect.analysis.matching: classes, loops, launches, position, and real loop twins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import Census, census
from xlainspect.analysis.diff import CensusDiff, diff_census
from xlainspect.output.format import diff_text

TESTS = Path(__file__).resolve().parent


def diff_texts(a: str, b: str) -> CensusDiff:
    return diff_census(census(parse_hlo(a)), census(parse_hlo(b)))


def launch_accounting(result: CensusDiff) -> None:
    """Every launch of each side is matched or unmatched: no kernel gives more launches than it runs, the matched
    launches add up to what the diff reports, and unmatched kernels' launches are all outside the matched ones."""
    for side, census_, matched in (("a", result.a, result.launches_matched_a),
                                   ("b", result.b, result.launches_matched_b)):
        taken = Counter()
        for pair in result.matched:
            taken[getattr(pair, side).name] += getattr(pair, f"launches_{side}")
        for kernel in census_.kernels:
            assert 0 <= taken[kernel.name] <= kernel.trips, kernel.name
        assert sum(taken.values()) == matched
        only = result.only_a if side == "a" else result.only_b
        assert matched + sum(kernel.trips for kernel in only) <= census_.launches


# -- classes: partial matches never pair different kinds of kernel ---------------------------------------------------

def custom_call_module(target: str) -> str:
    return textwrap.dedent(f"""\
        ENTRY %main (x: f32[1,8,8,4], w: f32[3,3,4,4]) -> f32[1,8,8,4] {{
          %x = f32[1,8,8,4]{{3,2,1,0}} parameter(0)
          %w = f32[3,3,4,4]{{3,2,1,0}} parameter(1)
          ROOT %k = f32[1,8,8,4]{{3,2,1,0}} custom-call(%x, %w), custom_call_target="{target}"
        }}
        """)


FUSED_DOT = textwrap.dedent("""\
    %body (a: f32[8,4], b: f32[4,2]) -> f32[8,2] {
      %a = f32[8,4]{1,0} parameter(0)
      %b = f32[4,2]{1,0} parameter(1)
      ROOT %d = f32[8,2]{1,0} dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    }

    ENTRY %main (a: f32[8,4], b: f32[4,2]) -> f32[8,2] {
      %a = f32[8,4]{1,0} parameter(0)
      %b = f32[4,2]{1,0} parameter(1)
      ROOT %f = f32[8,2]{1,0} fusion(%a, %b), kind=KIND, calls=%body
    }
    """)
UNFUSED_DOT = textwrap.dedent("""\
    ENTRY %main (a: f32[8,4], b: f32[4,2]) -> f32[8,2] {
      %a = f32[8,4]{1,0} parameter(0)
      %b = f32[4,2]{1,0} parameter(1)
      ROOT %d = f32[8,2]{1,0} dot(%a, %b), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    }
    """)
TRITON = FUSED_DOT.replace("kind=KIND", 'kind=kCustom, backend_config={"fusion_backend_config":{"kind":"__triton_gemm"}}')


@pytest.mark.parametrize("a,b", [
    (custom_call_module("__cublas$gemm"), custom_call_module("__cudnn$convForward")),
    (FUSED_DOT.replace("KIND", "kLoop"), UNFUSED_DOT),
    (TRITON, FUSED_DOT.replace("KIND", "kLoop")),
    (TRITON, custom_call_module("__cublas$gemm")),
], ids=["gemm-vs-conv", "fusion-vs-unfused-op", "triton-vs-loop-fusion", "triton-vs-cublas"])
def test_kernels_of_different_classes_never_pair(a, b):
    result = diff_texts(a, b)
    assert result.matched == ()
    assert len(result.only_a) == len(result.only_b) == 1


def test_kernels_of_one_class_pair_when_similar():
    # The same custom-call target on other shapes, and loop/input fusions of one body, are partial matches.
    result = diff_texts(custom_call_module("__cublas$gemm"),
                        custom_call_module("__cublas$gemm").replace("f32[1,8,8,4]", "f32[2,8,8,4]"))
    assert [pair.relation for pair in result.matched] == ["similar"]
    result = diff_texts(FUSED_DOT.replace("KIND", "kLoop"), FUSED_DOT.replace("KIND", "kOutput"))
    assert [pair.relation for pair in result.matched] == ["similar"]


# -- loops: a loop body's kernel stands for the unrolled kernels of its twin ------------------------------------------

LAYER = "%{name} = f32[8,8]{{1,0}} fusion(%{x}, %w), kind=kLoop, calls=%layer"
LOOP_PRELUDE = textwrap.dedent("""\
    %layer (x: f32[8,8], w: f32[8,8]) -> f32[8,8] {
      %x = f32[8,8]{1,0} parameter(0)
      %w = f32[8,8]{1,0} parameter(1)
      %m = f32[8,8]{1,0} multiply(%x, %w)
      ROOT %t = f32[8,8]{1,0} tanh(%m)
    }
    """)


def unrolled(layers: int) -> str:
    lines = [LAYER.format(name=f"h{i + 1}", x=f"h{i}") for i in range(layers)]
    body = "\n  ".join(lines)
    return LOOP_PRELUDE + textwrap.dedent(f"""\

        ENTRY %main (h0: f32[8,8], w: f32[8,8]) -> f32[8,8] {{
          %h0 = f32[8,8]{{1,0}} parameter(0)
          %w = f32[8,8]{{1,0}} parameter(1)
          {body}
          ROOT %out = f32[8,8]{{1,0}} negate(%h{layers})
        }}
        """).replace("\n          ", "\n  ")


def scanned(trips: int) -> str:
    return LOOP_PRELUDE + textwrap.dedent(f"""\

        %body (t: (s32[], f32[8,8], f32[8,8])) -> (s32[], f32[8,8], f32[8,8]) {{
          %t = (s32[], f32[8,8]{{1,0}}, f32[8,8]{{1,0}}) parameter(0)
          %i = s32[] get-tuple-element(%t), index=0
          %x = f32[8,8]{{1,0}} get-tuple-element(%t), index=1
          %w = f32[8,8]{{1,0}} get-tuple-element(%t), index=2
          %y = f32[8,8]{{1,0}} fusion(%x, %w), kind=kLoop, calls=%layer
          %one = s32[] constant(1)
          %j = s32[] add(%i, %one)
          ROOT %r = (s32[], f32[8,8]{{1,0}}, f32[8,8]{{1,0}}) tuple(%j, %y, %w)
        }}

        %cond (t: (s32[], f32[8,8], f32[8,8])) -> pred[] {{
          %t = (s32[], f32[8,8]{{1,0}}, f32[8,8]{{1,0}}) parameter(0)
          %i = s32[] get-tuple-element(%t), index=0
          %n = s32[] constant({trips})
          ROOT %lt = pred[] compare(%i, %n), direction=LT
        }}

        ENTRY %main (h0: f32[8,8], w: f32[8,8]) -> f32[8,8] {{
          %h0 = f32[8,8]{{1,0}} parameter(0)
          %w = f32[8,8]{{1,0}} parameter(1)
          %zero = s32[] constant(0)
          %init = (s32[], f32[8,8]{{1,0}}, f32[8,8]{{1,0}}) tuple(%zero, %h0, %w)
          %loop = (s32[], f32[8,8]{{1,0}}, f32[8,8]{{1,0}}) while(%init), condition=%cond, body=%body, backend_config={{"known_trip_count":{{"n":"{trips}"}}}}
          %last = f32[8,8]{{1,0}} get-tuple-element(%loop), index=1
          ROOT %out = f32[8,8]{{1,0}} negate(%last)
        }}
        """)


@pytest.mark.parametrize("scan_is_a", [True, False], ids=["scan-vs-unrolled", "unrolled-vs-scan"])
def test_a_loop_body_kernel_stands_for_its_unrolled_twins(scan_is_a):
    loop, flat = scanned(4), unrolled(4)
    result = diff_texts(loop, flat) if scan_is_a else diff_texts(flat, loop)
    launch_accounting(result)
    groups = result.groups()
    assert len(groups) == 1
    kernel, partners, side = groups[0]
    assert (kernel.name, kernel.trips, side) == ("y", 4, "a" if scan_is_a else "b")
    assert [k.name for k in partners] == ["h1", "h2", "h3", "h4"]  # in layer order
    assert {pair.relation for pair in result.matched} == {"identical"}
    unrolled_side = result.b if scan_is_a else result.a
    paired = {(pair.b if scan_is_a else pair.a).name for pair in result.matched}
    assert {k.name for k in unrolled_side.kernels} == paired  # every unrolled kernel is matched
    assert result.launches_matched_a == result.launches_matched_b == 5  # four layers and the final negate
    assert not result.same_math
    text = diff_text(result)
    assert f"{'A' if scan_is_a else 'B'}: y x4 = 4 kernels h1 ... h4: multiply, tanh" in text
    # The loop's own counter and condition are what only the scanned side runs.
    only = result.only_a if scan_is_a else result.only_b
    assert sorted((k.name, k.trips) for k in only) == [("j", 4), ("lt", 4)]


def test_a_loop_with_fewer_trips_leaves_the_rest_unmatched():
    result = diff_texts(scanned(3), unrolled(4))
    launch_accounting(result)
    assert result.launches_matched_a == result.launches_matched_b == 4  # three layers and the negate
    assert len(result.only_b) == 1 and result.only_b[0].name.startswith("h")


def test_a_kernel_in_a_loop_is_not_identical_to_one_that_runs_once():
    # One layer unrolled against a loop of 128 trips: the same math, not the same launches.
    result = diff_texts(unrolled(1), scanned(128))
    pair = next(p for p in result.matched if p.a.name == "h1")
    assert pair.relation == "identical" and pair.b.trips == 128
    assert pair.launches_a == pair.launches_b == 1
    assert not result.same_math and not result.same_structure
    assert "y x128 (127 of its launches unmatched)" in diff_text(result)
    launch_accounting(result)


def test_equal_launches_are_one_to_one():
    result = diff_texts(scanned(4), scanned(4).replace("%y", "%renamed_y"))
    assert result.same_structure and result.one_to_one
    assert result.launches_matched_a == result.a.launches == 4 * 3 + 1


# -- position: equal kernels pair with the one whose neighbours agree -------------------------------------------------

def chains(order: list[str]) -> str:
    """Two independent chains of equal kernels (x -> e -> a1 -> a2 -> a3, y -> l -> b1 -> b2 -> b3), each starting
    from a kernel of its own (exponential, log), printed in the given order."""
    defs = {
        "e": "%e = f32[8]{0} exponential(%x)",
        "l": "%l = f32[8]{0} log(%y)",
        "a1": "%a1 = f32[8]{0} negate(%e)", "a2": "%a2 = f32[8]{0} negate(%a1)", "a3": "%a3 = f32[8]{0} negate(%a2)",
        "b1": "%b1 = f32[8]{0} negate(%l)", "b2": "%b2 = f32[8]{0} negate(%b1)", "b3": "%b3 = f32[8]{0} negate(%b2)",
    }
    body = "\n".join("  " + defs[name] for name in order)
    return textwrap.dedent("""\
        ENTRY %main (x: f32[8], y: f32[8]) -> (f32[8], f32[8]) {
          %x = f32[8]{0} parameter(0)
          %y = f32[8]{0} parameter(1)
        """) + body + "\n  ROOT %out = (f32[8]{0}, f32[8]{0}) tuple(%a3, %b3)\n}\n"


def test_equal_kernels_pair_by_their_neighbours_not_only_by_position():
    interleaved = chains(["e", "l", "a1", "b1", "a2", "b2", "a3", "b3"])
    sequential = chains(["e", "a1", "a2", "a3", "l", "b1", "b2", "b3"])
    result = diff_texts(interleaved, sequential)
    assert result.same_structure
    assert {pair.a.name: pair.b.name for pair in result.matched} == {
        name: name for name in ("e", "l", "a1", "a2", "a3", "b1", "b2", "b3")}


def test_a_changed_kernel_is_reported_where_it_sits():
    original = chains(["e", "a1", "a2", "a3", "l", "b1", "b2", "b3"])
    changed = original.replace("%b2 = f32[8]{0} negate(%b1)", "%b2 = f32[8]{0} abs(%b1)")
    result = diff_texts(original, changed)
    assert [k.name for k in result.only_a] == ["b2"] and [k.name for k in result.only_b] == ["b2"]
    assert {pair.a.name: pair.b.name for pair in result.matched}["b3"] == "b3"
    text = diff_text(result)
    assert text.count("at after b1 (paired with b1 in ") == 2  # both sides' b2 sit after the paired b1


# -- a real unrolled model against its scanned twin -------------------------------------------------------------------

@pytest.fixture(scope="module")
def loop_twins(tmp_path_factory) -> tuple[Census, Census]:
    pytest.importorskip("jax")
    out = tmp_path_factory.mktemp("loop_pair")
    subprocess.run([sys.executable, str(TESTS / "programs" / "loop_pair.py"), str(out), "--layers", "6"],
                   check=True, timeout=600, capture_output=True,
                   env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
    return census(read_hlo(out / "unrolled.txt")[0]), census(read_hlo(out / "scan.txt")[0])


@pytest.mark.slow
@pytest.mark.requires_jax
def test_an_unrolled_transformer_matches_its_scanned_twin(loop_twins):
    flat, loop = loop_twins
    assert any(kernel.trips == 6 for kernel in loop.kernels)  # the scan really is a loop of 6 trips
    assert flat.kernel_count > 3 * loop.kernel_count // 2
    result = diff_census(flat, loop)
    launch_accounting(result)
    matched = {pair.a.name for pair in result.matched}
    assert len(matched) >= 0.9 * flat.kernel_count, diff_text(result)
    assert result.groups(), "no loop-body kernel stands for unrolled kernels"
    assert not result.same_math


def test_a_loop_kernel_paired_with_its_unrolled_twins_counts_its_time_once():
    from xlainspect.analysis.diff import split_time

    result = diff_texts(scanned(4), unrolled(4))
    times_a = {"y": 40.0, "j": 1.0, "lt": 1.0, "out": 2.0}
    times_b = {"h1": 9.0, "h2": 9.0, "h3": 9.0, "h4": 9.0, "out": 2.0}
    split = split_time(result, times_a, times_b)
    assert (split.matched_a_us, split.matched_b_us) == (42.0, 38.0)
    assert (split.only_a_us, split.only_b_us) == (2.0, 0.0)


PLUMBED_LAYER = textwrap.dedent("""\
    %layer_sliced (x: f32[8,8], w: f32[8,8]) -> f32[8,8] {
      %x = f32[8,8]{1,0} parameter(0)
      %w = f32[8,8]{1,0} parameter(1)
      %z = s32[] constant(0)
      %ws = f32[8,8]{1,0} dynamic-slice(%w, %z, %z), dynamic_slice_sizes={8,8}
      %ws2 = f32[8,8]{1,0} dynamic-slice(%ws, %z, %z), dynamic_slice_sizes={8,8}
      %m = f32[8,8]{1,0} multiply(%x, %ws2)
      %t = f32[8,8]{1,0} tanh(%m)
      %n = f32[8,8]{1,0} negate(%t)
      %u = f32[8,8]{1,0} dynamic-update-slice(%n, %n, %z, %z)
      ROOT %u2 = f32[8,8]{1,0} dynamic-update-slice(%u, %n, %z, %z)
    }
    """)
NEGATED_LAYER = ("ROOT %t = f32[8,8]{1,0} tanh(%m)", "%t = f32[8,8]{1,0} tanh(%m)\n  ROOT %n = f32[8,8]{1,0} negate(%t)")


def test_a_loop_body_kernel_that_slices_stacked_buffers_pairs_with_its_unrolled_twins():
    # Reading the iteration's slice and writing it back are how a scan is built, not the layer's math: across loop
    # boundaries they are left out of the overlap, so 3 of 4 ops agree (0.85) instead of 3 of 8 (0.475, unpaired).
    loop = PLUMBED_LAYER + scanned(4).replace("kind=kLoop, calls=%layer", "kind=kLoop, calls=%layer_sliced")
    flat = unrolled(4).replace(*NEGATED_LAYER)
    assert "calls=%layer_sliced" in loop and "negate(%t)" in flat
    result = diff_texts(loop, flat)
    pairs = [p for p in result.matched if p.a.name == "y"]
    assert [p.b.name for p in pairs] == ["h1", "h2", "h3", "h4"]
    assert all(p.relation == "similar" and p.score > 0.8 for p in pairs)
    launch_accounting(result)
    # Between kernels that run equally often the same slices count: one body against one unrolled layer.
    assert [p.b.name for p in diff_texts(loop.replace('"n":"4"', '"n":"1"'), unrolled(1).replace(*NEGATED_LAYER))
            .matched if p.a.name == "y"] == []


def test_kernels_in_a_loop_of_zero_trips_still_pair():
    loop = scanned(0)
    result = diff_texts(loop, loop.replace("%y", "%renamed_y"))
    assert {k.trips for k in result.a.kernels} == {0, 1}
    assert result.same_structure and len(result.matched) == result.a.kernel_count
