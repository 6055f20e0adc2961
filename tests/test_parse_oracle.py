"""xlainspect's parser against XLA's own parser, on XLA's test files and on dumps XLA wrote for JAX programs.

XLA's parser (see ``xla_oracle.py``) runs in one child process per batch, once per session; each comparison then lists
every difference in computations, instructions, opcodes, operands, roots and shapes, and must list none.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import random
import re
import textwrap
from pathlib import Path

import pytest
import xla_oracle

from xlainspect import parse_hlo, parse_hlo_modules, read_hlo

DATA = Path(__file__).resolve().parent / "data"

def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def _running_jaxlib() -> str | None:
    """The installed jaxlib's version, read from its metadata (importing jax here would load it into the tests)."""
    try:
        return importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None


# Corpus files holding a module the running XLA's parser rejects, with the words its error must contain. The test
# below asserts the set of rejected files is exactly this one, so a broken harness cannot quietly shrink coverage.
# jaxlib 0.10.2's XLA does not know the opcode `collective-reduce`; 0.12.0.1's does, and reads the whole corpus.
KNOWN_XLA_REJECTS = {
    "xla__hlo__translate__hlo_to_mhlo__tests__import.hlo": "collective-reduce",
} if _version(_running_jaxlib() or "0") < (0, 11) else {}


def _format(differences: list[str], limit: int = 25) -> str:
    shown = "\n  ".join(differences[:limit])
    more = f"\n  ... and {len(differences) - limit} more" if len(differences) > limit else ""
    return f"\n  {shown}{more}"


# -- the corpus -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus_oracle(corpus_files, split_xla_test_file) -> dict[str, list[xla_oracle.OracleResult]]:
    """XLA's verdict on every module text of every corpus file, by file name, computed in one child process."""
    chunks = [(path.name, chunk) for path in corpus_files for chunk in split_xla_test_file(path.read_text())]
    results = xla_oracle.xla_summaries([chunk for _, chunk in chunks])
    by_file: dict[str, list[xla_oracle.OracleResult]] = {}
    for (name, _), result in zip(chunks, results, strict=True):
        by_file.setdefault(name, []).append(result)
    return by_file


def test_corpus_file_parses(corpus_file, split_xla_test_file):
    """Every corpus file parses, those XLA's older parser rejects included; one module per ``// -----`` piece."""
    modules = read_hlo(corpus_file)
    pieces = split_xla_test_file(corpus_file.read_text())
    assert len(modules) == len(pieces)
    assert [m.index for m in modules] == list(range(len(modules)))
    for module in modules:
        assert module.source == str(corpus_file)
        assert module.entry.is_entry
        assert sum(c.is_entry for c in module.computations) == 1
        for computation in module.computations:
            assert sum(i.is_root for i in computation.instructions) == 1, computation.name


@pytest.mark.requires_jax
def test_corpus_file_matches_xla(corpus_file, corpus_oracle):
    modules = read_hlo(corpus_file)
    results = corpus_oracle[corpus_file.name]
    assert len(modules) == len(results)
    compared = 0
    for module, result in zip(modules, results):
        assert result.crash is None, f"XLA's parser died on module {module.index}: {result.crash}"
        if result.ok:
            differences = xla_oracle.compare(module, result.summary)
            assert not differences, f"module {module.index} ({module.name}):{_format(differences)}"
            compared += 1
        else:
            assert corpus_file.name in KNOWN_XLA_REJECTS, f"XLA rejects module {module.index}: {result.error}"
    if corpus_file.name not in KNOWN_XLA_REJECTS:
        assert compared == len(modules)


@pytest.mark.requires_jax
def test_xla_rejects_exactly_the_known_corpus_files(corpus_oracle):
    rejected = {name: [r.error or r.crash for r in results if not r.ok]
                for name, results in corpus_oracle.items() if not all(r.ok for r in results)}
    assert set(rejected) == set(KNOWN_XLA_REJECTS)
    for name, words in KNOWN_XLA_REJECTS.items():
        assert all(words in error for error in rejected[name]), rejected[name]
    compared = sum(r.ok for results in corpus_oracle.values() for r in results)
    assert compared >= 40  # 40 files, three of them with several modules: guards against a harness gone quiet


