"""Tests for xlainspect.analysis.census and xlainspect.analysis.diff: kernel rules, trip counts, FLOPs, bytes, pairing."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.cli import main
from xlainspect.programs import PROGRAMS

REPO = Path(__file__).resolve().parents[1]
REFERENCE_BACKENDS = ("cpu", "gpu-h100")  # the committed dumps: CPU, and deviceless for an H100

MODULE = textwrap.dedent("""\
    HloModule m

    %add (a: f32[], b: f32[]) -> f32[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %s = f32[] add(%a, %b)
    }

    %fused (p0: f32[8,4], p1: f32[4,2]) -> f32[8,2] {
      %p0 = f32[8,4]{1,0} parameter(0)
      %p1 = f32[4,2]{1,0} parameter(1)
      %d = f32[8,2]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(f)/dot_general"}
      ROOT %e = f32[8,2]{1,0} exponential(%d), metadata={op_name="jit(f)/exp"}
    }

    %body (t: (s32[], f32[8,2])) -> (s32[], f32[8,2]) {
      %t = (s32[], f32[8,2]{1,0}) parameter(0)
      %i = s32[] get-tuple-element(%t), index=0
      %v = f32[8,2]{1,0} get-tuple-element(%t), index=1
      %n = f32[8,2]{1,0} negate(%v)
      %one = s32[] constant(1)
      %j = s32[] add(%i, %one)
      ROOT %r = (s32[], f32[8,2]{1,0}) tuple(%j, %n)
    }

    %cond (t: (s32[], f32[8,2])) -> pred[] {
      %t = (s32[], f32[8,2]{1,0}) parameter(0)
      %i = s32[] get-tuple-element(%t), index=0
      %k = s32[] constant(5)
      ROOT %lt = pred[] compare(%i, %k), direction=LT
    }

    ENTRY %main (x: f32[8,4], w: f32[4,2]) -> f32[] {
      %x = f32[8,4]{1,0} parameter(0)
      %w = f32[4,2]{1,0} parameter(1)
      %f = f32[8,2]{1,0} fusion(%x, %w), kind=kOutput, calls=%fused
      %zero = s32[] constant(0)
      %init = (s32[], f32[8,2]{1,0}) tuple(%zero, %f)
      %loop = (s32[], f32[8,2]{1,0}) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"5"}}
      %out = f32[8,2]{1,0} get-tuple-element(%loop), index=1
      %z = f32[] constant(0)
      ROOT %sum = f32[] reduce(%out, %z), dimensions={0,1}, to_apply=%add
    }
    """)


def test_kernel_rule_trip_counts_bytes_and_flops():
    result = census(parse_hlo(MODULE))
    by_name = {kernel.name: kernel for kernel in result.kernels}
    # Kernels: the fusion, the loop body's negate and add, the loop condition's compare, and the reduce; the
    # reducer %add is part of the reduce, and parameters, constants, tuples and gtes are free.
    assert set(by_name) == {"f", "n", "j", "lt", "sum"}
    fusion = by_name["f"]
    assert (fusion.kind, fusion.root_op) == ("kOutput", "exponential")
    assert dict(fusion.fused_ops) == {"dot": 1, "exponential": 1}
    assert fusion.flops == 2 * 8 * 2 * 4
    assert (fusion.bytes_read, fusion.bytes_written) == (8 * 4 * 4 + 4 * 2 * 4, 8 * 2 * 4)
    assert [str(source) for source in fusion.sources] == ["jit(f)/dot_general", "jit(f)/exp"]
    assert (by_name["n"].trips, by_name["n"].trips_known) == (5, True)
    assert by_name["lt"].trips == 5
    assert by_name["sum"].trips == 1
    assert result.launches == 1 + 5 + 5 + 5 + 1
    assert result.fusions_by_kind == {"kOutput": 1}
    assert result.unfused_ops == {"add": 1, "compare": 1, "negate": 1, "reduce": 1}
    assert result.flops == 128


def test_unknown_trip_count_is_flagged():
    unannotated = MODULE.replace(', backend_config={"known_trip_count":{"n":"5"}}', "")
    assert unannotated != MODULE
    # Without XLA's annotation the count comes from running the loop's scalar control (analysis/trip_count)...
    negate = next(k for k in census(parse_hlo(unannotated)).kernels if k.name == "n")
    assert (negate.trips, negate.trips_known) == (5, True)
    # ...unless the bound is data the census cannot know: then the loop counts once, flagged.
    data_bound = unannotated.replace("%k = s32[] constant(5)", '%k = s32[] custom-call(), custom_call_target="bound"')
    negate = next(k for k in census(parse_hlo(data_bound)).kernels if k.name == "n")
    assert (negate.trips, negate.trips_known) == (1, False)


def test_renamed_module_matches_exactly():
    renamed = re.sub(r"%(fused|f|d|e|p0|p1)\b", lambda m: "%x_" + m.group(1), MODULE)
    diff = diff_census(census(parse_hlo(MODULE)), census(parse_hlo(renamed)))
    assert diff.same_structure
    assert all(pair.exact for pair in diff.matched) and len(diff.matched) == 5
    assert diff.verdict() == "same kernels: 5 on each side (17 launches), all identical in math and layout"


def test_split_fusion_is_reported_on_both_sides():
    # The same ops fused under another kind: a partial match, not an identical one.
    split = MODULE.replace("kind=kOutput", "kind=kLoop")
    diff = diff_census(census(parse_hlo(MODULE)), census(parse_hlo(split)))
    assert not diff.same_structure
    pair = next(p for p in diff.matched if p.a.name == "f")
    assert pair.b.name == "f" and not pair.exact and 0.5 <= pair.score < 1.0


# -- checked against the committed dumps and an independent count ---------------------------------------------------


def _independent_top_level_fusions(text: str) -> int:
    """Counts `fusion(` instructions outside fusion bodies by reading the text, without the parser."""
    bodies = set(re.findall(r"fusion\([^\n]*?calls=%?([\w.\-]+)", text))
    count = 0
    computation = None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            computation = header.group(1)
        elif re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = .*? fusion\(", line) and computation not in bodies:
            count += 1
    return count


@pytest.mark.parametrize("backend", REFERENCE_BACKENDS)
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_fusion_counts_match_an_independent_count(program, backend):
    for framework in ("jax", "tf"):
        path = REPO / "dumps" / backend / program / framework / "after_optimizations.txt"
        assert census(read_hlo(path)[0]).fusion_count == _independent_top_level_fusions(path.read_text())


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_diff_cli_works_for_every_program(capsys, program, backend):
    status = main(["diff", "jax", "tf", "--program", program, "--dumps", str(REPO / "dumps"), "--backend", backend,
                   "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    for side in ("a", "b"):
        assert set(data[side]) >= {"kernels", "fusions"}
        assert data[side]["fusions"]["total"] == sum(data[side]["fusions"]["by_kind"].values())
    # Every kernel is paired (with one or, through loops, several kernels) or unpaired, never both.
    paired_a, paired_b = {m["a"] for m in data["matched"]}, {m["b"] for m in data["matched"]}
    assert len(paired_a) + len(data["only_a"]) == data["a"]["kernels"]
    assert len(paired_b) + len(data["only_b"]) == data["b"]["kernels"]
    assert not paired_a & set(data["only_a"]) and not paired_b & set(data["only_b"])
    # Both frameworks compute the same math: their contractions (dots, convolutions, sums of products) must agree,
    # zeros that one side pads in (JAX's 9x9 interior-padded filter on the H100) not counted. One exception, bounded
    # here: on the H100 TF's fused clipping kernels of the CIFAR10 step sum 1,280-element products (clipped bias
    # gradients) that JAX's do not fuse into a reduce, 38,400 FLOPs of 29.5 G; everywhere else the counts are equal.
    assert abs(data["a"]["flops"] - data["b"]["flops"]) <= 2e-6 * data["a"]["flops"]
    if not (program == "dpsgd_cifar10" and backend == "gpu"):
        assert data["a"]["flops"] == data["b"]["flops"]


def test_diff_fail_on_diff_exit_code(capsys):
    dumps = str(REPO / "dumps")
    assert main(["diff", "jax", "tf", "--program", "linear_grad", "--dumps", dumps, "--fail-on-diff"]) == 3
    # TF's front end through JAX's XLA compiles matvec to JAX's kernels under other names (see docs).
    assert main(["diff", "jax", "tf_via_jax", "--program", "matvec", "--dumps", dumps, "--fail-on-diff"]) == 0
    out = capsys.readouterr().out
    assert "verdict: same kernels: 2 on each side (2 launches), all identical in math and layout" in out
    # JAX scales linear_grad's residual by 2 and by 0.2, which jax 0.12's XLA no longer folds into the one multiply
    # by 0.4 that TF's front end emits: nearly the same values, not the same math.
    assert main(["diff", "jax", "tf_via_jax", "--program", "linear_grad", "--dumps", dumps, "--fail-on-diff"]) == 3


def test_diff_needs_a_program_for_framework_names(capsys):
    assert main(["diff", "jax", "tf"]) == 1
    assert capsys.readouterr().err == ("xlainspect: 'jax' names a framework; add --program NAME to pick the dump "
                                       "(dumps/cpu/<program>/jax/), or give a path\n")


def _kinds_by_text(text: str) -> tuple[Counter, Counter]:
    """Fusion kinds and custom-call targets of the instructions outside fusion bodies, read from the text alone:
    ``kind=kLoop``, or for ``kCustom`` the backend config's ``"kind":"__triton_gemm"``; ``custom_call_target``."""
    bodies = set(re.findall(r"fusion\([^\n]*?calls=%?([\w.\-]+)", text))
    fusions: Counter = Counter()
    targets: Counter = Counter()
    computation = None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            computation = header.group(1)
            continue
        if computation in bodies:
            continue
        if re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = .*? fusion\(", line):
            kind = re.search(r"\bkind=(\w+)", line).group(1)
            custom = re.search(r'"kind":"(__[\w]+)"', line)
            fusions[custom.group(1) if kind == "kCustom" and custom else kind] += 1
        elif re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = .*? custom-call\(", line):
            targets[re.search(r'custom_call_target="([^"]+)"', line).group(1)] += 1
    return fusions, targets


@pytest.mark.parametrize("backend", REFERENCE_BACKENDS)
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_census_kinds_match_a_count_on_the_text(program, backend):
    for framework in ("jax", "tf"):
        path = REPO / "dumps" / backend / program / framework / "after_optimizations.txt"
        fusions, targets = _kinds_by_text(path.read_text())
        result = census(read_hlo(path)[0])
        assert result.fusions_by_kind == dict(fusions), path
        assert result.custom_calls == dict(targets), path


def test_fingerprint_of_a_very_deep_fusion_body():
    depth = 3000
    body = "\n".join(f"  n{i} = f32[2]{{0}} negate(n{i - 1})" for i in range(1, depth))
    text = (f"HloModule deep\n\nfused {{\n  n0 = f32[2]{{0}} parameter(0)\n{body}\n}}\n\n"
            "ENTRY e {\n  p = f32[2]{0} parameter(0)\n  ROOT f = f32[2]{0} fusion(p), kind=kLoop, calls=fused\n}\n")
    kernel = census(parse_hlo(text)).kernels[0]
    assert dict(kernel.fused_ops) == {"negate": depth - 1}
    renamed = re.sub(r"\bn(\d+)\b", r"m\1", text)
    assert renamed != text
    assert kernel.fingerprint == census(parse_hlo(renamed)).kernels[0].fingerprint


# Roles whose computations run as code of their own (walked); others (to_apply, select, scatter, calls of a fusion)
# are applied inside one kernel.
_WALKED = re.compile(r"\b(?:condition|body|true_computation|false_computation)=%?([\w.\-]+)|"
                     r"\bbranch_computations=\{([^}]*)\}")
_NOT_KERNELS = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all", "add-dependency",
                "opt-barrier", "domain", "partition-id", "replica-id", "get-dimension-size", "iota", "while",
                "conditional", "call"}


def _xla_kernel_count(summary: dict) -> int:
    """Kernels counted on XLA's own parse of the module: instructions of the entry and of the loop bodies, branches
    and async computations it reaches, except free ops, control flow and async -done/-update halves."""
    by_name = {c["name"]: c for c in summary["computations"]}
    count, todo, seen = 0, [summary["entry"]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for instruction in by_name[name]["instructions"]:
            for single, group in _WALKED.findall(instruction["text"]):
                todo.extend([single] if single else re.findall(r"%?([\w.\-]+)", group))
            opcode = instruction["opcode"]
            wrapped = re.search(r"\bcalls=%?([\w.\-]+)", instruction["text"]) if opcode == "async-start" else None
            if wrapped:  # an async pair around a computation: its kernels count, not the start
                todo.append(wrapped.group(1))
            elif opcode not in _NOT_KERNELS and not opcode.endswith(("-done", "-update")):
                count += 1
    return count


@pytest.mark.requires_jax
def test_kernel_counts_match_a_count_on_xlas_own_parse():
    from xla_oracle import xla_summaries

    paths = [REPO / "dumps" / b / p / f / "after_optimizations.txt" for b in REFERENCE_BACKENDS
             for p in PROGRAMS
             for f in ("jax", "tf")]
    results = xla_summaries([path.read_text() for path in paths])
    for path, result in zip(paths, results):
        assert result.summary is not None, (path, result.error, result.crash)
        assert census(read_hlo(path)[0]).kernel_count == _xla_kernel_count(result.summary), path


@pytest.mark.parametrize("program", ["linear_grad", "dpsgd_ffnn", "dpsgd_mnist"])
def test_kernel_sources_name_the_users_code_or_the_framework_op(program):
    for framework in ("jax", "tf"):
        module = read_hlo(REPO / "dumps" / "cpu" / program / framework / "after_optimizations.txt")[0]
        sources = [source for kernel in census(module).kernels for source in kernel.sources]
        assert sources, framework
        # TF's metadata names tensorflow/python/framework/ops.py for every op: never shown as a kernel's source.
        assert not any("site-packages" in source.location for source in sources), framework
        assert all(source.op_name or source.op_type for source in sources)
        if framework == "jax":  # JAX's stack frames reach the program's own file
            assert any(source.location.endswith(tuple(f".py:{n}" for n in range(1, 1000))) for source in sources)


def test_user_source_skips_framework_and_standard_library_frames():
    from xlainspect.hlo import OpMetadata, SourceLocation

    inside = SourceLocation("/v/lib/python3.12/site-packages/jax/_src/numpy/lax_numpy.py", 10)
    stdlib = SourceLocation("/usr/lib/python3.12/contextlib.py", 81)
    user = SourceLocation("/home/me/train.py", 42)
    assert OpMetadata(stack=(inside, stdlib, user), source=inside).user_source == user
    tf = OpMetadata("MatMul", "model/dense/MatMul",
                    SourceLocation("/v/lib/python3.11/site-packages/tensorflow/python/framework/ops.py", 1221))
    assert tf.user_source is None
    mine = SourceLocation("/v/lib/python3.11/site-packages/mylib/layers.py", 7)  # a user's own installed package
    assert OpMetadata(source=mine).user_source == mine


ASYNC_FUSION = textwrap.dedent("""\
    HloModule m

    %fused_slice (p0: f32[8,4], p1: s32[]) -> f32[1,4] {
      %p0 = f32[8,4]{1,0} parameter(0)
      %p1 = s32[] parameter(1)
      %zero = s32[] constant(0)
      ROOT %ds = f32[1,4]{1,0} dynamic-slice(%p0, %p1, %zero), dynamic_slice_sizes={1,4}
    }

    %async_computation (a0: f32[8,4], a1: s32[]) -> f32[1,4] {
      %a0 = f32[8,4]{1,0} parameter(0)
      %a1 = s32[] parameter(1)
      ROOT %slice_fusion = f32[1,4]{1,0} fusion(%a0, %a1), kind=kLoop, calls=%fused_slice
    }

    %fused_neg (q0: f32[1,4]) -> f32[1,4] {
      %q0 = f32[1,4]{1,0} parameter(0)
      ROOT %n = f32[1,4]{1,0} negate(%q0)
    }

    ENTRY %main (x: f32[8,4], i: s32[]) -> f32[1,4] {
      %x = f32[8,4]{1,0} parameter(0)
      %i = s32[] parameter(1)
      %fusion-start = ((f32[8,4]{1,0}, s32[]), f32[1,4]{1,0}, u32[]) async-start(%x, %i), calls=%async_computation
      %fusion-done = f32[1,4]{1,0} async-done(%fusion-start)
      ROOT %neg_fusion = f32[1,4]{1,0} fusion(%fusion-done), kind=kLoop, calls=%fused_neg
    }
    """)


def test_an_async_fusion_counts_as_the_kernel_it_wraps():
    """jax 0.12's XLA:GPU runs some fusions asynchronously (async-start/-done around a computation holding the
    fusion); the kernel is that fusion, matched with the same fusion run synchronously by an older XLA."""
    async_module = parse_hlo(ASYNC_FUSION)
    kernels = census(async_module).kernels
    assert [(k.name, k.opcode) for k in kernels] == [("slice_fusion", "fusion"), ("neg_fusion", "fusion")]
    assert kernels[1].producers == ("slice_fusion",)  # the -done's value comes from the wrapped fusion
    synchronous = ASYNC_FUSION.replace(
        "%fusion-start = ((f32[8,4]{1,0}, s32[]), f32[1,4]{1,0}, u32[]) async-start(%x, %i), calls=%async_computation\n"
        "  %fusion-done = f32[1,4]{1,0} async-done(%fusion-start)",
        "%fusion-done = f32[1,4]{1,0} fusion(%x, %i), kind=kLoop, calls=%fused_slice")
    assert synchronous != ASYNC_FUSION
    assert diff_census(census(parse_hlo(synchronous)), census(async_module)).same_math


def test_lstm_loop_kernels_pair_with_loop_kernels(capsys):
    """The loop-aware pairing on the LSTM's time loops: per-step kernels pair with per-step kernels, the same
    recurrent matmul on both sides identical, and nothing outside a loop stands in for a loop's kernel."""
    for program, tf_step_trips in (("sgd_lstm", 256), ("dpsgd_lstm", 128 * 256)):
        assert main(["diff", "jax", "tf", "--program", program, "--dumps", str(REPO / "dumps"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        kernels = {side: {k.name: k for k in census(read_hlo(REPO / "dumps/cpu" / program / fw /
                                                             "after_optimizations.txt")[0]).kernels}
                   for side, fw in (("a", "jax"), ("b", "tf"))}
        in_loops = [(kernels["a"][m["a"]], kernels["b"][m["b"]], m) for m in data["matched"]
                    if kernels["a"][m["a"]].trips == 256]
        assert len(in_loops) >= 30, program
        steps = [(a, b, m) for a, b, m in in_loops if b.trips == tf_step_trips]
        assert len(steps) >= 0.8 * len(in_loops), program  # mostly with TF's per-step kernels
        # A JAX step kernel runs 256 times: a pairing accounts for at most that many of its launches.
        assert all(m["launches_a"] <= 256 for _, _, m in in_loops)
        if program == "sgd_lstm":  # the same batched recurrent matmuls: identical kernels
            assert sum(1 for a, _, m in steps if a.flops and m["relation"] == "identical") >= 2
