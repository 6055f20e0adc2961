"""XLA's own HLO parser as an independent reference for xlainspect's parser (tests only).

XLA's parser is reached through a private jaxlib API (``xla_client.hlo.hlo_module_from_text``), looked up where each
supported jax keeps it by ``xlainspect.runners.jax_private`` (only that lookup; the summary is XLA's). Some inputs
crash it (abort or segfault) rather than raise, so it never runs in the test process: :func:`xla_summaries` starts a
child interpreter that reads a JSON list of HLO texts on stdin and writes one JSON line per text on stdout, either a
summary of the module XLA built or the error XLA raised. If the child dies, the texts it answered are kept, the text
it died on is run again alone to confirm the crash, and the rest go to a fresh child.

:func:`compare` then lists, in words, every way an ``xlainspect`` module differs from XLA's summary of the same text.
Nothing here imports jax in the test process, and no xlainspect code builds the reference.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xlainspect import HloModule

# Runs in the child. Only XLA's printed text and its object graph are used: the opcode comes from the instruction's
# own text (`i.opcode` is an enum whose names differ from the text spelling: kExp prints as `exponential`).
_CHILD = r"""
import json, re, sys
from xlainspect.runners.jax_private import hlo_module_from_text

def split_instruction(text):
    # `%name = SHAPE opcode(...)`: skip the name, then the shape (balanced parentheses for a tuple), then the opcode
    # runs up to the next '('.
    eq = text.index(" = ")
    rest = text[eq + 3:]
    pos = 0
    if rest.startswith("("):
        depth = 0
        for pos, ch in enumerate(rest):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                pos += 1
                break
    else:
        pos = rest.index(" ")
    shape = rest[:pos].strip()
    opcode = rest[pos:].lstrip()
    opcode = opcode[:opcode.index("(")].strip()
    return shape, opcode

ASYNC_OPCODES = {"kAsyncStart": "async-start", "kAsyncUpdate": "async-update", "kAsyncDone": "async-done"}

def summarize(text):
    module = hlo_module_from_text(text)
    printed = module.to_string()
    entry = re.search(r"^ENTRY %?([^\s(]+)", printed, re.MULTILINE)
    roots = set(re.findall(r"^\s*ROOT %?([^\s=]+) =", printed, re.MULTILINE))
    computations = []
    for computation in module.computations():
        instructions = []
        for instruction in computation.instructions():
            shape, opcode = split_instruction(instruction.to_string())
            if opcode.endswith("-start"):
                try:
                    wrapped = instruction.async_wrapped_root()
                except Exception:  # not an async-start: XLA's binding raises for other instructions
                    wrapped = None
                if wrapped is not None:  # the shorthand hides the wrapped computation from the module's text
                    roots.add(wrapped.name)
            # XLA prints an async op wrapping one instruction in the shorthand (`custom-call-start`) even when the
            # text said `async-start(...), calls=...`: keep the generic spelling too, to accept either.
            generic = ASYNC_OPCODES.get(instruction.opcode.name)
            instructions.append({"name": instruction.name, "opcode": opcode, "async": generic, "shape": shape,
                                 "operands": [operand.name for operand in instruction.operands()],
                                 "text": instruction.to_string()})
        computations.append({"name": computation.name, "instructions": instructions})
    for computation in computations:
        for instruction in computation["instructions"]:
            instruction["root"] = instruction["name"] in roots
    return {"name": module.name, "entry": entry.group(1) if entry else None, "computations": computations}

texts = json.load(sys.stdin)
start = int(sys.argv[1]) if len(sys.argv) > 1 else 0
for index in range(start, len(texts)):
    try:
        result = {"summary": summarize(texts[index])}
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
"""


@dataclass(frozen=True)
class OracleResult:
    """XLA's verdict on one text: a module summary, the error XLA raised, or how its process died.

    Attributes:
        summary: ``{"name", "entry", "computations": [{"name", "instructions": [{"name", "opcode", "async",
            "shape", "operands", "root"}]}]}`` in XLA's order, or None. ``opcode`` is the spelling XLA prints;
            ``async`` is ``async-start``/``-update``/``-done`` for XLA's generic async ops (which it may print in the
            shorthand ``custom-call-start``), else None.
        error: XLA's exception text when it rejected the text, else None.
        crash: how the child process died on this text (``"exit -11"``...), else None.
    """

    summary: dict[str, Any] | None = None
    error: str | None = None
    crash: str | None = None

    @property
    def ok(self) -> bool:
        return self.summary is not None


class OracleUnavailable(RuntimeError):
    """The child process cannot run XLA's parser at all (jax missing or broken)."""


