"""Tests for the parser's rules beyond grammar (xlainspect.hlo.validate) and its result-shape inference
(xlainspect.hlo.infer_shape): what XLA's parser rejects, xlainspect rejects with one located line; what XLA accepts,
xlainspect accepts; shapes left out are inferred as XLA infers them, or the error says it can't.

Each rejected text sits next to its valid twin. The ``requires_jax`` tests run both through XLA's own parser (see
``xla_oracle.py``), so a rule cannot drift from XLA's in either direction.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import xla_oracle

from xlainspect import HloParseError, parse_hlo, parse_hlo_modules


def hlo(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse_error(text: str) -> str:
    with pytest.raises(HloParseError) as info:
        parse_hlo_modules(text)
    error = info.value
    assert str(error) == f"{error.path}:{error.line}:{error.column}: {error.message}"
    return str(error)


# -- operands and control predecessors: defined above their users --------------------------------------------------

FORWARD = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      a = f32[4] add(p, b)
      b = f32[4] negate(p)
      ROOT r = f32[4] copy(a)
    }
    """)
FORWARD_FIXED = FORWARD.replace("  a = f32[4] add(p, b)\n  b = f32[4] negate(p)\n",
                                "  b = f32[4] negate(p)\n  a = f32[4] add(p, b)\n")
CYCLE = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      a = f32[4] add(p, b)
      b = f32[4] negate(a)
      ROOT r = f32[4] copy(b)
    }
    """)
CYCLE_FIXED = CYCLE.replace("add(p, b)", "add(p, p)")
LONG_CYCLE = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      a = f32[4] add(p, c)
      b = f32[4] negate(a)
      c = f32[4] negate(b)
      ROOT r = f32[4] copy(c)
    }
    """)
SELF = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      ROOT a = f32[4] add(p, a)
    }
    """)
SELF_FIXED = SELF.replace("add(p, a)", "add(p, p)")
FUSION_CYCLE = hlo("""
    fused {
      q = f32[4] parameter(0)
      a = f32[4] add(q, b)
      b = f32[4] negate(a)
      ROOT n = f32[4] negate(b)
    }

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT f = f32[4] fusion(p), kind=kLoop, calls=fused
    }
    """)
FUSION_CYCLE_FIXED = FUSION_CYCLE.replace("add(q, b)", "add(q, q)")
CONTROL_FORWARD = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      a = f32[4] negate(p), control-predecessors={b}
      b = f32[4] abs(p)
      ROOT r = (f32[4], f32[4]) tuple(a, b)
    }
    """)
CONTROL_FORWARD_FIXED = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      b = f32[4] abs(p)
      a = f32[4] negate(p), control-predecessors={b}
      ROOT r = (f32[4], f32[4]) tuple(a, b)
    }
    """)
CONTROL_CYCLE = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      b = f32[4] abs(p), control-predecessors={a}
      a = f32[4] negate(p), control-predecessors={b}
      ROOT r = (f32[4], f32[4]) tuple(a, b)
    }
    """)

OPERAND_CASES = [
    (FORWARD, "<string>:3:21: instruction 'a' uses operand 'b' before its definition on line 4; XLA requires every "
              "instruction to be defined above its users: move 'b' above 'a'"),
    (CYCLE, "<string>:3:21: instructions 'a' and 'b' depend on each other ('a' uses 'b', which uses 'a'); HLO is "
            "acyclic: break the cycle"),
    (LONG_CYCLE, "<string>:3:21: instructions 'a' and 'c' depend on each other ('a' uses 'c', which uses 'b', which "
                 "uses 'a'); HLO is acyclic: break the cycle"),
    (SELF, "<string>:3:26: instruction 'a' names itself as an operand; an instruction cannot depend on itself"),
    (FUSION_CYCLE, "<string>:3:21: instructions 'a' and 'b' depend on each other ('a' uses 'b', which uses 'a'); HLO "
                   "is acyclic: break the cycle"),
    (CONTROL_FORWARD, "<string>:3:47: instruction 'a' names control predecessor 'b' before its definition on line "
                      "4; XLA requires every instruction to be defined above its users: move 'b' above 'a'"),
    (CONTROL_CYCLE, "<string>:3:44: instructions 'b' and 'a' depend on each other ('b' uses 'a', which uses 'b'); "
                    "HLO is acyclic: break the cycle"),
]
OPERAND_FIXES = [FORWARD_FIXED, CYCLE_FIXED, SELF_FIXED, FUSION_CYCLE_FIXED, CONTROL_FORWARD_FIXED]


