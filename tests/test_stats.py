"""Tests for xlainspect.analysis.stats: counts checked against independent counts of the same text."""

from __future__ import annotations

import re
import textwrap
from collections import Counter

import pytest

from xlainspect import parse_hlo
from xlainspect.analysis.stats import module_stats

MODULE = textwrap.dedent("""\
    HloModule m

    %inner (a: f32[4]) -> f32[4] {
      %a = f32[4]{0} parameter(0)
      ROOT %n = f32[4]{0} negate(%a)
    }

    %fused (p: f32[4]) -> f32[4] {
      %p = f32[4]{0} parameter(0)
      ROOT %nested = f32[4]{0} fusion(%p), kind=kLoop, calls=%inner
    }

    %gemm (x: f32[4,4], y: f32[4,4]) -> f32[4,4] {
      %x = f32[4,4]{1,0} parameter(0)
      %y = f32[4,4]{1,0} parameter(1)
      ROOT %d = f32[4,4]{1,0} dot(%x, %y), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    }

    ENTRY %main (v: f32[4], w: f32[4,4]) -> (f32[4], f32[4,4], f32[4,4]) {
      %v = f32[4]{0} parameter(0)
      %w = f32[4,4]{1,0} parameter(1)
      %f1 = f32[4]{0} fusion(%v), kind=kLoop, calls=%fused
      %f2 = f32[4,4]{1,0} fusion(%w, %w), kind=kCustom, calls=%gemm, backend_config={"fusion_config":{"kind":"__ynn_fusion"}}
      %cc = f32[4,4]{1,0} custom-call(%w), custom_call_target="lapack_spotrf_ffi"
      ROOT %t = (f32[4]{0}, f32[4,4]{1,0}, f32[4,4]{1,0}) tuple(%f1, %f2, %cc)
    }
    """)


def test_counts():
    stats = module_stats(parse_hlo(MODULE, "m.hlo"))
    assert (stats.file, stats.index, stats.module) == ("m.hlo", 0, "m")
    assert stats.computations == 4
    assert stats.instructions == 13
    # The nested fusion inside %fused is part of f1's kernel, not a kernel of its own.
    assert stats.fusions_by_kind == {"__ynn_fusion": 1, "kLoop": 1}
    assert stats.fusions == 2
    assert stats.custom_calls == {"lapack_spotrf_ffi": 1}
    assert stats.opcodes["parameter"] == 6 and stats.opcodes["fusion"] == 3
    assert list(stats.opcodes)[0] == "parameter"  # most frequent first


def test_json_keys():
    data = module_stats(parse_hlo(MODULE)).to_json()
    assert set(data) == {"file", "index", "module", "computations", "instructions", "opcodes", "fusions",
                         "custom_calls"}
    assert data["fusions"] == {"total": 2, "by_kind": {"__ynn_fusion": 1, "kLoop": 1}}


def _independent_counts(text: str) -> tuple[Counter, int]:
    """Opcodes and instruction count by plain text matching, without the parser (comments removed first)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    opcodes: Counter = Counter()
    for match in re.finditer(r"^\s*(?:ROOT )?%?[\w.\-]+ = (?:\([^=]*?\)|\S+) ([a-z][a-z0-9\-]*)\(", text, re.M):
        opcodes[match.group(1)] += 1
    # jax 0.12's compact tuple operands: each distinct %t#i (and %t#i#j...) of a computation stands for one
    # get-tuple-element, which XLA's parser makes (so does ours).
    for body in re.split(r"^}\s*$", text, flags=re.M):
        tuples = {(name, tuple(re.findall(r"\d+", chain))[:depth])
                  for name, chain in re.findall(r"%([\w.\-]+)((?:\s*#\s*\d+)+)", body)
                  for depth in range(1, len(re.findall(r"\d+", chain)) + 1)}
        opcodes["get-tuple-element"] += len(tuples)
    opcodes = +opcodes  # no zero counts
    return opcodes, sum(opcodes.values())


@pytest.mark.requires_jax
def test_opcode_histogram_matches_text_counts_on_generated_dumps(jax_dumps):
    once_skipped = 0
    for path in jax_dumps:
        text = path.read_text()
        opcodes, total = _independent_counts(text)
        module = parse_hlo(text, str(path))
        # The async shorthand (custom-call-start(...)) makes the parser add the computation XLA's parser adds; the
        # text does not spell it out, so the text count is compared with the computations the text holds.
        written = [c for c in module.computations if not c.synthetic]
        once_skipped += "-start(" in text or "/*index=" in text
        assert Counter(i.opcode for c in written for i in c.instructions) == opcodes, path.name
        assert sum(len(c.instructions) for c in written) == total, path.name
        stats = module_stats(module)
        assert stats.instructions == module.instruction_count
        assert sum(stats.opcodes.values()) == stats.instructions
    assert once_skipped >= 1  # dumps with async ops and /*index=*/ comments, which this test once skipped
