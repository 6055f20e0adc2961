"""Nothing but an XlaInspectError escapes the stages after the parser, and none of them hangs.

Whatever module the parser accepts, the census, the diff (against itself, and against the undamaged original or
another generated module), the statistics, the networkx export with its GraphML and JSON writers, and the DOT drawing
each finish within :data:`STAGE_SECONDS` and either return or raise an ``XlaInspectError``; on the undamaged modules
each must return. The modules come from two places: real modules damaged as ``test_parse_fuzz.py`` damages them
(renamed uses make forward references, cycles and computations that call themselves), and small modules generated from
a grammar of HLO that reaches what the later stages walk (fusions, nested fusions, loops, calls, async pairs) and now
and then breaks one of XLA's rules. Hypothesis runs a fixed derandomized search, so CI sees the same cases every run.
The fuzz tests build the drawing's DOT without running graphviz's ``dot``, for speed; one test draws a few damaged
modules with it.
"""

from __future__ import annotations

import functools
import io
import json
import signal
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import networkx as nx
import pytest
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings
from hypothesis import strategies as st
from test_parse_fuzz import EDIT, ORIGINAL_SOURCES, RENAME, apply_edits, check_outcome, read_original

from xlainspect import HloModule, HloParseError, XlaInspectError, module_stats, parse_hlo_modules, to_networkx
from xlainspect.analysis.census import Census, census
from xlainspect.analysis.diff import CensusDiff, diff_census
from xlainspect.analysis.graph import graph_to_json
from xlainspect.output.format import diff_text, stats_text
from xlainspect.output.render import RenderOptions, kernel_graph, render_svg

# Each stage on one small module takes milliseconds; ten seconds is a hang on any machine, and fails the example.
STAGE_SECONDS = 10.0
# Once a stage has hung, hypothesis shrinks the example by running smaller ones, dozens of which hang too: each gets
# this long, so the shrunk reproducer comes in a minute or two rather than after the CI job's own timeout.
AFTER_A_HANG_SECONDS = 1.0
_hangs: list[str] = []
# For the same reason hypothesis stops at the first failure: it neither looks for more bugs (each hanging example
# would cost a second) nor explains the one it found; it shrinks it and reports it.
FUZZ = settings(deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
                phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=[HealthCheck.too_slow])

SVG = "{http://www.w3.org/2000/svg}"

T = TypeVar("T")


class StageTimeout(AssertionError):
    """A stage ran past STAGE_SECONDS: a hang, reported as a failing example instead of a stuck CI job."""