# -- dumps generated from JAX programs --------------------------------------------------------------------------------

# What tests/programs/make_dumps.py must produce for the comparison below to mean something.
REQUIRED_FEATURES = (
    "while(", "conditional(", "sort(", "gather(", "scatter(", "fft(", "convolution(", "reduce-window(",
    "select-and-scatter(", "all-reduce(", "all-gather(", "collective-permute(", "all-to-all(", "reduce-scatter(",
    "bf16[", "f16[", "s8[", "u32[", "c64[", "custom_call_target=\"lapack_", "FileNames", "StackFrames",
    "input_output_alias=", "sharding={", "kind=kCustom", "__ynn_fusion",
)


@pytest.fixture(scope="session")
def dump_oracle(jax_dumps) -> list[xla_oracle.OracleResult]:
    return xla_oracle.xla_summaries([path.read_text() for path in jax_dumps])


@pytest.mark.requires_jax
def test_generated_dumps_cover_the_required_features(jax_dumps):
    before = [p for p in jax_dumps if p.name.endswith(".before_optimizations.txt")]
    after = [p for p in jax_dumps if p.name.endswith("_after_optimizations.txt")]
    assert len(before) >= 15 and len(after) == len(before)
    text = "\n".join(p.read_text() for p in jax_dumps)
    missing = [feature for feature in REQUIRED_FEATURES if feature not in text]
    assert missing == []
    targets = set(re.findall(r'custom_call_target="(lapack_\w+)"', text))
    assert len(targets) >= 5, targets  # Cholesky, QR, eigh, SVD, LU at least


@pytest.mark.requires_jax
def test_generated_dumps_match_xla(jax_dumps, dump_oracle):
    problems = []
    for path, result in zip(jax_dumps, dump_oracle, strict=True):
        module = parse_hlo(path.read_text(), str(path))
        if not result.ok:
            problems.append(f"{path.name}: XLA cannot parse its own dump: {result.error or result.crash}")
            continue
        problems.extend(f"{path.name}: {d}" for d in xla_oracle.compare(module, result.summary))
    assert not problems, _format(problems)


def _made_by_newer_xla(path: Path) -> bool:
    """Whether the manifest beside a filed dump names a jaxlib newer than the running one (whose parser may then
    reject syntax it has not learnt yet, as jaxlib 0.10.2's rejects jax 0.12's ``%t#0`` operands)."""
    manifest = path.parent / "manifest.json"
    if not manifest.is_file():
        return False
    maker = re.match(r"jaxlib (\S+)", json.loads(manifest.read_text()).get("xla_version", ""))
    running = _running_jaxlib()
    return maker is not None and running is not None and _version(maker.group(1)) > _version(running)


@pytest.mark.requires_jax
def test_reference_dumps_match_xla():
    """Every committed dump, before and after optimization: CPU, TF through JAX's XLA, and XLA:GPU for an H100."""
    repo = Path(__file__).resolve().parents[1]
    paths = sorted((repo / "dumps").glob("*/*/*/*_optimizations.txt"))
    assert {p.parts[-4] for p in paths} >= {"cpu", "gpu-h100"}
    results = xla_oracle.xla_summaries([path.read_text() for path in paths])
    problems = []
    for path, result in zip(paths, results, strict=True):
        if not result.ok:
            if _made_by_newer_xla(path):  # no yardstick here; xlainspect must still read it
                parse_hlo(path.read_text(), str(path))
                continue
            problems.append(f"{path}: XLA cannot parse its own dump: {result.error or result.crash}")
            continue
        problems.extend(f"{path}: {d}" for d in xla_oracle.compare(parse_hlo(path.read_text(), str(path)),
                                                                   result.summary))
    assert not problems, _format(problems)


# -- committed dumps of each supported jax -----------------------------------------------------------------------

