"""Tests for ``analysis/trip_count``: loops without XLA's ``known_trip_count`` counted by running their scalar
control, and the census's bytes for kernels that slice or update a stacked array in place.

The oracle for trip counts is XLA's own loop analysis: every loop it annotated in the committed dumps must get the
same count from ours when the annotation is ignored. Hand-written modules cover what XLA never annotates (TF's
fused ``i < n and i < max`` conditions, a loop bounded by another loop's result) and what must stay unknown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import _trip_count, census
from xlainspect.analysis.trip_count import inferred_trip_count

REPO = Path(__file__).resolve().parents[1]


def _loops(module):
    return [i for i in module.instructions() if i.opcode == "while"]


def test_counts_agree_with_xlas_own_loop_analysis_on_every_annotated_loop():
    checked = 0
    for path in sorted((REPO / "dumps").rglob("after_optimizations.txt")):
        module = read_hlo(path)[0]
        for loop in _loops(module):
            annotated = _trip_count(loop)
            if annotated is not None:
                assert inferred_trip_count(module, loop) == annotated, (path, loop.name)
                checked += 1
    assert checked >= 20  # the scans of the LSTM programs and the convolution loops of TF's CNN steps


def _loop_module(condition_root: str, bound: str = "s32[] constant(5)", step: str = "1",
                 counter_start: str = "0") -> str:
    """A TF-style loop: counter and bound in the tuple, the compare fused, the increment fused, a kernel inside."""
    return f"""HloModule loop

fused_less (p0: s32[], p1: s32[]) -> pred[] {{
  p0 = s32[] parameter(0)
  p1 = s32[] parameter(1)
  {condition_root}
}}

fused_inc (q0: s32[]) -> s32[] {{
  q0 = s32[] parameter(0)
  one = s32[] constant({step})
  ROOT next = s32[] add(q0, one)
}}

cond (c: (s32[], s32[], f32[8])) -> pred[] {{
  c = (s32[], s32[], f32[8]) parameter(0)
  i = s32[] get-tuple-element(c), index=0
  n = s32[] get-tuple-element(c), index=1
  ROOT less = pred[] fusion(i, n), kind=kLoop, calls=fused_less
}}

body (b: (s32[], s32[], f32[8])) -> (s32[], s32[], f32[8]) {{
  b = (s32[], s32[], f32[8]) parameter(0)
  i = s32[] get-tuple-element(b), index=0
  n = s32[] get-tuple-element(b), index=1
  x = f32[8] get-tuple-element(b), index=2
  e = f32[8] exponential(x)
  next = s32[] fusion(i), kind=kLoop, calls=fused_inc
  ROOT t = (s32[], s32[], f32[8]) tuple(next, n, e)
}}