@pytest.mark.parametrize("text, message", OPERAND_CASES)
def test_operand_used_before_its_definition_is_rejected(text, message):
    assert parse_error(text) == message


@pytest.mark.parametrize("text", OPERAND_FIXES)
def test_operands_defined_above_their_users_parse(text):
    module = parse_hlo(text)
    for computation in module.computations:
        seen: set[str] = set()
        for instruction in computation.instructions:
            assert set(instruction.operands) | set(instruction.control_predecessors) <= seen
            seen.add(instruction.name)


def test_forward_reference_in_a_multi_line_instruction_points_at_the_operand():
    text = "e {\n  p = f32[] parameter(0)\n  ROOT a = f32[] add(\n      p,\n      b)\n  b = f32[] negate(p)\n}\n"
    assert parse_error(text).startswith("<string>:5:7: instruction 'a' uses operand 'b' before its definition on "
                                        "line 6;")


def test_forward_reference_to_a_name_defined_nowhere_says_so():
    text = FORWARD.replace("  b = f32[4] negate(p)\n", "")
    assert parse_error(text) == "<string>:3:21: instruction 'a' uses operand 'b', which computation 'e' does not define"


# -- called computations ---------------------------------------------------------------------------------------------

COMPUTATIONS = hlo("""
    add {
      x = f32[] parameter(0)
      y = f32[] parameter(1)
      ROOT s = f32[] add(x, y)
    }

    ge {
      x = f32[] parameter(0)
      y = f32[] parameter(1)
      ROOT c = pred[] compare(x, y), direction=GE
    }

    neg {
      x = f32[] parameter(0)
      ROOT n = f32[] negate(x)
    }

    cond {
      t = (s32[]) parameter(0)
      ROOT c = pred[] constant(false)
    }

    body {
      ROOT t = (s32[]) parameter(0)
    }
    """)

# Each opcode with the computations it needs: the attribute XLA requires, the instruction with it.
REQUIRED = [
    ("fusion", "calls", "r = f32[] fusion(z), kind=kLoop, calls=neg"),
    ("call", "to_apply", "r = f32[] call(z), to_apply=neg"),
    ("while", "condition", "r = (s32[]) while(t0), condition=cond, body=body"),
    ("while", "body", "r = (s32[]) while(t0), condition=cond, body=body"),
    ("reduce", "to_apply", "r = f32[] reduce(v, z), dimensions={0}, to_apply=add"),
    ("reduce-window", "to_apply", "r = f32[2] reduce-window(v, z), window={size=2 stride=2}, to_apply=add"),
    ("scatter", "to_apply", "r = f32[4] scatter(v, idx, upd), update_window_dims={}, inserted_window_dims={0}, "
                            "scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add"),
    ("select-and-scatter", "select", "r = f32[4] select-and-scatter(v, src, z), window={size=2 stride=2}, "
                                     "select=ge, scatter=add"),
    ("select-and-scatter", "scatter", "r = f32[4] select-and-scatter(v, src, z), window={size=2 stride=2}, "
                                      "select=ge, scatter=add"),
    ("sort", "to_apply", "r = f32[4] sort(v), dimensions={0}, to_apply=ge"),
    ("all-reduce", "to_apply", "r = f32[4] all-reduce(v), replica_groups={}, to_apply=add"),
    ("all-reduce-start", "to_apply", "r = f32[4] all-reduce-start(v), replica_groups={}, to_apply=add"),
    ("reduce-scatter", "to_apply", "r = f32[4] reduce-scatter(v), replica_groups={}, dimensions={0}, to_apply=add"),
    ("map", "to_apply", "r = f32[4] map(v), dimensions={0}, to_apply=neg"),
    ("async-start", "calls", "r = ((f32[]), f32[], s32[]) async-start(z), calls=neg"),
]