# tests/data/jax-<version>/: a few real dumps of that jax, with what its XLA parser made of them (see the README there).
VERSION_FOLDERS = sorted(DATA.glob("jax-*"), key=lambda folder: _version(folder.name))
# Syntax that XLA printers newer than jaxlib 0.10.2's write and its parser rejects: compact get-tuple-element
# operands (`%t#0`), and named shardings (`{mesh[...]...}`, `{single_device[device_id=0]}`).
NEWER_SYNTAX_RE = re.compile(r"%[\w.\-]+#\d|\{mesh\[|\{single_device\[")


def _recorded(folder: Path) -> dict:
    return json.loads((folder / "xla_summaries.json").read_text())


def _computation_text(text: str, name: str) -> str:
    """The lines of computation ``name`` in a dump, header to closing brace."""
    match = re.search(r"^(?:ENTRY )?%" + re.escape(name) + r" .*?^}$", text, re.MULTILINE | re.DOTALL)
    assert match is not None, name
    return match.group()


def test_each_supported_jax_has_committed_dumps():
    assert [folder.name for folder in VERSION_FOLDERS] == ["jax-0.10.2", "jax-0.12.0.1"]
    texts = {path.name: path.read_text() for path in VERSION_FOLDERS[-1].glob("*.txt")}
    # The places the compact form shows up: while bodies, conditional branches, a custom-call's operands.
    loops = texts["jit_loops_and_branches.before_optimizations.txt"]
    bodies = re.findall(r"while\(.*?body=%([\w.\-]+)", loops)
    branches = [name for group in re.findall(r"branch_computations=\{([^}]*)\}", texts["jit_branches.before_"
                                                                                         "optimizations.txt"])
                for name in re.findall(r"%([\w.\-]+)", group)]
    assert len(bodies) >= 3 and len(branches) == 3
    for body in bodies:
        assert re.search(r"\(%arg_tuple\.\d+#\d", _computation_text(loops, body)), body
    for branch in branches:
        assert re.search(r"%arg_tuple\.\d+#\d", _computation_text(texts["jit_branches.before_optimizations.txt"],
                                                                  branch)), branch
    assert re.search(r"custom-call\([^)]*%\S+#\d", texts["jit_logged_loop.cpu_after_optimizations.txt"])


@pytest.mark.parametrize("folder", VERSION_FOLDERS, ids=[folder.name for folder in VERSION_FOLDERS])
def test_committed_dumps_match_what_their_own_xla_made_of_them(folder):
    """Each version's dumps against the summaries its own XLA parser recorded: needs no jax, so every version's
    dumps are checked under any installed jax (or none)."""
    record = _recorded(folder)
    assert record["jaxlib"] == folder.name.removeprefix("jax-")
    assert record["fields"] == list(xla_oracle.FIELDS)
    paths = sorted(folder.glob("*.txt"))
    assert sorted(record["summaries"]) == [path.name for path in paths] and len(paths) >= 8
    problems = []
    for path in paths:
        module = parse_hlo(path.read_text(), str(path))
        summary = xla_oracle.unpacked_summary(record["summaries"][path.name])
        problems.extend(f"{folder.name}/{path.name}: {d}" for d in xla_oracle.compare(module, summary))
    assert not problems, _format(problems)


@pytest.mark.requires_jax
@pytest.mark.parametrize("folder", VERSION_FOLDERS, ids=[folder.name for folder in VERSION_FOLDERS])
def test_committed_dumps_match_the_running_xla(folder):
    """Each version's dumps against the installed XLA's parser: the same version must agree with its record, a newer
    one must read them all alike, an older one rejects exactly the dumps that hold syntax newer than it."""
    running = _running_jaxlib()
    made_by = folder.name.removeprefix("jax-")
    paths = sorted(folder.glob("*.txt"))
    texts = [path.read_text() for path in paths]
    results = xla_oracle.xla_summaries(texts)
    assert all(result.crash is None for result in results), [result.crash for result in results]
    problems, rejected = [], []
    for path, text, result in zip(paths, texts, results, strict=True):
        if not result.ok:
            rejected.append(path.name)
            continue
        problems.extend(f"{path.name}: {d}" for d in xla_oracle.compare(parse_hlo(text, str(path)), result.summary))
        if running == made_by:
            assert xla_oracle.packed_summary(result.summary) == _recorded(folder)["summaries"][path.name], path.name
    assert not problems, _format(problems)
    if _version(running) >= _version(made_by):
        assert rejected == []
    else:
        assert rejected == [path.name for path, text in zip(paths, texts) if NEWER_SYNTAX_RE.search(text)]
        assert rejected  # the premise: an older XLA cannot read them, which is why the record exists


