"""Damaged HLO text never crashes the parser: it yields modules or an HloParseError that points inside the text.

Real modules (a JAX dump kept in ``tests/data/``, and two files of the shared corpus when it is present) are cut,
overwritten, have lines dropped or repeated, and have a use of a name pointed at another defined name (which makes
forward references, cycles and computations that call themselves), by hypothesis with a fixed derandomized search so
CI sees the same cases every run. ``test_fuzz_pipeline.py`` runs what the parser accepts through the later stages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlainspect import HloModule, HloParseError, parse_hlo_modules

DATA = Path(__file__).resolve().parent / "data"

CORPUS_SOURCES = (
    "xla__service__gpu__tests__dot_bf16.hlo",  # three modules split by `// -----`, CHECK lines, backend configs
    "xla__hlo__translate__hlo_to_mhlo__tests__if_conditional.hlo",  # conditionals, bare computations, comments
)

# Characters that matter to the grammar, weighted in beside printable ASCII at large.
_SIGNIFICANT = "(){}[]\"'%=,/*\n-<>?:;. \t\\0123456789ROOTENTRY"
_CHARACTER = st.one_of(st.sampled_from(_SIGNIFICANT), st.characters(min_codepoint=32, max_codepoint=126))

# A name an instruction or computation defines: `  ROOT %x = ...` (group 1), `%fused (p: f32[]) -> ...` or
# `ENTRY main {` (group 2).
_DEFINED_NAME = re.compile(r"^[ \t]*(?:(?:ROOT[ \t]+)?%?([A-Za-z_][\w.\-]*)[ \t]*="
                           r"|(?:ENTRY[ \t]+)?%?([A-Za-z_][\w.\-]*)[ \t]*[({])", re.MULTILINE)

# One edit: (kind, position, argument). Positions are taken modulo the current length, so they shrink well.
RENAME = st.tuples(st.just("rename"), st.integers(0, 10**9), st.integers(0, 10**9).map(str))
EDIT = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 10**9), st.just("")),
    st.tuples(st.just("overwrite"), st.integers(0, 10**9), st.text(_CHARACTER, min_size=1, max_size=4)),
    st.tuples(st.just("insert"), st.integers(0, 10**9), st.text(_CHARACTER, min_size=1, max_size=4)),
    st.tuples(st.just("delete-line"), st.integers(0, 10**9), st.just("")),
    st.tuples(st.just("duplicate-line"), st.integers(0, 10**9), st.integers(0, 10**9).map(str)),
    RENAME,
)
EDITS = st.lists(EDIT, min_size=1, max_size=4)


def apply_edits(text: str, edits: list[tuple[str, int, str]]) -> str:
    for kind, position, argument in edits:
        if not text:
            break
        if kind == "truncate":
            text = text[:position % len(text)]
        elif kind == "overwrite":
            at = position % len(text)
            text = text[:at] + argument + text[at + len(argument):]
        elif kind == "insert":
            at = position % (len(text) + 1)
            text = text[:at] + argument + text[at:]
        elif kind == "rename":
            text = _rename(text, position, int(argument))
        else:
            lines = text.split("\n")
            at = position % len(lines)
            if kind == "delete-line":
                del lines[at]
            else:
                lines.insert(int(argument) % (len(lines) + 1), lines[at])
            text = "\n".join(lines)
    return text


def _rename(text: str, occurrence: int, replacement: int) -> str:
    """Points one use of a defined name at another name of its kind: a computation's at any computation, an
    instruction's at one its computation defines, so the text has forward references, cycles and computations that
    call themselves rather than names that are not there. Both choices are taken modulo the number of candidates."""
    definitions = list(_DEFINED_NAME.finditer(text))
    computations = {match[2] for match in definitions if match[2]}
    names = {match[1] or match[2] for match in definitions}
    if len(names) < 2:
        return text
    longest_first = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    defining = {match.start(1) if match[1] else match.start(2) for match in definitions}
    uses = [use for use in re.finditer(rf"(?<![\w.\-])({longest_first})(?![\w.\-])", text)
            if use.start() not in defining]
    if not uses:
        return text
    use = uses[occurrence % len(uses)]
    if use[1] in computations:
        candidates = sorted(computations)
    else:
        start, end = text.rfind("\n}", 0, use.start()), text.find("\n}", use.end())
        end = len(text) if end < 0 else end
        candidates = sorted({match[1] for match in definitions if match[1] and start < match.start() < end})
    if not candidates:  # a use outside any computation, in a comment
        return text
    return text[:use.start()] + candidates[replacement % len(candidates)] + text[use.end():]


def check_outcome(text: str) -> None:
    """The parser's one promise on any text: modules that hold together, or an HloParseError inside the text."""
    try:
        modules = parse_hlo_modules(text, "fuzz.hlo")
    except HloParseError as error:
        lines = text.split("\n")
        assert error.path == "fuzz.hlo"
        assert 1 <= error.line <= len(lines), (error.line, len(lines))
        assert 1 <= error.column <= len(lines[error.line - 1]) + 1, (error.column, lines[error.line - 1])
        assert error.message and "\n" not in error.message
        assert str(error) == f"fuzz.hlo:{error.line}:{error.column}: {error.message}"
        return
    assert modules and all(isinstance(m, HloModule) for m in modules)
    for module in modules:
        assert module.entry.is_entry
        assert sum(c.is_entry for c in module.computations) == 1
        for computation in module.computations:
            assert sum(i.is_root for i in computation.instructions) == 1
            for instruction in computation.instructions:
                assert all(o in computation.by_name for o in instruction.operands), instruction.name
                assert all(c.name in module.by_name for c in instruction.called_computations), instruction.name