def entry_with(root: str) -> str:
    return COMPUTATIONS + hlo(f"""
        ENTRY e {{
          v = f32[4] parameter(0)
          z = f32[] constant(0)
          idx = s32[1,1] parameter(1)
          upd = f32[1] parameter(2)
          src = f32[2] parameter(3)
          t0 = (s32[]) parameter(4)
          c = pred[] parameter(5)
          ROOT {root}
        }}
        """)


def without(instruction: str, role: str) -> str:
    head, _, tail = instruction.partition(f", {role}=")
    rest = tail.partition(", ")[2]
    return head + (", " + rest if rest else "")


@pytest.mark.parametrize("opcode, role, instruction", REQUIRED, ids=[f"{o}-{r}" for o, r, _ in REQUIRED])
def test_instruction_without_a_computation_its_opcode_needs_is_rejected(opcode, role, instruction):
    column = len("  ROOT ") + instruction.index(f" {opcode}(") + 2  # the opcode's
    message = parse_error(entry_with(without(instruction, role)))
    assert message.startswith(f"<string>:34:{column}: {opcode} 'r' has no {role}=; XLA requires one: add {role}=<name "
                              "of ")


@pytest.mark.parametrize("opcode, role, instruction", REQUIRED, ids=[f"{o}-{r}" for o, r, _ in REQUIRED])
def test_instruction_with_the_computations_its_opcode_needs_parses(opcode, role, instruction):
    root = parse_hlo(entry_with(instruction)).entry.root
    assert root.opcode == opcode and role in root.attributes


def test_fusion_without_calls_message():
    text = "e {\n  p = f32[4] parameter(0)\n  ROOT f = f32[4] fusion(p), kind=kLoop\n}\n"
    assert parse_error(text) == ("<string>:3:19: fusion 'f' has no calls=; XLA requires one: add calls=<name of the "
                                 "fused computation>")


CONDITIONALS = [
    ("r = f32[] conditional(c, z, z), true_computation=neg, false_computation=neg", None),
    ("r = f32[] conditional(idx0, z, z), branch_computations={neg, neg}", None),
    ("r = f32[] conditional(c, z, z), true_computation=neg",
     "<string>:35:18: conditional 'r' has true_computation= but no false_computation=; XLA requires both"),
    ("r = f32[] conditional(c, z, z)",
     "<string>:35:18: conditional 'r' names no branches; XLA requires branch_computations={...} or "
     "true_computation= and false_computation="),
]


@pytest.mark.parametrize("root, message", CONDITIONALS)
def test_conditional_names_its_branches(root, message):
    text = entry_with(root).replace("  c = pred[] parameter(5)\n", "  c = pred[] parameter(5)\n  idx0 = s32[] "
                                                                    "constant(0)\n")
    if message is None:
        assert parse_hlo(text).entry.root.opcode == "conditional"
    else:
        assert parse_error(text) == message


CALL_FORWARD = hlo("""
    ENTRY e {
      p = f32[4] parameter(0)
      ROOT c = f32[4] call(p), to_apply=g
    }

    g {
      q = f32[4] parameter(0)
      ROOT n = f32[4] negate(q)
    }
    """)
CALL_FORWARD_FIXED = hlo("""
    g {
      q = f32[4] parameter(0)
      ROOT n = f32[4] negate(q)
    }

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT c = f32[4] call(p), to_apply=g
    }
    """)
CALL_SELF = hlo("""
    g {
      q = f32[4] parameter(0)
      ROOT n = f32[4] call(q), to_apply=g
    }

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT c = f32[4] call(p), to_apply=g
    }
    """)
CALL_CYCLE = hlo("""
    f {
      q = f32[4] parameter(0)
      ROOT n = f32[4] call(q), to_apply=g
    }

    g {
      q = f32[4] parameter(0)
      ROOT n = f32[4] call(q), to_apply=f
    }

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT c = f32[4] call(p), to_apply=g
    }
    """)
CALL_CYCLE_FIXED = CALL_CYCLE.replace("call(q), to_apply=f", "negate(q)").replace("call(q), to_apply=g", "abs(q)")
FUSION_FORWARD = hlo("""
    HloModule m

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT f = f32[4] fusion(p), kind=kLoop, calls=%fused
    }

    fused {
      q = f32[4] parameter(0)
      ROOT n = f32[4] negate(q)
    }
    """)