@pytest.mark.requires_jax
def test_generated_dumps_of_a_newer_xla_hold_the_compact_form(jax_dumps):
    """From jax 0.11 on, XLA writes tuple elements as `%t#i` where jax 0.10 wrote get-tuple-element instructions;
    the dumps the running jax made must show the form its version writes, in the three places it appears."""
    text = "\n".join(path.read_text() for path in jax_dumps)
    compact = re.findall(r"%[\w.\-]+#\d", text)
    if _version(_running_jaxlib()) < (0, 11):
        assert compact == []
        return
    assert compact
    # Only a root, which no operand can name, is still written as an instruction.
    written = re.findall(r"^ *(ROOT )?%\S+ = [^=\n]*? get-tuple-element\(", text, re.MULTILINE)
    assert written and set(written) == {"ROOT "}
    for program in ("jit_loops_and_branches", "jit_branches", "jit_logged_loop"):
        assert any(program in path.name and "#" in path.read_text() for path in jax_dumps), program


@pytest.mark.requires_jax
def test_xla_reads_compact_tuple_operands_as_xlainspect_does():
    """XLA from jaxlib 0.11 on reads `%t#i` as xlainspect does and rejects the malformed spellings xlainspect rejects;
    jaxlib 0.10.2's XLA rejects the form altogether (why its dumps never hold it)."""
    from test_parse import COMPACT_ERRORS, COMPACT_WHILE, compact_error_text

    twin_text = compact_error_text("%x#0")
    bad = [compact_error_text(operand) for operand, _ in COMPACT_ERRORS]
    good, twin, *malformed = xla_oracle.xla_summaries([COMPACT_WHILE, twin_text, *bad])
    assert not any(result.crash for result in [good, twin, *malformed])
    assert not any(result.ok for result in malformed)
    if _version(_running_jaxlib()) < (0, 11):
        assert not good.ok and "cannot parse as an instruction name" in good.error
        return
    assert good.ok and twin.ok, (good.error, twin.error)
    assert xla_oracle.compare(parse_hlo(COMPACT_WHILE), good.summary) == []
    assert xla_oracle.compare(parse_hlo(twin_text), twin.summary) == []


# -- any other corpus -----------------------------------------------------------------------------------------------


@pytest.mark.requires_jax
def test_extra_corpus_matches_xla(split_xla_test_file):
    """``XLAINSPECT_EXTRA_CORPUS=DIR``: every ``*.hlo`` and ``*.txt`` under DIR, checked as the corpus is."""
    root = os.environ.get("XLAINSPECT_EXTRA_CORPUS")
    if not root:
        pytest.skip("set XLAINSPECT_EXTRA_CORPUS to a directory of *.hlo / *.txt files to check them against XLA")
    files = sorted(p for pattern in ("*.hlo", "*.txt") for p in Path(root).rglob(pattern) if p.is_file())
    assert files, f"XLAINSPECT_EXTRA_CORPUS={root} holds no *.hlo or *.txt files"
    chunks = [(path, chunk) for path in files for chunk in split_xla_test_file(path.read_text())]
    results = xla_oracle.xla_summaries([chunk for _, chunk in chunks])
    problems = []
    compared = 0
    for (path, chunk), result in zip(chunks, results, strict=True):
        try:
            modules = parse_hlo_modules(chunk, str(path))
        except Exception as e:  # noqa: BLE001  # every failure is reported below, with the file it came from
            if result.ok:
                problems.append(f"{path}: XLA parses it, xlainspect raises {type(e).__name__}: {e}")
            continue
        if not result.ok:
            continue  # a module XLA rejects is no yardstick; that xlainspect parsed it is all there is to check
        if len(modules) != 1:
            problems.append(f"{path}: one module for XLA, {len(modules)} for xlainspect")
            continue
        compared += 1
        problems.extend(f"{path}: {d}" for d in xla_oracle.compare(modules[0], result.summary))
    assert not problems, _format(problems)
    assert compared > 0, "XLA parsed none of the extra corpus: nothing was compared"