@contextmanager
def time_limit(stage: str) -> Iterator[None]:
    """Raises StageTimeout inside the block when it runs past its limit (SIGALRM: main thread, POSIX).

    pytest-timeout's whole-test alarm uses the same timer; it is set aside for the block and re-armed after it.
    """
    seconds = AFTER_A_HANG_SECONDS if _hangs else STAGE_SECONDS

    def expire(signum, frame):
        _hangs.append(stage)
        raise StageTimeout(f"{stage} still running after {seconds:g} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    outer, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001), interval)


def survives(stage: str, run: Callable[[], T], may_refuse: bool = True) -> T | None:
    """``run()``'s result, or None when it raised an XlaInspectError and ``may_refuse``; any other exception or a
    hang fails the test."""
    with time_limit(stage):
        try:
            return run()
        except XlaInspectError:
            if not may_refuse:
                raise
            return None
        except StageTimeout:
            raise
        except Exception as error:
            raise AssertionError(f"{stage} let {type(error).__name__} escape; only XlaInspectError may") from error


# -- the stages ---------------------------------------------------------------------------------------------------


def check_diff(a: Census, b: Census) -> CensusDiff:
    """diff_census with its invariants: every kernel of each side is matched or unmatched, never both."""
    diff = diff_census(a, b)
    for side, kernels, only in (("a", a.kernels, diff.only_a), ("b", b.kernels, diff.only_b)):
        matched = {id(getattr(pair, side)) for pair in diff.matched}
        unmatched = {id(kernel) for kernel in only}
        assert not matched & unmatched, side
        assert matched | unmatched == {id(kernel) for kernel in kernels}, side
    json.dumps(diff.to_json())
    diff_text(diff)
    return diff


def check_graph(module: HloModule) -> None:
    graph = to_networkx(module)
    assert graph.number_of_nodes() == module.instruction_count
    nx.write_graphml(graph, io.BytesIO())  # plain attribute values only, or this raises
    json.loads(graph_to_json(graph))


def drawings(module: HloModule, kernels: Census | None) -> list[RenderOptions]:
    """Options that reach every branch of the drawing: each kind of computation, cut and collapsed, by time."""
    fusions = [i.name for c in module.computations for i in c.instructions if i.opcode == "fusion"]
    times = {kernel.name: float(n + 1) for n, kernel in enumerate(kernels.kernels)} if kernels else {}
    options = [RenderOptions(), RenderOptions(max_nodes=1), RenderOptions(max_nodes=3, expand_fusions_up_to=100),
               RenderOptions(around=module.entry.root.name, radius=1)]
    options += [RenderOptions(computation=c.name) for c in module.computations[:4]]
    options += [RenderOptions(fusion=name) for name in fusions[:3]]
    if times:
        options += [RenderOptions(color="time", kernel_times=times), RenderOptions(color="time", kernel_times=times,
                                                                                    max_nodes=2)]
    return options


def check_drawing(module: HloModule, options: RenderOptions) -> None:
    rendering = kernel_graph(module, options)
    assert rendering.dot.startswith("digraph kernels {") and rendering.dot.endswith("}")
    assert set(rendering.nodes) <= set(module.computation(rendering.computation).by_name)


def check_pipeline(module: HloModule, counterparts: Sequence[Census] = (), may_refuse: bool = True) -> None:
    """Runs every stage after the parser on ``module``; diffs it against itself and each counterpart both ways.

    Args:
        may_refuse: whether a stage may raise an XlaInspectError (for a damaged module) or must return.
    """
    kernels = survives("census", lambda: census(module), may_refuse)
    if kernels is not None:
        json.dumps(kernels.to_json())
        itself = survives("diff against itself", lambda: check_diff(kernels, kernels), may_refuse)
        assert itself is None or itself.same_structure, itself.verdict()
        for other in counterparts:
            survives("diff against the counterpart", lambda: check_diff(kernels, other), may_refuse)
            survives("diff of the counterpart against it", lambda: check_diff(other, kernels), may_refuse)
    survives("stats", lambda: stats_text([module_stats(module)]), may_refuse)
    survives("graph export", lambda: check_graph(module), may_refuse)
    for options in drawings(module, kernels):
        survives(f"drawing with {options}", lambda: check_drawing(module, options), may_refuse)


def accepted(text: str) -> list[HloModule]:
    """The modules the parser makes of ``text`` (checked as test_parse_fuzz does), or [] when it rejects it."""
    check_outcome(text)
    try:
        return parse_hlo_modules(text, "fuzz.hlo")
    except HloParseError:
        return []


@functools.lru_cache(maxsize=8)
def parsed(text: str) -> tuple[HloModule, ...]:
    return tuple(parse_hlo_modules(text, "original.hlo"))


@functools.lru_cache(maxsize=8)
def _censuses(text: str) -> tuple[Census, ...]:
    return tuple(census(module) for module in parsed(text))


def original_censuses(text: str) -> tuple[Census, ...]:
    """The censuses of the modules of an undamaged text, made once (an exception fails the test)."""
    with time_limit("census of an undamaged module"):
        return _censuses(text)


# -- damaged real modules -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=ORIGINAL_SOURCES)
def original(request) -> str:
    return read_original(request)


# Renamed uses half the time: they keep the text well formed, so the parser's checks rather than its grammar decide, and
# what passes them reaches the later stages with its data flow or calls changed.
DAMAGE = st.lists(st.one_of(RENAME, EDIT), min_size=1, max_size=3)


def test_originals_pass_every_stage(original):
    for module in parsed(original):
        check_pipeline(module, original_censuses(original), may_refuse=False)  # the other modules of a file too


@settings(FUZZ, max_examples=400)
@given(edits=DAMAGE)
def test_damaged_modules_that_parse_pass_every_stage(original, edits):
    text = apply_edits(original, edits)
    modules = accepted(text)
    event("accepted" if modules else "rejected")
    for module in modules:
        check_pipeline(module, original_censuses(original)[module.index:module.index + 1])


def damaged_but_accepted(text: str, wanted: int) -> list[HloModule]:
    """The first ``wanted`` modules the parser accepts from ``text`` with one use renamed, trying each use in turn."""
    found: list[HloModule] = []
    for occurrence in range(10_000):
        if len(found) == wanted:
            break
        damaged = apply_edits(text, [("rename", occurrence, str(occurrence * 7))])
        if damaged != text:
            found += accepted(damaged)[:wanted - len(found)]
    return found


@pytest.mark.parametrize("with_times", [False, True], ids=["by-kind", "by-time"])
def test_damaged_modules_that_parse_are_drawn_by_graphviz(original, with_times):
    modules = damaged_but_accepted(original, 3)
    assert len(modules) == 3, "the rename edits found fewer than three damaged modules that parse"
    for module in modules:
        kernels = survives("census", lambda: census(module))
        times = {kernel.name: 1.0 for kernel in kernels.kernels} if kernels and with_times else {}
        options = RenderOptions(color="time" if times else "kind", kernel_times=times)
        with time_limit("drawing with graphviz"):
            svg, rendering = render_svg(module, options)  # these options are valid: dot must draw what we wrote
        root = ET.fromstring(svg)
        titles = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
        assert set(rendering.nodes) <= titles


# -- generated modules --------------------------------------------------------------------------------------------

_SHAPES = ("f32[]", "f32[4]", "f32[2,4]{1,0}", "s32[]", "pred[]", "bf16[3,0]", "f32[?]", "f32[<=4]", "token[]",
           "(f32[4], s32[])", "()", "f32[100000000000,100000000000]")
# Attribute values a later stage reads as numbers, JSON or labels: well-formed ones first (shrinking picks those),
# then malformed ones that XLA would reject but that xlainspect's parser keeps as text.
_DIMS = ("{}", "{0}", "{1}", "{0,1}", "{9}", "{-9}", "{x}", "{,}")
_INDICES = ("0", "1", "2", "-1", "x", "99999999999999999999")
_TRIP_CONFIGS = ('{"known_trip_count":{"n":"3"}}', '{"known_trip_count":{"n":"100000000000"}}',
                 '{"known_trip_count":{"n":"0"}}', '{"known_trip_count":{"n":"-2"}}', '{"known_trip_count":5}',
                 '{"known_trip_count":{"n":"x"}}', '{"known_trip_count":[]}', '"not json"', "{}")
_FUSION_CONFIGS = ('{"fusion_backend_config":{"kind":"__triton_gemm"}}', '{"fusion_config":{"kind":"__ynn_fusion"}}',
                   '{"fusion_backend_config":7}', '{"fusion_config":{"kind":3}}', '"not json"')
_DIM_LABELS = ("b0f_0io->b0f", "bf_io->bf", "b0f_o->b0f", "garbage", "_", "b0f_0io")
_TARGETS = ('"__cublas$gemm"', '"__cudnn$convForward"', "foo", '""')

_LEAF_KINDS = ("unary", "binary", "constant", "iota", "broadcast", "dot", "convolution", "custom-call", "tuple",
               "get-tuple-element", "bitcast", "async-done")
# Fusions and loops thrice: the census and the drawing do most of their walking in them.
_CALLING_KINDS = ("fusion", "while", "conditional", "call", "reduce", "sort", "all-reduce", *("fusion", "while") * 2)


def _broken(draw) -> bool:
    """One draw in twenty breaks a rule XLA keeps; shrinking prefers the rule kept."""
    return draw(st.integers(0, 19)) == 19


@st.composite
def _operation(draw, pick_operand: Callable[[], str], pick_callee: Callable[[], str], can_call: bool) -> str:
    """``opcode(operands), attributes`` of one generated instruction; one that calls a computation if ``can_call``."""
    def operands(count: int) -> str:
        return ", ".join(pick_operand() for _ in range(count))

    def one_of(values: Sequence[str]) -> str:
        return draw(st.sampled_from(values))

    kind = one_of(_LEAF_KINDS + _CALLING_KINDS if can_call else _LEAF_KINDS)
    if kind == "unary":
        return f"{one_of(('negate', 'exponential', 'copy'))}({operands(1)})"
    if kind == "binary":
        return f"{one_of(('add', 'multiply', 'maximum', 'select'))}({operands(draw(st.integers(2, 3)))})"
    if kind == "constant":
        return f"constant({one_of(('1', '{1, 2, 3, 4}', '{...}', 'true'))})"
    if kind == "iota":
        return f"iota(), iota_dimension={one_of(_INDICES)}"
    if kind == "broadcast":
        return f"broadcast({operands(1)}), dimensions={one_of(_DIMS)}"
    if kind == "dot":
        return f"dot({operands(2)}), lhs_contracting_dims={one_of(_DIMS)}, rhs_contracting_dims={one_of(_DIMS)}"
    if kind == "convolution":
        return f"convolution({operands(2)}), window={{size=1}}, dim_labels={one_of(_DIM_LABELS)}"
    if kind == "custom-call":
        return f"custom-call({operands(draw(st.integers(0, 2)))}), custom_call_target={one_of(_TARGETS)}"
    if kind == "tuple":
        return f"tuple({operands(draw(st.integers(0, 3)))})"
    if kind == "get-tuple-element":
        return f"get-tuple-element({operands(1)}), index={one_of(_INDICES)}"
    if kind == "bitcast":
        return f"bitcast({operands(1)})"
    if kind == "async-done":
        return f"{one_of(('all-reduce-done', 'copy-start', 'copy-done', 'async-done'))}({operands(1)})"
    if kind == "fusion":
        fusion_kind = one_of(("kLoop", "kInput", "kOutput", "kCustom"))
        config = f", backend_config={one_of(_FUSION_CONFIGS)}" if draw(st.booleans()) else ""
        calls = "" if _broken(draw) else f", calls={pick_callee()}"
        return f"fusion({operands(draw(st.integers(0, 3)))}), kind={fusion_kind}{calls}{config}"
    if kind == "while":
        config = f", backend_config={one_of(_TRIP_CONFIGS)}" if draw(st.booleans()) else ""
        return f"while({operands(1)}), condition={pick_callee()}, body={pick_callee()}{config}"
    if kind == "conditional":
        if draw(st.booleans()):
            return (f"conditional({operands(3)}), true_computation={pick_callee()}, "
                    f"false_computation={pick_callee()}")
        count = draw(st.integers(1, 3))
        branches = ", ".join(pick_callee() for _ in range(count))
        return f"conditional({operands(count + 1)}), branch_computations={{{branches}}}"
    if kind == "call":
        return f"call({operands(draw(st.integers(0, 2)))}), to_apply={pick_callee()}"
    if kind == "reduce":
        return f"reduce({operands(2)}), dimensions={one_of(_DIMS)}, to_apply={pick_callee()}"
    if kind == "sort":
        return f"sort({operands(draw(st.integers(1, 2)))}), dimensions={one_of(_DIMS)}, to_apply={pick_callee()}"
    return f"{one_of(('all-reduce', 'all-reduce-start'))}({operands(1)}), to_apply={pick_callee()}"


@st.composite
def generated_modules(draw) -> str:
    """The text of a small module: computations in order, the last the entry, each calling only earlier ones.

    One choice in twenty breaks a rule XLA keeps: an operand used before it is defined (or by itself), a call of the
    computation itself or of a later one, a fusion without ``calls=``, the ROOT not last or missing. Names repeat
    across computations in half the modules, as hand-written HLO allows.
    """
    count = draw(st.integers(1, 4))
    names = [f"c{n}" for n in range(count)]
    prefix = draw(st.sampled_from(("", "%")))
    unique = draw(st.booleans())
    lines = ["HloModule generated"]
    for n, computation in enumerate(names):
        size = draw(st.integers(1, 6))
        values = [f"{computation}.v{k}" if unique else f"v{k}" for k in range(size)]
        defined: list[str] = []

        def pick_operand() -> str:
            return prefix + draw(st.sampled_from(values if _broken(draw) else defined))

        def pick_callee() -> str:
            return prefix + draw(st.sampled_from(names if _broken(draw) or n == 0 else names[:n]))

        header = "ENTRY " if n == count - 1 else ""
        lines.append(f"{header}{prefix}{computation} {{")
        parameters = draw(st.integers(0 if n == count - 1 else 1, 2))
        root = draw(st.integers(-1, size - 1)) if _broken(draw) else size - 1
        for k, value in enumerate(values):
            shape = draw(st.sampled_from(_SHAPES))
            if k < parameters:
                operation = f"parameter({k})"
            elif not defined:
                operation = draw(st.sampled_from(("constant(1)", "iota(), iota_dimension=0")))
            else:
                operation = draw(_operation(pick_operand, pick_callee, can_call=n > 0 or _broken(draw)))
            marker = "ROOT " if k == root else ""
            lines.append(f"  {marker}{prefix}{value} = {shape} {operation}")
            defined.append(value)
        lines.append("}")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=1000)