CALL_CASES = [
    (CALL_FORWARD, "<string>:3:37: instruction 'c' calls computation 'g' (to_apply=) before its definition on line 6; "
                   "XLA requires a computation to be defined above its callers: move 'g' above 'e'"),
    (CALL_SELF, "<string>:3:37: instruction 'n' calls its own computation 'g' (to_apply=); HLO has no recursion"),
    (CALL_CYCLE, "<string>:3:37: computations 'f' and 'g' call each other ('f' calls 'g', which calls 'f'); HLO has "
                 "no recursion: break the cycle"),
    (FUSION_FORWARD, "<string>:5:48: instruction 'f' calls computation 'fused' (calls=) before its definition on line "
                     "8; XLA requires a computation to be defined above its callers: move 'fused' above 'e'"),
]


@pytest.mark.parametrize("text, message", CALL_CASES)
def test_computation_called_before_its_definition_is_rejected(text, message):
    assert parse_error(text) == message


@pytest.mark.parametrize("text", [CALL_FORWARD_FIXED, CALL_CYCLE_FIXED])
def test_computations_defined_above_their_callers_parse(text):
    module = parse_hlo(text)
    order = [computation.name for computation in module.computations]
    for instruction in module.instructions():
        for called in instruction.called_computations:
            assert order.index(called.name) < order.index(instruction.computation)


CALL_FORWARD_SHAPELESS = CALL_FORWARD.replace("ROOT c = f32[4] call(p)", "ROOT c = call(p)")


def test_call_of_a_later_computation_without_a_result_shape_says_what_to_move():
    assert parse_error(CALL_FORWARD_SHAPELESS) == (
        "<string>:3:12: call calls computation 'g' (to_apply=), which is not defined above it; XLA requires a "
        "computation to be defined above its callers: move 'g' up")


def test_call_order_is_checked_in_every_module_of_a_file():
    text = CALL_FORWARD_FIXED + "// -----\n" + CALL_FORWARD
    assert parse_error(text).startswith("<string>:13:37: instruction 'c' calls computation 'g' (to_apply=) before")


# -- input_output_alias ---------------------------------------------------------------------------------------------

ALIAS_BODY = hlo("""
    ENTRY main {
      p = f32[4] parameter(0)
      q = (f32[4], s32[]) parameter(1)
      n = f32[4] negate(p)
      ROOT t = (f32[4], f32[4], (f32[4], s32[])) tuple(p, n, q)
    }
    """)
ARRAY_BODY = "ENTRY main {\n  p = f32[4] parameter(0)\n  ROOT n = f32[4] negate(p)\n}\n"


def aliased(alias: str, body: str = ALIAS_BODY) -> str:
    return f"HloModule m, input_output_alias={alias}\n\n" + body


ALIAS_GOOD = [
    aliased("{ {0}: (0, {}, may-alias), {1}: (0, {}, must-alias) }"),
    aliased("{ {2,1}: (1, {1}, may-alias) }"),
    aliased("{ {2}: (1, {}) }"),
    aliased("{ {0} : ( 0 , { } , may-alias ), }"),
    aliased("{}"),
    aliased("{ {}: (0, {}, may-alias) }", ARRAY_BODY),
]
ALIAS_BAD = [
    (aliased("{ {0}: (0, {}, may-alias), {3}: (0, {}, may-alias) }"),
     "<string>:1:60: input_output_alias names output {3}, which the entry's result shape (f32[4], f32[4], (f32[4], "
     "s32[])) does not have; use an index into that shape ({} for the whole result)"),
    (aliased("{ {2,2}: (1, {1}, may-alias) }"), "<string>:1:35: input_output_alias names output {2,2}, which"),
    (aliased("{ {0,0}: (0, {}, may-alias) }"), "<string>:1:35: input_output_alias names output {0,0}, which"),
    (aliased("{ {0}: (0, {}, may-alias) }", ARRAY_BODY), "<string>:1:35: input_output_alias names output {0}, which"),
    (aliased("{ {0}: (2, {}, may-alias) }"),
     "<string>:1:35: input_output_alias names parameter 2, which the entry 'main' does not have (it has parameters 0 "
     "to 1)"),
    (aliased("{ {0}: (1, {2}, may-alias) }"),
     "<string>:1:35: input_output_alias names index {2} of parameter 1, whose shape (f32[4], s32[]) has none; use an "
     "index into that shape ({} for the whole parameter)"),
    (aliased("{ {0}: (0, {0}, may-alias) }"), "<string>:1:35: input_output_alias names index {0} of parameter 0,"),
    (aliased("{ {0}: (0, {}, bogus) }"),
     "<string>:1:35: input_output_alias kind 'bogus' is neither may-alias nor must-alias"),
    (aliased("{ {0}: 0 }"),
     "<string>:1:35: malformed input_output_alias; write { {output index}: (parameter number, {parameter index}, "
     "may-alias|must-alias), ... }"),
]
# XLA's parser checks the output index and the kind; the parameter side only its verifier checks, when XLA compiles.
ALIAS_ONLY_XLA_VERIFIER_REJECTS = {4, 5, 6}