# -- the same modules, respelled ----------------------------------------------------------------------------------

# Places where XLA's lexer allows whitespace: after ',', '(' or '=' (not the '=' of an iota `<=`), outside strings and
# comments.
_GAP_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/|<=|[,(=]', re.DOTALL)
_SIGIL_RE = re.compile(r'("(?:[^"\\\n]|\\.)*")|%(?=[A-Za-z_])')


def _respell(text: str, rng: random.Random, how: str) -> str:
    """``text`` with the same meaning but another spelling: line breaks, comments, or no ``%`` sigils."""
    if how == "no-sigils":
        return _SIGIL_RE.sub(lambda m: m.group(1) or "", text)
    gaps = [m.end() for m in _GAP_RE.finditer(text) if m.group() in (",", "(", "=")]
    insert = {"line-breaks": ["\n      ", "\n"], "comments": [" /* c */ ", "/*index=9*/", " // tail\n"]}[how]
    for pos in sorted(rng.sample(gaps, min(len(gaps), 25)), reverse=True):
        text = text[:pos] + rng.choice(insert) + text[pos:]
    return text


@pytest.fixture(scope="session")
def respelled(request, split_xla_test_file) -> list[tuple[str, str, xla_oracle.OracleResult]]:
    try:
        corpus_files = request.getfixturevalue("corpus_files")
    except pytest.skip.Exception:
        corpus_files = []  # without the shared corpus, the dump in tests/data is respelled alone
    rng = random.Random(20240601)
    sources = [(path.name, chunk) for path in corpus_files if path.name not in KNOWN_XLA_REJECTS
               for chunk in split_xla_test_file(path.read_text())]
    sources.append((DATA.name, (DATA / "jit_layer.cpu_after_optimizations.txt").read_text()))
    cases = [(f"{name} [{how}]", _respell(chunk, rng, how))
             for name, chunk in sources for how in ("line-breaks", "comments", "no-sigils")]
    results = xla_oracle.xla_summaries([text for _, text in cases])
    return [(label, text, result) for (label, text), result in zip(cases, results, strict=True)]


@pytest.mark.requires_jax
def test_respelled_modules_still_match_xla(respelled):
    """Line breaks and comments between tokens, and names without ``%``, change nothing XLA sees; nor for us."""
    problems = []
    compared = 0
    for label, text, result in respelled:
        if not result.ok:
            continue
        compared += 1
        try:
            module = parse_hlo(text)
        except Exception as e:  # noqa: BLE001  # reported with the case that caused it
            problems.append(f"{label}: XLA parses it, xlainspect raises {type(e).__name__}: {e}")
            continue
        problems.extend(f"{label}: {d}" for d in xla_oracle.compare(module, result.summary))
    assert not problems, _format(problems)
    # A few respellings are not XLA's grammar (`name=` without a space lexes as an attribute name); most must be.
    assert compared >= 0.95 * len(respelled)


# -- the harness itself -------------------------------------------------------------------------------------------

SMALL = textwrap.dedent("""\
    HloModule small

    add {
      a = f32[] parameter(0)
      b = f32[] parameter(1)
      ROOT s = f32[] add(a, b)
    }

    ENTRY main {
      p = f32[4] parameter(0)
      z = f32[] constant(0)
      e = f32[4] exponential(p)
      ROOT r = f32[] reduce(e, z), dimensions={0}, to_apply=add
    }
    """)


def _small_summary() -> dict:
    """XLA's summary of SMALL, written out by hand: what the oracle reports, in the oracle's format."""
    def ins(name, opcode, shape, operands=(), root=False):
        return {"name": name, "opcode": opcode, "async": None, "shape": shape, "operands": list(operands),
                "root": root}

    return {"name": "small", "entry": "main", "computations": [
        {"name": "add", "instructions": [
            ins("a", "parameter", "f32[]"), ins("b", "parameter", "f32[]"),
            ins("s", "add", "f32[]", ["a", "b"], root=True)]},
        {"name": "main", "instructions": [
            ins("p", "parameter", "f32[4]{0}"), ins("z", "constant", "f32[]"),
            ins("e", "exponential", "f32[4]{0}", ["p"]),
            ins("r", "reduce", "f32[]", ["e", "z"], root=True)]},
    ]}


def test_compare_finds_no_difference_in_agreeing_summaries():
    assert xla_oracle.compare(parse_hlo(SMALL), _small_summary()) == []


def test_compare_maps_names_xla_made_unique():
    # XLA renames `a` to `a.1` when another computation already holds an `a`; operands are compared through that map.
    summary = _small_summary()
    main = summary["computations"][1]["instructions"]
    main[0]["name"] = "p.1"
    main[2]["operands"] = ["p.1"]
    summary["computations"][1]["name"] = "main.3"
    summary["entry"] = "main.3"
    assert xla_oracle.compare(parse_hlo(SMALL), summary) == []


@pytest.mark.parametrize("change, expected", [
    (lambda s: s["computations"][1]["instructions"][2].update(opcode="exp"),
     ["opcode histogram: only ours {'exponential': 1}, only XLA {'exp': 1}",
      "computation 'main' (XLA 'main') instruction 'e' (XLA 'e'): opcode ours 'exponential', XLA 'exp'"]),
    (lambda s: s["computations"][1]["instructions"][3].update(operands=["z", "e"]),
     ["computation 'main' (XLA 'main') instruction 'r' (XLA 'r'): operands ours ['e', 'z'] -> ['e', 'z'], "
      "XLA ['z', 'e']"]),
    (lambda s: s["computations"][1]["instructions"][2].update(shape="f32[5]{0}"),
     ["computation 'main' (XLA 'main') instruction 'e' (XLA 'e'): shape ours f32[4], XLA f32[5]"]),
    (lambda s: (s["computations"][1]["instructions"][3].update(root=False),
                s["computations"][1]["instructions"][2].update(root=True)),
     ["computation 'main' (XLA 'main') instruction 'e' (XLA 'e'): root ours False, XLA True",
      "computation 'main' (XLA 'main') instruction 'r' (XLA 'r'): root ours True, XLA False"]),
    (lambda s: s.update(entry="add"),
     ["entry: ours 'main' (maps to 'main'), XLA 'add'"]),
    (lambda s: s["computations"][1]["instructions"].pop(1),
     ["instruction count: ours 7, XLA 6", "opcode histogram: only ours {'constant': 1}, only XLA {}",
      "computation 'main' (XLA 'main'): ours has 4 instructions, XLA 3"]),
    (lambda s: s["computations"].pop(0),
     ["computation count: ours 2 ['add', 'main'], XLA 1 ['main']", "instruction count: ours 7, XLA 4",
      "opcode histogram: only ours {'parameter': 2, 'add': 1}, only XLA {}",
      "computation 'main' (XLA 'main'): 'r' calls 'add', which has no XLA counterpart"]),
], ids=["opcode", "operand-order", "shape", "root", "entry", "missing-instruction", "missing-computation"])
def test_compare_reports_each_kind_of_difference(change, expected):
    summary = _small_summary()
    change(summary)
    assert xla_oracle.compare(parse_hlo(SMALL), summary) == expected


@pytest.mark.requires_jax
def test_oracle_summarizes_in_xla_spelling():
    [result] = xla_oracle.xla_summaries([SMALL])
    assert result.ok, result.error
    texts = [i.pop("text") for c in result.summary["computations"] for i in c["instructions"]]
    assert result.summary == _small_summary()
    # Each instruction's printed text comes along, for checks that need attributes (calls=, body=...).
    assert texts[-1] == "%r = f32[] reduce(%e, %z), dimensions={0}, to_apply=%add"


@pytest.mark.requires_jax
def test_oracle_survives_a_text_that_kills_xla():
    # jaxlib 0.10.2's parser aborts (CHECK failure) on a lone parameter numbered 3 instead of rejecting it.
    fatal = "e {\n  p = f32[4] parameter(3)\n  ROOT n = f32[4] negate(p)\n}\n"
    rejected = "e {\n  ROOT n = f32[4] negate(q)\n}\n"
    results = xla_oracle.xla_summaries([SMALL, fatal, rejected, SMALL])
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].error is None and "Check failed" in results[1].crash
    assert results[2].crash is None and "q" in results[2].error
    assert results[3].summary == results[0].summary