ENTRY main (a: f32[8]) -> f32[8] {{
  a = f32[8] parameter(0)
  start = s32[] constant({counter_start})
  start_copy = s32[] copy(start)
  bound = {bound}
  init = (s32[], s32[], f32[8]) tuple(start_copy, bound, a)
  w = (s32[], s32[], f32[8]) while(init), condition=cond, body=body
  ROOT r = f32[8] get-tuple-element(w), index=2
}}
"""


LESS = "ROOT lt = pred[] compare(p0, p1), direction=LT"


@pytest.mark.parametrize("condition_root, start, step, expected", [
    (LESS, "0", "1", 5),
    ("ROOT le = pred[] compare(p0, p1), direction=LE", "0", "1", 6),
    (LESS, "2", "1", 3),
    (LESS, "0", "2", 3),
    (LESS, "7", "1", 0),  # the condition is false at once: the body never runs
    ("ROOT gt = pred[] compare(p1, p0), direction=GT", "0", "1", 5),
])
def test_counted_loops_without_an_annotation(condition_root, start, step, expected):
    module = parse_hlo(_loop_module(condition_root, step=step, counter_start=start))
    (loop,) = _loops(module)
    assert _trip_count(loop) is None
    assert inferred_trip_count(module, loop) == expected
    (kernel,) = [k for k in census(module).kernels if k.name == "e"]
    assert (kernel.trips, kernel.trips_known) == (expected, True)


def test_tfs_map_fn_condition_two_compares_and_ed():
    both = ("lt = pred[] compare(p0, p1), direction=LT\n  cap = s32[] constant(3)\n"
            "  lt2 = pred[] compare(p0, cap), direction=LT\n  ROOT both = pred[] and(lt, lt2)")
    module = parse_hlo(_loop_module(both))
    assert inferred_trip_count(module, _loops(module)[0]) == 3  # the smaller bound wins


def test_a_bound_read_from_an_array_stays_unknown():
    bound = "s32[] parameter(1)"
    text = _loop_module(LESS, bound=bound).replace("ENTRY main (a: f32[8]) -> f32[8]",
                                                   "ENTRY main (a: f32[8], n: s32[]) -> f32[8]")
    module = parse_hlo(text)
    assert inferred_trip_count(module, _loops(module)[0]) is None
    (kernel,) = [k for k in census(module).kernels if k.name == "e"]
    assert (kernel.trips, kernel.trips_known) == (1, False)


def test_a_loop_longer_than_the_limit_stays_unknown():
    module = parse_hlo(_loop_module(LESS, bound="s32[] constant(1000)"))
    loop = _loops(module)[0]
    assert inferred_trip_count(module, loop, limit=999) is None
    assert inferred_trip_count(module, loop, limit=1000) == 1000


def test_a_loop_that_never_ends_stays_unknown():
    module = parse_hlo(_loop_module(LESS, step="0"))
    assert inferred_trip_count(module, _loops(module)[0], limit=50) is None


def test_a_gradient_loop_runs_as_often_as_the_forward_loop_it_reads_its_bound_from():
    # TF's gradient of a while_loop counts down from the forward loop's final counter.
    text = _loop_module(LESS, bound="s32[] constant(4)")
    text = text.replace("  ROOT r = f32[8] get-tuple-element(w), index=2\n", """  r = f32[8] get-tuple-element(w), index=2
  ran = s32[] get-tuple-element(w), index=0
  zero = s32[] constant(0)
  init2 = (s32[], s32[], f32[8]) tuple(zero, ran, r)
  w2 = (s32[], s32[], f32[8]) while(init2), condition=cond, body=body
  ROOT r2 = f32[8] get-tuple-element(w2), index=2
""")
    module = parse_hlo(text)
    first, second = _loops(module)
    assert (inferred_trip_count(module, first), inferred_trip_count(module, second)) == (4, 4)
    assert [k.trips for k in census(module).kernels if k.name == "e"] == [4, 4]  # one body, walked per loop


def test_stacked_arrays_count_the_slice_and_the_update_not_the_whole():
    module = parse_hlo("""HloModule stacked

fused_step (s: f32[256,128,100], t: s32[], u: f32[128,100]) -> f32[256,128,100] {
  s = f32[256,128,100] parameter(0)
  t = s32[] parameter(1)
  u = f32[128,100] parameter(2)
  zero = s32[] constant(0)
  row = f32[1,128,100] dynamic-slice(s, t, zero, zero), dynamic_slice_sizes={1,128,100}
  flat = f32[128,100] bitcast(row)
  sum = f32[128,100] add(flat, u)
  back = f32[1,128,100] bitcast(sum)
  ROOT put = f32[256,128,100] dynamic-update-slice(s, back, t, zero, zero)
}

fused_fresh (v: f32[128,100], t: s32[]) -> f32[256,128,100] {
  v = f32[128,100] parameter(0)
  t = s32[] parameter(1)
  zero = s32[] constant(0)
  c = f32[] constant(0)
  b = f32[256,128,100] broadcast(c), dimensions={}
  w = f32[1,128,100] bitcast(v)
  ROOT put = f32[256,128,100] dynamic-update-slice(b, w, t, zero, zero)
}