@pytest.mark.parametrize("text", ALIAS_GOOD)
def test_input_output_alias_inside_the_shapes_parses(text):
    assert "input_output_alias" in parse_hlo(text).attributes


@pytest.mark.parametrize("text, message", ALIAS_BAD)
def test_input_output_alias_outside_the_shapes_is_rejected(text, message):
    assert parse_error(text).startswith(message)


# -- result shapes left out ---------------------------------------------------------------------------------------

SHAPE_COMPUTATIONS = hlo("""
    add {
      a = f32[] parameter(0)
      b = f32[] parameter(1)
      ROOT s = f32[] add(a, b)
    }

    add2 {
      a = f32[] parameter(0)
      b = s32[] parameter(1)
      c = f32[] parameter(2)
      d = s32[] parameter(3)
      s = f32[] add(a, c)
      t = s32[] add(b, d)
      ROOT r = (f32[], s32[]) tuple(s, t)
    }

    less {
      a = f32[] parameter(0)
      b = f32[] parameter(1)
      ROOT c = pred[] compare(a, b), direction=LT
    }

    less2 {
      a = f32[] parameter(0)
      b = f32[] parameter(1)
      c = s32[] parameter(2)
      d = s32[] parameter(3)
      ROOT l = pred[] compare(a, b), direction=LT
    }

    neg {
      a = f32[7] parameter(0)
      ROOT n = f32[7] negate(a)
    }

    branch {
      a = f32[7] parameter(0)
      ROOT r = s32[3] constant({1, 2, 3})
    }

    keep {
      ROOT t = (f32[7], s32[]) parameter(0)
    }

    never {
      t = (f32[7], s32[]) parameter(0)
      ROOT c = pred[] constant(false)
    }
    """)
SHAPE_ENTRY = hlo("""
    ENTRY e {
      x = f32[2,3,4]{2,1,0} parameter(0)
      y = f32[4,5] parameter(1)
      v = f32[7] parameter(2)
      k = s32[2,3,4] parameter(3)
      c = c64[3] parameter(4)
      h = bf16[4,5] parameter(5)
      t = (f32[7], s32[]) parameter(6)
      m = f32[4,4] parameter(7)
      dv = f32[<=7] parameter(8)
      pz = pred[] parameter(9)
      pv = pred[7] parameter(10)
      k7 = s32[7] parameter(11)
      idx = s32[1,1] parameter(12)
      upd = f32[1] parameter(13)
      w = f32[2] parameter(14)
      z = f32[] constant(0)
      iz = s32[] constant(0)
      tk = token[] after-all()
      ROOT r = {}
    }
    """)