@pytest.mark.requires_jax
def test_oracle_reports_async_ops_in_both_spellings():
    text = textwrap.dedent("""\
        HloModule m
        wrapped {
          p = f32[4] parameter(0)
          ROOT c = f32[4] custom-call(p), custom_call_target="foo"
        }
        ENTRY e {
          p = f32[4] parameter(0)
          s = ((f32[4]), f32[4], u32[]) async-start(p), calls=wrapped
          ROOT d = f32[4] async-done(s)
        }
        """)
    [result] = xla_oracle.xla_summaries([text])
    entry = result.summary["computations"][1]["instructions"]
    assert [(i["opcode"], i["async"]) for i in entry] == [
        ("parameter", None), ("custom-call-start", "async-start"), ("custom-call-done", "async-done")]
    assert xla_oracle.compare(parse_hlo(text), result.summary) == []


@pytest.mark.requires_jax
def test_xla_accepts_the_valid_hlo_that_test_parse_requires():
    """The premise of test_parse.py's VALID_HLO cases: each is HLO that XLA's parser reads."""
    from test_parse import VALID_HLO

    results = xla_oracle.xla_summaries(list(VALID_HLO.values()))
    assert {label: r.error or r.crash for label, r in zip(VALID_HLO, results) if not r.ok} == {}
    problems = []
    for (label, text), result in zip(VALID_HLO.items(), results):
        try:
            module = parse_hlo(text)
        except Exception:  # noqa: BLE001  # the parser's own failures are test_parse.py's to report
            continue
        problems.extend(f"{label}: {d}" for d in xla_oracle.compare(module, result.summary))
    assert not problems, _format(problems)