ENTRY main (s: f32[256,128,100], t: s32[], u: f32[128,100]) -> (f32[256,128,100], f32[256,128,100]) {
  s = f32[256,128,100] parameter(0)
  t = s32[] parameter(1)
  u = f32[128,100] parameter(2)
  step = f32[256,128,100] fusion(s, t, u), kind=kLoop, calls=fused_step
  fresh = f32[256,128,100] fusion(u, t), kind=kLoop, calls=fused_fresh
  ROOT out = (f32[256,128,100], f32[256,128,100]) tuple(step, fresh)
}
""")
    kernels = {k.name: k for k in census(module).kernels}
    slab, index = 128 * 100 * 4, 4
    # Reads the one row it slices, its index and u; writes the row back in place.
    assert (kernels["step"].bytes_read, kernels["step"].bytes_written) == (slab + index + slab, slab)
    # Builds a new stacked array (the broadcast inside): the whole of it is written.
    assert (kernels["fresh"].bytes_read, kernels["fresh"].bytes_written) == (slab + index, 256 * slab)


def test_lstm_steps_do_the_same_contractions_in_both_frameworks():
    """TF's per-example loop (map_fn) and its gradient loop carry no annotation; counted, the work equals JAX's."""
    for program in ("dpsgd_lstm", "sgd_lstm"):
        counts = {fw: census(read_hlo(REPO / "dumps/cpu" / program / fw / "after_optimizations.txt")[0])
                  for fw in ("jax", "tf")}
        assert all(k.trips_known for k in counts["tf"].kernels), program
        assert counts["jax"].flops == counts["tf"].flops > 0, program
        # 128 examples of 256 steps: TF's per-step kernels run 32,768 times.
        assert max(k.trips for k in counts["tf"].kernels) == (128 * 256 if program == "dpsgd_lstm" else 256)
        assert re.search(r"known_trip_count", (REPO / "dumps/cpu" / program / "jax" /
                                               "after_optimizations.txt").read_text())


def test_diff_says_when_its_counts_are_lower_bounds(tmp_path, capsys):
    from xlainspect.cli import main

    bounded = tmp_path / "bounded.txt"
    bounded.write_text(_loop_module(LESS, bound="s32[] parameter(1)").replace(
        "ENTRY main (a: f32[8]) -> f32[8]", "ENTRY main (a: f32[8], n: s32[]) -> f32[8]"))
    counted = tmp_path / "counted.txt"
    counted.write_text(_loop_module(LESS))
    assert main(["diff", str(counted), str(bounded)]) == 0
    out = capsys.readouterr().out
    # The condition's compare, the exponential and the counter's increment: three kernels counted once.
    said = [line.strip() for line in out.splitlines() if "loops whose trip count is unknown" in line]
    assert said == ["B: 3 kernels sit in loops whose trip count is unknown (bounded by data); each counted once, so "
                    "its launches, bytes and FLOPs are lower bounds"]
    assert main(["diff", str(counted), str(bounded), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["a"]["kernels_in_loops_of_unknown_trip_count"],
            data["b"]["kernels_in_loops_of_unknown_trip_count"]) == (0, 3)




PARAMS = "s: f32[256,100], t: s32[], u: f32[1,100]"
ENTRY_PARAMS = ("  s = f32[256,100] parameter(0)\n  t = s32[] parameter(1)\n  u = f32[1,100] parameter(2)")
FUSED_PARAMS = ENTRY_PARAMS + "\n  z = s32[] constant(0)"
STACK, ROW, INDEX = 256 * 100 * 4, 100 * 4, 4


@pytest.mark.parametrize("case, body, result, expected", [
    # The update is the root: in place, the untouched rows neither read nor written.
    ("root", "  ROOT d = f32[256,100] dynamic-update-slice(s, u, t, z)", "f32[256,100]", (INDEX + ROW, ROW)),
    # Two updates in a chain: both rows written in place, nothing read whole.
    ("chain", "  d = f32[256,100] dynamic-update-slice(s, u, t, z)\n"
              "  ROOT e = f32[256,100] dynamic-update-slice(d, u, z, z)", "f32[256,100]", (INDEX + ROW, 2 * ROW)),
    # The updated array is then read whole: not in place, all of it read and written.
    ("read after", "  d = f32[256,100] dynamic-update-slice(s, u, t, z)\n"
                   "  ROOT m = f32[256,100] multiply(d, d)", "f32[256,100]", (STACK + INDEX + ROW, STACK)),
    # The parameter is also read whole elsewhere: XLA cannot update it in place.
    ("other use", "  d = f32[256,100] dynamic-update-slice(s, u, t, z)\n  c = f32[] constant(0)\n"
                  "  r = f32[] reduce(s, c), dimensions={0,1}, to_apply=add\n"
                  "  ROOT o = (f32[256,100], f32[]) tuple(d, r)", "(f32[256,100], f32[])",
     (STACK + INDEX + ROW, STACK + 4)),
    # A tuple root whose first element is an in-place update and whose second reads one row.
    ("tuple", "  d = f32[256,100] dynamic-update-slice(s, u, t, z)\n"
              "  g = f32[1,100] dynamic-slice(s, t, z), dynamic_slice_sizes={1,100}\n"
              "  ROOT o = (f32[256,100], f32[1,100]) tuple(d, g)", "(f32[256,100], f32[1,100])",
     (ROW + INDEX + ROW, ROW + ROW)),
])
def test_in_place_updates_count_only_what_they_touch(case, body, result, expected):
    add = "add (a: f32[], b: f32[]) -> f32[] {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n" \
          "  ROOT c = f32[] add(a, b)\n}\n\n"
    text = f"""HloModule f