def _run_child(texts: Sequence[str], start: int, timeout: float) -> tuple[list[dict[str, Any]], str | None]:
    """Runs the child from ``texts[start]``; returns the results it wrote and, if it died early, how."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    try:
        process = subprocess.run([sys.executable, "-c", _CHILD, str(start)], input=json.dumps(list(texts)),
                                 capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, returncode = process.stdout, process.stderr, process.returncode
    except subprocess.TimeoutExpired as e:  # a parser that hangs is treated as one that dies
        stdout, stderr, returncode = _text(e.stdout), _text(e.stderr), None
    results = []
    for line in stdout.splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a partial line written as the process died
    if len(results) == len(texts) - start and returncode == 0:
        return results, None
    if not results and ("ModuleNotFoundError" in stderr or "ImportError" in stderr):
        raise OracleUnavailable(f"XLA's parser cannot run: {stderr.strip().splitlines()[-1]}")
    if returncode is None:
        return results, f"no answer within {timeout:g} s"
    return results, f"exit {returncode}: {_cause(stderr)}"


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def _cause(stderr: str) -> str:
    """The line of a dead child's stderr that says why it died (a failed CHECK, usually), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for marker in ("Check failed", "Fatal Python error", "terminate called", "Segmentation fault", "Aborted"):
        for line in lines:
            if marker in line:
                return line[:300]
    return lines[-1][:300] if lines else "no message"


def xla_summaries(texts: Sequence[str], timeout: float = 600.0) -> list[OracleResult]:
    """XLA's parse of each text, in order; a text that kills XLA's parser gets a ``crash`` result.

    Raises:
        OracleUnavailable: the child cannot import jax.
    """
    results: list[OracleResult] = []
    start = 0
    while start < len(texts):
        answered, death = _run_child(texts, start, timeout)
        results.extend(OracleResult(summary=r.get("summary"), error=r.get("error")) for r in answered)
        start += len(answered)
        if death is None:
            break
        # The child died on texts[start]: confirm on that text alone, so one bad text never hides the others.
        alone, alone_death = _run_child([texts[start]], 0, timeout)
        if alone:
            results.append(OracleResult(summary=alone[0].get("summary"), error=alone[0].get("error")))
        else:
            results.append(OracleResult(crash=alone_death or death))
        start += 1
    return results


# The fields of an instruction's summary, in the order :func:`packed_summary` writes them.
FIELDS = ("name", "opcode", "async", "shape", "operands", "root")


def packed_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with each instruction as a list of :data:`FIELDS` (no ``text``): a third of the size on disk.

    For the summaries committed beside the dumps of each jax version (``tests/data/jax-*/xla_summaries.json``).
    """
    return {**summary, "computations": [
        {"name": c["name"], "instructions": [[i[field] for field in FIELDS] for i in c["instructions"]]}
        for c in summary["computations"]]}


def unpacked_summary(packed: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`packed_summary`: a summary :func:`compare` reads."""
    return {**packed, "computations": [
        {"name": c["name"], "instructions": [dict(zip(FIELDS, row, strict=True)) for row in c["instructions"]]}
        for c in packed["computations"]]}


def _strip_layouts(shape: str) -> str:
    """A shape's text without layouts, ``/*index=N*/`` comments and spaces: what both printers agree on."""
    shape = re.sub(r"/\*.*?\*/", "", shape)
    previous = None
    while previous != shape:  # layouts hold no braces themselves, but strip repeatedly to be safe
        previous = shape
        shape = re.sub(r"\{[^{}]*\}", "", shape)
    return shape.replace(" ", "")