@pytest.mark.requires_jax
def test_inline_modules_of_test_parse_agree_with_xla():
    """Every ``hlo(\"\"\"...\"\"\")`` module of test_parse.py that XLA reads, xlainspect reads the same way."""
    from test_parse import VALID_HLO

    source = (Path(__file__).resolve().parent / "test_parse.py").read_text()
    texts = [textwrap.dedent(node.args[0].value).lstrip("\n") for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hlo" and node.args
             and isinstance(node.args[0], ast.Constant)]
    texts = [text for text in texts if text not in VALID_HLO.values()]  # those have a test of their own
    results = xla_oracle.xla_summaries(texts)
    problems = []
    compared = 0
    for text, result in zip(texts, results, strict=True):
        if not result.ok:
            continue  # several modules in one text, or a leniency of xlainspect's: nothing to compare with
        compared += 1
        label = text.splitlines()[0]
        try:
            module = parse_hlo(text)
        except Exception as e:  # noqa: BLE001  # reported with the text that caused it
            problems.append(f"{label!r}: XLA parses it, xlainspect raises {type(e).__name__}: {e}")
            continue
        problems.extend(f"{label!r}: {d}" for d in xla_oracle.compare(module, result.summary))
    assert not problems, _format(problems)
    assert compared >= 20