# Instructions without a shape, and the shape xlainspect infers: each checked against XLA's parser below.
INFERRED = [
    ("reduce(x, z), dimensions={1}, to_apply=add", "f32[2,4]"),
    ("reduce(x, z), dimensions={2,0}, to_apply=add", "f32[3]"),
    ("reduce(x, z), dimensions={}, to_apply=add", "f32[2,3,4]"),
    ("reduce(x, k, z, iz), dimensions={0,2}, to_apply=add2", "(f32[3], s32[3])"),
    ("reduce-window(x, z), window={size=1x2x2 stride=1x1x2}, to_apply=add", "f32[2,2,2]"),
    ("reduce-window(x, z), window={size=1x3x3 stride=1x1x1 pad=0_0x1_1x1_1}, to_apply=add", "f32[2,3,4]"),
    ("reduce-window(v, z), window={size=3 stride=2 lhs_dilate=2 rhs_dilate=1}, to_apply=add", "f32[6]"),
    ("reduce-window(v, z), window={size=2 rhs_dilate=3}, to_apply=add", "f32[4]"),
    ("reduce-window(dv, z), window={size=2}, to_apply=add", "f32[<=6]"),
    ("transpose(x), dimensions={2,0,1}", "f32[4,2,3]"),
    ("transpose(dv), dimensions={0}", "f32[<=7]"),
    ("dot(x, y), lhs_contracting_dims={2}, rhs_contracting_dims={0}", "f32[2,3,5]"),
    ("dot(y, y), lhs_contracting_dims={0}, rhs_contracting_dims={0}", "f32[5,5]"),
    ("dot(x, x), lhs_batch_dims={0}, rhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_contracting_dims={2}",
     "f32[2,3,3]"),
    ("dot(v, v), lhs_contracting_dims={0}, rhs_contracting_dims={0}", "f32[]"),
    ("dot(v, v)", "f32[7,7]"),
    ("dot(h, h), lhs_contracting_dims={0}, rhs_contracting_dims={0}", "bf16[5,5]"),
    ("dot(y, h), lhs_contracting_dims={0}, rhs_contracting_dims={0}", "f32[5,5]"),
    ("concatenate(x, x), dimensions={1}", "f32[2,6,4]"),
    ("concatenate(v, v, v), dimensions={0}", "f32[21]"),
    ("concatenate(dv, v), dimensions={0}", "f32[<=14]"),
    ("broadcast(v), dimensions={1}", "f32[1,7]"),
    ("broadcast(z), dimensions={}", "f32[]"),
    ("broadcast(dv), dimensions={2}", "f32[2,<=7]"),
    ("pad(x, z), padding=0_0x1_2_3x-1_0", "f32[2,12,3]"),
    ("pad(v, z), padding=0_0_1", "f32[13]"),
    ("reverse(x), dimensions={0}", "f32[2,3,4]{2,1,0}"),
    ("compare(v, v), direction=LT", "pred[7]"),
    ("compare(z, v), direction=LT", "pred[7]"),
    ("add(v, z)", "f32[7]"),
    ("add(z, v)", "f32[7]"),
    ("maximum(x, z)", "f32[2,3,4]{2,1,0}"),
    ("complex(v, v)", "c64[7]"),
    ("is-finite(dv)", "pred[<=7]"),
    ("real(c)", "f32[3]"),
    ("imag(c)", "f32[3]"),
    ("abs(c)", "f32[3]"),
    ("abs(k)", "s32[2,3,4]"),
    ("exponential(c)", "c64[3]"),
    ("negate(dv)", "f32[<=7]"),
    ("copy(t)", "(f32[7], s32[])"),
    ("count-leading-zeros(k)", "s32[2,3,4]"),
    ("select(pv, v, v)", "f32[7]"),
    ("select(pz, v, v)", "f32[7]"),
    ("clamp(z, v, z)", "f32[7]"),
    ("tuple(v, z)", "(f32[7], f32[])"),
    ("tuple()", "()"),
    ("get-tuple-element(t), index=1", "s32[]"),
    ("sort(v), dimensions={0}, to_apply=less", "f32[7]"),
    ("sort(v, k7), dimensions={0}, to_apply=less2", "(f32[7], s32[7])"),
    ("map(v, v), dimensions={0}, to_apply=less", "pred[7]"),
    ("call(v), to_apply=neg", "f32[7]"),
    ("conditional(iz, v, v), branch_computations={branch, branch}", "s32[3]"),
    ("conditional(pz, v, v), true_computation=branch, false_computation=branch", "s32[3]"),
    ("while(t), condition=never, body=keep", "(f32[7], s32[])"),
    ("scatter(v, idx, upd), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, "
     "index_vector_dim=1, to_apply=add", "f32[7]"),
    ("select-and-scatter(v, w, z), window={size=3 stride=3}, select=less, scatter=add", "f32[7]"),
    ("after-all(tk)", "token[]"),
    ("partition-id()", "u32[]"),
    ("replica-id()", "u32[]"),
    ("add-dependency(v, tk)", "f32[7]"),
    ("get-dimension-size(x), dimensions={1}", "s32[]"),
    ("domain(v), domain={kind=\"sharding\", entry={maximal device=0}, exit={maximal device=1}}", "f32[7]"),
    ("cholesky(m), lower=true", "f32[4,4]"),
    ("triangular-solve(m, y), left_side=true, lower=true, transpose_a=NO_TRANSPOSE", "f32[4,5]"),
    ("topk(y), k=2, largest=true", "(f32[4,2], s32[4,2])"),
]