@given(text=generated_modules(), other=generated_modules())
def test_generated_modules_that_parse_pass_every_stage(text, other):
    note(f"module:\n{text}\nother module:\n{other}")
    modules = accepted(text)
    assume(modules)  # a health check fails the test if the grammar stops making modules the parser accepts
    counterparts = [survives("census of the other module", lambda: census(module)) for module in accepted(other)]
    for module in modules:
        check_pipeline(module, [kernels for kernels in counterparts if kernels is not None])


# -- cases written out ---------------------------------------------------------------------------------------------

# The malformed modules issue 12 names, and what this fuzzing found.
TARGETED_CASES = {
    "cycle in a fusion body": """
        fused {
          p = f32[4] parameter(0)
          a = f32[4] add(p, b)
          ROOT b = f32[4] multiply(a, p)
        }
        ENTRY e {
          x = f32[4] parameter(0)
          ROOT f = f32[4] fusion(x), kind=kLoop, calls=fused
        }
        """,
    "cycle in the entry": """
        ENTRY e {
          p = f32[4] parameter(0)
          a = f32[4] add(p, b)
          ROOT b = f32[4] negate(a)
        }
        """,
    "forward reference": """
        ENTRY e {
          p = f32[4] parameter(0)
          a = f32[4] add(p, b)
          b = f32[4] negate(p)
          ROOT r = f32[4] multiply(a, b)
        }
        """,
    "fusion without calls": """
        ENTRY e {
          p = f32[4] parameter(0)
          ROOT f = f32[4] fusion(p), kind=kLoop
        }
        """,
    "computation calling itself": """
        c {
          p = f32[4] parameter(0)
          ROOT r = f32[4] call(p), to_apply=c
        }
        ENTRY e {
          p = f32[4] parameter(0)
          ROOT r = f32[4] call(p), to_apply=c
        }
        """,
    "fusion body fusing itself": """
        fused {
          p = f32[4] parameter(0)
          ROOT f = f32[4] fusion(p), kind=kLoop, calls=fused
        }
        ENTRY e {
          x = f32[4] parameter(0)
          ROOT f = f32[4] fusion(x), kind=kLoop, calls=fused
        }
        """,
    "while body running the while": """
        cond {
          p = f32[4] parameter(0)
          ROOT t = pred[] constant(true)
        }
        body {
          p = f32[4] parameter(0)
          ROOT w = f32[4] while(p), condition=cond, body=body, backend_config={"known_trip_count":{"n":"4"}}
        }
        ENTRY e {
          x = f32[4] parameter(0)
          ROOT w = f32[4] while(x), condition=cond, body=body, backend_config={"known_trip_count":{"n":"4"}}
        }
        """,
    "two loops sharing a body that runs zero times": """
        cond {
          p = f32[4] parameter(0)
          ROOT t = pred[] constant(false)
        }
        body {
          p = f32[4] parameter(0)
          ROOT n = f32[4] negate(p)
        }
        ENTRY e {
          x = f32[4] parameter(0)
          w = f32[4] while(x), condition=cond, body=body, backend_config={"known_trip_count":{"n":"0"}}
          ROOT w2 = f32[4] while(w), condition=cond, body=body, backend_config={"known_trip_count":{"n":"0"}}
        }
        """,
}


@pytest.mark.parametrize("text", TARGETED_CASES.values(), ids=TARGETED_CASES.keys())
def test_targeted_cases_are_rejected_or_pass_every_stage(text):
    for module in accepted(textwrap.dedent(text)):
        check_pipeline(module)