def _pair_computations(ours: Sequence[str], theirs: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs computation indices of the two modules.

    Both parsers list computations in parse-completion order, so equal counts pair by position: that survives XLA
    renaming a computation whose name a synthesized one took first. Otherwise equal names pair first, the rest in
    order of appearance.
    """
    if len(ours) == len(theirs):
        return [(i, i) for i in range(len(ours))]
    their_index = {name: index for index, name in enumerate(theirs)}
    pairs: dict[int, int] = {}
    for index, name in enumerate(ours):
        if name in their_index:
            pairs[index] = their_index[name]
    rest_ours = [i for i in range(len(ours)) if i not in pairs]
    used = set(pairs.values())
    rest_theirs = [j for j in range(len(theirs)) if j not in used]
    pairs.update(zip(rest_ours, rest_theirs))
    return sorted(pairs.items())


def compare(ours: HloModule, xla: dict[str, Any]) -> list[str]:
    """Every difference between xlainspect's module and XLA's summary of the same text, in words.

    XLA renames instructions and computations whose names repeat elsewhere in the module, so names are mapped by
    position: computations pair by position when both modules have as many (else by equal name, then by order); within
    a pair, our k-th instruction is XLA's k-th (both keep text order), and our operand names are translated through
    that map before they are compared with XLA's.
    """
    differences: list[str] = []
    their_computations = xla["computations"]
    our_names = [c.name for c in ours.computations]
    their_names = [c["name"] for c in their_computations]
    if len(our_names) != len(their_names):
        differences.append(f"computation count: ours {len(our_names)} {our_names}, XLA {len(their_names)} "
                           f"{their_names}")
    our_total = ours.instruction_count
    their_total = sum(len(c["instructions"]) for c in their_computations)
    if our_total != their_total:
        differences.append(f"instruction count: ours {our_total}, XLA {their_total}")
    # Async ops: XLA keeps no trace of whether the text said `async-start(...), calls=w` or the shorthand
    # `custom-call-start(...)`, so both sides are compared in the generic spelling; an opcode of ours counts as the
    # shorthand only where XLA printed that very spelling for an async op of this module.
    shorthand = {i["opcode"]: i["async"] for c in their_computations for i in c["instructions"] if i.get("async")}

    def canonical(opcode: str) -> str:
        return shorthand.get(opcode, opcode)

    our_histogram = Counter(canonical(i.opcode) for i in ours.instructions())
    their_histogram = Counter(i.get("async") or i["opcode"] for c in their_computations for i in c["instructions"])
    if our_histogram != their_histogram:
        differences.append(f"opcode histogram: only ours {dict(our_histogram - their_histogram)}, "
                           f"only XLA {dict(their_histogram - our_histogram)}")
    pairs = _pair_computations(our_names, their_names)
    computation_map = {our_names[i]: their_names[j] for i, j in pairs}
    if xla.get("entry") is not None and computation_map.get(ours.entry_name) != xla["entry"]:
        differences.append(f"entry: ours {ours.entry_name!r} (maps to {computation_map.get(ours.entry_name)!r}), "
                           f"XLA {xla['entry']!r}")
    for our_index, their_index in pairs:
        computation = ours.computations[our_index]
        theirs = their_computations[their_index]
        where = f"computation {computation.name!r} (XLA {theirs['name']!r})"
        instructions = computation.instructions
        if len(instructions) != len(theirs["instructions"]):
            differences.append(f"{where}: ours has {len(instructions)} instructions, XLA "
                               f"{len(theirs['instructions'])}")
            continue
        name_map = {ours_i.name: theirs_i["name"] for ours_i, theirs_i in zip(instructions, theirs["instructions"])}
        for ours_i, theirs_i in zip(instructions, theirs["instructions"]):
            what = f"{where} instruction {ours_i.name!r} (XLA {theirs_i['name']!r})"
            if canonical(ours_i.opcode) != (theirs_i.get("async") or theirs_i["opcode"]):
                differences.append(f"{what}: opcode ours {ours_i.opcode!r}, XLA {theirs_i['opcode']!r}")
            mapped = [name_map.get(name, f"<undefined {name}>") for name in ours_i.operands]
            if mapped != theirs_i["operands"]:
                differences.append(f"{what}: operands ours {list(ours_i.operands)} -> {mapped}, "
                                   f"XLA {theirs_i['operands']}")
            if ours_i.is_root != theirs_i["root"]:
                differences.append(f"{what}: root ours {ours_i.is_root}, XLA {theirs_i['root']}")
            our_shape, their_shape = _strip_layouts(str(ours_i.shape)), _strip_layouts(theirs_i["shape"])
            if our_shape != their_shape:
                differences.append(f"{what}: shape ours {our_shape}, XLA {their_shape}")
        for ours_i in instructions:
            for called in ours_i.called_computations:
                if called.name not in computation_map:
                    differences.append(f"{where}: {ours_i.name!r} calls {called.name!r}, which has no XLA "
                                       "counterpart")
    return differences