def shapeless(instruction: str) -> str:
    return SHAPE_COMPUTATIONS + "\n" + SHAPE_ENTRY.replace("{}", instruction, 1)


@pytest.mark.parametrize("instruction, shape", INFERRED, ids=[i.split("(")[0] + str(n) for n, (i, _) in
                                                               enumerate(INFERRED)])
def test_result_shape_is_inferred(instruction, shape):
    assert str(parse_hlo(shapeless(instruction)).entry.root.shape) == shape


def test_inferred_elementwise_shape_keeps_the_operand_layout():
    assert str(parse_hlo(shapeless("negate(x)")).entry.root.shape) == "f32[2,3,4]{2,1,0}"


def test_reduce_window_without_shape_as_xla_test_files_write_it():
    module = parse_hlo(hlo("""
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }

        ENTRY main {
          in = f32[16,32] parameter(0)
          init = f32[] constant(0)
          ROOT out = reduce-window(in, init), window={size=2x4 stride=2x4}, to_apply=add
        }
        """))
    assert str(module.entry.root.shape) == "f32[8,8]"


NOT_INFERRED = [
    ("slice(x), slice={[0:2], [1:3], [0:4:2]}",
     "<string>:69:12: expected a result shape before opcode 'slice'; XLA cannot infer it for slice: write the shape "
     "before the opcode"),
    ("reshape(x)", "<string>:69:12: expected a result shape before opcode 'reshape'; XLA cannot infer it for"),
    ("reduce-precision(v), exponent_bits=5, mantissa_bits=10",
     "<string>:69:12: expected a result shape before opcode 'reduce-precision'; XLA cannot infer it for"),
    ("convolution(m, m), dim_labels=bf_io->bf",
     "<string>:69:12: expected a result shape before opcode 'convolution'; xlainspect does not infer it for "
     "convolution (XLA does): write the shape before the opcode"),
    ("gather(x, k), offset_dims={}, collapsed_slice_dims={0,1,2}, start_index_map={0,1,2}, index_vector_dim=3, "
     "slice_sizes={1,1,1}", "<string>:69:12: expected a result shape before opcode 'gather'; xlainspect does not"),
    ("reduce-window(x, k, z, iz), window={size=1x2x2 stride=1x1x2}, to_apply=add2",
     "<string>:69:12: cannot infer the result shape of reduce-window: xlainspect infers it only for one input and "
     "one init value, as XLA does; write the shape before the opcode"),
    ("add(x, k)", "<string>:69:12: cannot infer the result shape of add: its operands have different element types "
                  "(f32, s32); write the shape before the opcode"),
    ("dot(x, y), lhs_contracting_dims={1}, rhs_contracting_dims={0}",
     "<string>:69:12: cannot infer the result shape of dot: its contracting dimensions do not match"),
    ("transpose(x), dimensions={0,1}", "<string>:69:12: cannot infer the result shape of transpose: dimensions={0,1} "
                                       "is not a permutation of rank 3; write the shape before the opcode"),
    ("get-tuple-element(t), index=2", "<string>:69:12: cannot infer the result shape of get-tuple-element: index=2 is "
                                      "outside the operand's 2 elements"),
    ("reduce(x, z), to_apply=add", "<string>:69:12: cannot infer the result shape of reduce: attribute dimensions is "
                                   "missing; write the shape before the opcode"),
]