{add}fused ({PARAMS}) -> {result} {{
{FUSED_PARAMS}
{body}
}}

ENTRY main ({PARAMS}) -> {result} {{
{ENTRY_PARAMS}
  ROOT f = {result} fusion(s, t, u), kind=kLoop, calls=fused
}}
"""
    (kernel,) = [k for k in census(parse_hlo(text)).kernels if k.name == "f"]
    assert (kernel.bytes_read, kernel.bytes_written) == expected, case


def test_unsigned_counters_wrap_and_not_is_taken_in_their_type():
    # not(i) for a u32 counter from 0: 4294967295, 4294967294, ...; the loop runs while that exceeds 4294967290.
    text = _loop_module("nn = u32[] not(p0)\n  ROOT gt = pred[] compare(nn, p1), direction=GT",
                        bound="u32[] constant(4294967290)").replace("s32[]", "u32[]")
    module = parse_hlo(text)
    assert inferred_trip_count(module, _loops(module)[0]) == 5


def test_an_initial_tuple_built_by_a_fusion():
    text = _loop_module(LESS).replace("init = (s32[], s32[], f32[8]) tuple(start_copy, bound, a)",
                                      "init = (s32[], s32[], f32[8]) fusion(start_copy, bound, a), kind=kLoop, "
                                      "calls=make_tuple")
    text = text.replace("cond (c:", """make_tuple (m0: s32[], m1: s32[], m2: f32[8]) -> (s32[], s32[], f32[8]) {
  m0 = s32[] parameter(0)
  m1 = s32[] parameter(1)
  m2 = f32[8] parameter(2)
  ROOT mt = (s32[], s32[], f32[8]) tuple(m0, m1, m2)
}

cond (c:""")
    module = parse_hlo(text)
    assert inferred_trip_count(module, _loops(module)[0]) == 5


def test_a_loop_in_an_outlined_call_reads_its_start_from_the_caller():
    # XLA:CPU outlines a loop into a computation that a call applies: its initial tuple is that computation's
    # parameter, whose value the one caller passes.
    text = _loop_module(LESS)
    text = text.replace("""ENTRY main (a: f32[8]) -> f32[8] {
  a = f32[8] parameter(0)
  start = s32[] constant(0)
  start_copy = s32[] copy(start)
  bound = s32[] constant(5)
  init = (s32[], s32[], f32[8]) tuple(start_copy, bound, a)
  w = (s32[], s32[], f32[8]) while(init), condition=cond, body=body
  ROOT r = f32[8] get-tuple-element(w), index=2
}""", """outlined (o: (s32[], s32[], f32[8])) -> (s32[], s32[], f32[8]) {
  o = (s32[], s32[], f32[8]) parameter(0)
  ROOT w = (s32[], s32[], f32[8]) while(o), condition=cond, body=body
}

ENTRY main (a: f32[8]) -> f32[8] {
  a = f32[8] parameter(0)
  start = s32[] constant(0)
  bound = s32[] constant(5)
  init = (s32[], s32[], f32[8]) tuple(start, bound, a)
  called = (s32[], s32[], f32[8]) call(init), to_apply=outlined
  ROOT r = f32[8] get-tuple-element(called), index=2
}""")
    module = parse_hlo(text)
    (loop,) = _loops(module)
    assert loop.computation == "outlined" and inferred_trip_count(module, loop) == 5