ORIGINAL_SOURCES = ("jax_dump", *CORPUS_SOURCES)


def read_original(request: pytest.FixtureRequest) -> str:
    """The text of the original named by ``request.param`` (one of ORIGINAL_SOURCES); skips when it is missing."""
    if request.param == "jax_dump":
        return (DATA / "jit_layer.cpu_after_optimizations.txt").read_text()
    shared = request.getfixturevalue("shared_dir")
    path = shared / "hlo-corpus" / "openxla" / request.param
    if not path.is_file():
        pytest.skip(f"{path} is missing from the shared corpus")
    return path.read_text()


@pytest.fixture(scope="module", params=ORIGINAL_SOURCES)
def original(request) -> str:
    return read_original(request)


def test_originals_parse(original):
    check_outcome(original)
    assert parse_hlo_modules(original)  # undamaged, every source must parse


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(edits=EDITS)
def test_damaged_modules_parse_or_raise_hlo_parse_error(original, edits):
    check_outcome(apply_edits(original, edits))


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(text=st.text(_CHARACTER, max_size=200))
def test_arbitrary_text_parses_or_raises_hlo_parse_error(text):
    check_outcome(text)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(depth=st.integers(1, 40), opener=st.sampled_from("({["), closer=st.sampled_from(")}]"),
       where=st.sampled_from(["shape", "operand", "attribute", "header"]))
def test_deep_and_mismatched_brackets_parse_or_raise_hlo_parse_error(depth, opener, closer, where):
    group = opener * depth + closer * depth
    text = {
        "shape": f"e {{\n  ROOT p = {group} parameter(0)\n}}\n",
        "operand": f"e {{\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate({group} p)\n}}\n",
        "attribute": f"e {{\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p), x={group}\n}}\n",
        "header": f"HloModule m, x={group}\ne {{\n  ROOT p = f32[] parameter(0)\n}}\n",
    }[where]
    check_outcome(text)


def test_apply_edits():
    text = "ab\ncd\nef"
    assert apply_edits(text, [("truncate", 4, "")]) == "ab\nc"
    assert apply_edits(text, [("overwrite", 1, "XY")]) == "aXYcd\nef"
    assert apply_edits(text, [("insert", 8, "!")]) == "ab\ncd\nef!"
    assert apply_edits(text, [("delete-line", 5, "")]) == "ab\ncd"
    assert apply_edits(text, [("duplicate-line", 0, "3")]) == "ab\ncd\nef\nab"
    assert apply_edits(text, [("truncate", 0, ""), ("insert", 0, "x")]) == ""


def test_rename_points_a_use_at_another_name_of_its_kind():
    text = "c {\n  ROOT q = f32[] parameter(0)\n}\ne {\n  %p = f32[] parameter(0)\n  %p.1 = f32[] negate(%p)\n  " \
           "ROOT r = f32[] add(%p.1, %p), to_apply=c\n}\n"
    # Four uses in text order: p p.1 p c ("p" never matches inside "p.1"; definitions are not uses). Computations:
    # c e; the instructions of e: p p.1 r.
    assert apply_edits(text, [("rename", 0, "2")]) == text.replace("negate(%p)", "negate(%r)")  # a cycle
    assert apply_edits(text, [("rename", 0, "1")]) == text.replace("negate(%p)", "negate(%p.1)")  # uses itself
    assert apply_edits(text, [("rename", 3, "1")]) == text.replace("to_apply=c", "to_apply=e")  # calls itself
    assert apply_edits(text, [("rename", 8, "8")]) == apply_edits(text, [("rename", 0, "2")])  # both modulo
    assert apply_edits(text, [("rename", 1, "1")]) == text  # p.1 to p.1
    assert apply_edits(text + "// r\n", [("rename", 4, "0")]) == text + "// r\n"  # in a comment after the last }
    assert apply_edits("e {\n  ROOT p = f32[] parameter(0)\n}", [("rename", 0, "1")]) == (
        "e {\n  ROOT p = f32[] parameter(0)\n}")  # nothing is used