@pytest.mark.parametrize("instruction, message", NOT_INFERRED)
def test_result_shape_that_cannot_be_inferred_says_so(instruction, message):
    assert parse_error(shapeless(instruction)).startswith(message)


# -- XLA agrees ------------------------------------------------------------------------------------------------------


def _xla(texts: list[str]) -> list[xla_oracle.OracleResult]:
    results = xla_oracle.xla_summaries(texts)
    assert not [r.crash for r in results if r.crash]
    return results


@pytest.mark.requires_jax
def test_xla_rejects_what_the_strict_rules_reject():
    texts = ([text for text, _ in OPERAND_CASES + CALL_CASES] + [CALL_FORWARD_SHAPELESS]
             + [entry_with(without(instruction, role)) for _, role, instruction in REQUIRED]
             + [text for number, (text, _) in enumerate(ALIAS_BAD) if number not in ALIAS_ONLY_XLA_VERIFIER_REJECTS]
             + [shapeless(instruction) for instruction, _ in NOT_INFERRED[:3]])
    accepted = [text for text, result in zip(texts, _xla(texts), strict=True) if result.ok]
    assert accepted == []


@pytest.mark.requires_jax
def test_xla_parser_accepts_the_alias_parameters_only_its_verifier_rejects():
    # Documents why ALIAS_ONLY_XLA_VERIFIER_REJECTS exists: should XLA's parser start rejecting these, drop the set.
    texts = [ALIAS_BAD[number][0] for number in sorted(ALIAS_ONLY_XLA_VERIFIER_REJECTS)]
    assert all(result.ok for result in _xla(texts))


@pytest.mark.requires_jax
def test_xla_accepts_what_the_strict_rules_accept_and_sees_the_same_module():
    texts = (OPERAND_FIXES + [CALL_FORWARD_FIXED, CALL_CYCLE_FIXED] + ALIAS_GOOD
             + [entry_with(instruction) for _, _, instruction in REQUIRED])
    problems = []
    for text, result in zip(texts, _xla(texts), strict=True):
        if not result.ok:
            problems.append(f"XLA rejects:\n{text}\n{result.error}")
        else:
            problems.extend(xla_oracle.compare(parse_hlo(text), result.summary))
    assert problems == []


@pytest.mark.requires_jax
def test_inferred_shapes_match_xla():
    texts = [shapeless(instruction) for instruction, _ in INFERRED]
    problems = []
    for (instruction, _), text, result in zip(INFERRED, texts, _xla(texts), strict=True):
        if not result.ok:
            problems.append(f"{instruction}: XLA rejects it: {result.error}")
        else:
            problems.extend(f"{instruction}: {d}" for d in xla_oracle.compare(parse_hlo(text), result.summary))
    assert problems == []


# -- the command line: one located line, exit 1, quickly ---------------------------------------------------------

CLI_CASES = {"forward": FORWARD, "cycle": FUSION_CYCLE, "no-calls": hlo("""
    fused {
      q = f32[4] parameter(0)
      ROOT n = f32[4] negate(q)
    }

    ENTRY e {
      p = f32[4] parameter(0)
      ROOT f = f32[4] fusion(p), kind=kLoop
    }
    """)}
CLI_ERRORS = {
    "forward": ":3:21: instruction 'a' uses operand 'b' before its definition on line 4;",
    "cycle": ":3:21: instructions 'a' and 'b' depend on each other",
    "no-calls": ":8:19: fusion 'f' has no calls=;",
}


@pytest.mark.parametrize("command", ["stats", "diff", "render"])
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_reports_malformed_hlo_in_one_located_line(tmp_path, command, case):
    path = tmp_path / f"{case}.hlo"
    path.write_text(CLI_CASES[case])
    args = {"stats": [str(path)], "diff": [str(path), str(path)],
            "render": [str(path), "-o", str(tmp_path / "out.svg")]}[command]
    result = subprocess.run([sys.executable, "-m", "xlainspect", command, *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"{path}{CLI_ERRORS[case]}"), result.stderr
    assert not (tmp_path / "out.svg").exists()
