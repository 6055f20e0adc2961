"""Tests for xlainspect.hlo.parse: HLO text as XLA writes it, and as XLA's own tests write it, into HloModule values.

Each case is a small HLO text next to what it must parse into. Error cases assert the whole one-line message,
``path:line:col: message``, so a change of wording or position is a visible decision.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from xlainspect import (
    CalledComputation,
    HloParseError,
    InputError,
    Shape,
    SourceLocation,
    parse_hlo,
    parse_hlo_modules,
    read_hlo,
)

DATA = Path(__file__).resolve().parent / "data"


def hlo(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse_error(text: str, path: str = "<string>") -> str:
    with pytest.raises(HloParseError) as info:
        parse_hlo_modules(text, path)
    error = info.value
    assert str(error) == f"{error.path}:{error.line}:{error.column}: {error.message}"
    return str(error)


# -- modules and computations ---------------------------------------------------------------------------------------


def test_module_header_attributes_are_kept_as_written():
    module = parse_hlo(hlo("""
        HloModule jit_f, is_scheduled=true, entry_computation_layout={(f32[4]{0}, s32[])->(f32[4]{0})}, input_output_alias={ {0}: (0, {}, may-alias) }, num_partitions=2

        ENTRY main {
          p = f32[4]{0} parameter(0)
          q = s32[] parameter(1)
          ROOT t = (f32[4]{0}) tuple(p)
        }
        """))
    assert module.name == "jit_f"
    assert module.attributes == {
        "is_scheduled": "true",
        "entry_computation_layout": "{(f32[4]{0}, s32[])->(f32[4]{0})}",
        "input_output_alias": "{ {0}: (0, {}, may-alias) }",
        "num_partitions": "2",
    }
    assert module.is_scheduled
    assert module.entry_name == "main"
    assert module.index == 0 and module.source == "<string>"


def test_module_header_without_attributes_is_not_scheduled():
    module = parse_hlo("HloModule m\n\nENTRY e {\n  ROOT p = f32[] parameter(0)\n}\n")
    assert module.attributes == {}
    assert not module.is_scheduled


def test_bare_computations_make_a_module_named_after_the_last_one():
    module = parse_hlo(hlo("""
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }

        main {
          p = f32[8] parameter(0)
          z = f32[] constant(0)
          ROOT r = f32[] reduce(p, z), dimensions={0}, to_apply=add
        }
        """))
    assert module.name == "module_main"
    assert [c.name for c in module.computations] == ["add", "main"]
    assert module.entry_name == "main"
    assert [c.is_entry for c in module.computations] == [False, True]
    assert module.entry is module.computation("main")
    assert module.attributes == {}


def test_entry_keyword_marks_the_entry_even_when_it_is_not_last():
    module = parse_hlo(hlo("""
        HloModule m
        ENTRY first {
          ROOT p = f32[] parameter(0)
        }
        second {
          ROOT q = f32[] parameter(0)
        }
        """))
    assert module.entry_name == "first"
    assert [c.is_entry for c in module.computations] == [True, False]


def test_lower_case_entry_is_a_name_not_the_keyword():
    module = parse_hlo(hlo("""
        entry {
          ROOT p = f32[] parameter(0)
        }
        other {
          ROOT q = f32[] parameter(0)
        }
        """))
    assert [c.name for c in module.computations] == ["entry", "other"]
    assert module.entry_name == "other"  # no ENTRY: the last computation is the entry
    assert module.name == "module_other"


def test_computation_signature_is_kept_and_optional():
    module = parse_hlo(hlo("""
        HloModule m
        %add.1 (x: f32[], y: f32[]) -> f32[] {
          %x = f32[] parameter(0)
          %y = f32[] parameter(1)
          ROOT %sum = f32[] add(f32[] %x, f32[] %y)
        }

        ENTRY %main {
          %p = f32[] parameter(0)
          ROOT %c = f32[] call(%p, %p), to_apply=%add.1
        }
        """))
    assert module.computation("add.1").signature == "(x: f32[], y: f32[]) -> f32[]"
    assert module.computation("main").signature == ""
    assert module.computation("add.1").line == 2
    assert module.computation("main").line == 8


def test_execution_thread_after_the_closing_brace():
    module = parse_hlo(hlo("""
        HloModule m
        side {
          p = f32[] parameter(0)
          ROOT n = f32[] negate(p)
        }, execution_thread="host"

        ENTRY e {
          p = f32[] parameter(0)
          ROOT c = f32[] call(p), to_apply=side
        }
        """))
    assert module.computation("side").execution_thread == "host"
    assert module.computation("e").execution_thread == ""


def test_percent_sigils_are_optional_and_dropped_from_names():
    with_sigils = parse_hlo("%e {\n  %p = f32[2] parameter(0)\n  ROOT %n = f32[2] negate(%p)\n}\n")
    without = parse_hlo("e {\n  p = f32[2] parameter(0)\n  ROOT n = f32[2] negate(p)\n}\n")
    for module in (with_sigils, without):
        assert module.entry_name == "e"
        assert [(i.name, i.operands) for i in module.entry.instructions] == [("p", ()), ("n", ("p",))]


def test_names_with_dots_and_dashes_and_names_that_are_opcodes():
    module = parse_hlo(hlo("""
        ENTRY %main.12-x {
          %parameter = f32[4] parameter(0)
          %constant = f32[] constant(1)
          %broadcast.1-a = f32[4] broadcast(%constant), dimensions={}
          %add = f32[4] add(%parameter, %broadcast.1-a)
          ROOT %get-tuple-element.3 = (f32[4]) tuple(%add)
        }
        """))
    entry = module.entry
    assert entry.name == "main.12-x"
    assert [(i.name, i.opcode) for i in entry.instructions] == [
        ("parameter", "parameter"), ("constant", "constant"), ("broadcast.1-a", "broadcast"), ("add", "add"),
        ("get-tuple-element.3", "tuple")]
    assert entry.by_name["add"].operands == ("parameter", "broadcast.1-a")


def test_typed_and_untyped_operands():
    module = parse_hlo(hlo("""
        ENTRY e {
          p = (f32[2]{0}, s32[]) parameter(0)
          a = f32[2]{0} get-tuple-element((f32[2]{0}, s32[]) %p), index=0
          b = f32[2] get-tuple-element(p), index=0
          ROOT s = f32[2]{0} add(f32[2]{0} %a, b)
        }
        """))
    by_name = module.entry.by_name
    assert by_name["a"].operands == ("p",)
    assert by_name["b"].operands == ("p",)
    assert by_name["s"].operands == ("a", "b")


def test_repeated_operand_is_kept_twice():
    module = parse_hlo("e {\n  p = f32[] parameter(0)\n  ROOT a = f32[] add(p, p)\n}\n")
    assert module.entry.root.operands == ("p", "p")


def test_shapes_inferred_where_xla_allows_leaving_them_out():
    module = parse_hlo(hlo("""
        e {
          p = f32[2] parameter(0)
          q = s32[] parameter(1)
          t = tuple(p, q)
          g = get-tuple-element(t), index=1
          n = negate(g)
          ROOT empty = () tuple()
        }
        """))
    by_name = module.entry.by_name
    assert by_name["t"].shape == Shape("tuple", tuple_shapes=(Shape("f32", (2,), (False,)), Shape("s32")))
    assert by_name["g"].shape == Shape("s32")
    assert by_name["n"].shape == Shape("s32")
    assert by_name["empty"].shape == Shape("tuple")
    assert str(by_name["t"].shape) == "(f32[2], s32[])"


def test_without_root_the_last_instruction_is_the_root():
    module = parse_hlo("e {\n  p = f32[] parameter(0)\n  n = f32[] negate(p)\n  a = f32[] abs(p)\n}\n")
    assert [i.is_root for i in module.entry.instructions] == [False, False, True]
    assert module.entry.root.name == "a"


def test_root_need_not_be_last():
    module = parse_hlo("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p)\n  a = f32[] abs(p)\n}\n")
    assert module.entry.root.name == "n"
    assert [i.is_root for i in module.entry.instructions] == [False, True, False]


def test_index_comments_in_tuple_shapes_and_operand_lists():
    module = parse_hlo(hlo("""
        e {
          p0 = f32[] parameter(0)
          p1 = f32[] parameter(1)
          p2 = f32[] parameter(2)
          p3 = f32[] parameter(3)
          p4 = f32[] parameter(4)
          p5 = s32[] parameter(5)
          ROOT t = (f32[], f32[], f32[], f32[], f32[], /*index=5*/s32[]) tuple(p0, p1, p2, p3, p4, /*index=5*/p5)
        }
        """))
    root = module.entry.root
    assert root.operands == ("p0", "p1", "p2", "p3", "p4", "p5")
    assert [str(s) for s in root.shape.tuple_shapes] == ["f32[]"] * 5 + ["s32[]"]


def test_comments_between_tokens_and_comment_markers_inside_strings():
    module = parse_hlo(hlo("""
        // RUN: hlo-opt %s | FileCheck %s
        e {  // the entry
          p = f32[] parameter(0)  /* a block
                                     comment over lines */
          ROOT c = f32[] custom-call(p), // the call
            custom_call_target="a//b", /* x ) */ backend_config="// not a comment /* nor this */"
        }
        // CHECK: custom-call
        """))
    root = module.entry.root
    assert root.attributes == {"custom_call_target": '"a//b"',
                               "backend_config": '"// not a comment /* nor this */"'}
    assert root.custom_call_target == "a//b"
    assert root.backend_config == "// not a comment /* nor this */"
    assert root.line == 5


def test_attribute_value_spread_over_lines():
    module = parse_hlo(hlo("""
        e {
          p = f32[] parameter(0)
          ROOT c = f32[] custom-call(p), custom_call_target="foo",
            backend_config={
              "a": 1,   // a comment inside the value
              "b": {"c": "x//y"}
            }, metadata={op_name="a//b"}
        }
        """))
    root = module.entry.root
    assert list(root.attributes) == ["custom_call_target", "backend_config", "metadata"]
    assert "a comment" not in root.attributes["backend_config"]
    assert root.backend_config == {"a": 1, "b": {"c": "x//y"}}
    assert root.metadata.op_name == "a//b"


def test_fusion_kind_and_backend_fusion_kind():
    module = parse_hlo(hlo("""
        HloModule m
        f1 {
          p = f32[4] parameter(0)
          ROOT n = f32[4] negate(p)
        }
        f2 {
          p = f32[4] parameter(0)
          ROOT n = f32[4] negate(p)
        }
        f3 {
          p = f32[4] parameter(0)
          ROOT n = f32[4] negate(p)
        }
        ENTRY e {
          p = f32[4] parameter(0)
          a = f32[4] fusion(p), kind=kLoop, calls=f1
          b = f32[4] fusion(a), kind=kCustom, calls=f2, backend_config={"outer_dimension_partitions":[],"fusion_config":{"kind":"__ynn_fusion"}}
          c = f32[4] fusion(b), kind=kCustom, calls=f3, backend_config="{\\"fusion_backend_config\\":{\\"kind\\":\\"__triton_gemm\\",\\"triton_gemm_config\\":{\\"block_m\\":\\"16\\"}}}"
          ROOT d = f32[4] negate(c)
        }
        """))
    by_name = module.entry.by_name
    assert [(by_name[n].fusion_kind, by_name[n].backend_fusion_kind) for n in "abcd"] == [
        ("kLoop", None), ("kCustom", "__ynn_fusion"), ("kCustom", "__triton_gemm"), (None, None)]
    assert module.fusion_computations == frozenset({"f1", "f2", "f3"})
    assert by_name["b"].called_computations == (CalledComputation("calls", "f2"),)


def test_called_computations_with_their_roles():
    module = parse_hlo(hlo("""
        HloModule m
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }
        ge {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT r = pred[] compare(a, b), direction=GE
        }
        cond {
          t = (f32[]) parameter(0)
          ROOT c = pred[] constant(false)
        }
        body {
          ROOT t = (f32[]) parameter(0)
        }
        neg {
          p = f32[] parameter(0)
          ROOT n = f32[] negate(p)
        }
        ENTRY e {
          x = f32[4,4] parameter(0)
          s = f32[2,2] parameter(1)
          z = f32[] constant(0)
          i = s32[] parameter(2)
          b = pred[] parameter(3)
          t = (f32[]) tuple(z)
          r = f32[] reduce(x, z), dimensions={0,1}, to_apply=add
          w = (f32[]) while(t), condition=cond, body=body
          c1 = f32[] conditional(b, z, z), true_computation=neg, false_computation=neg
          c2 = f32[] conditional(i, z, z, z), branch_computations={neg, %neg, neg}
          cc = f32[] custom-call(z), custom_call_target="f", called_computations={neg,add}
          ss = f32[4,4] select-and-scatter(x, s, z), window={size=2x2 stride=2x2}, select=ge, scatter=add
          ROOT k = f32[] call(z), to_apply=neg
        }
        """))
    calls = {i.name: i.called_computations for i in module.entry.instructions if i.called_computations}
    C = CalledComputation
    assert calls == {
        "r": (C("to_apply", "add"),),
        "w": (C("condition", "cond"), C("body", "body")),
        "c1": (C("true_computation", "neg"), C("false_computation", "neg")),
        "c2": (C("branch_computations", "neg"),) * 3,
        "cc": (C("called_computations", "neg"), C("called_computations", "add")),
        "ss": (C("select", "ge"), C("scatter", "add")),
        "k": (C("to_apply", "neg"),),
    }
    assert module.fusion_computations == frozenset()


def test_control_predecessors():
    module = parse_hlo(hlo("""
        e {
          p = f32[] parameter(0)
          a = f32[] negate(p)
          b = f32[] abs(p)
          ROOT c = f32[] add(p, p), control-predecessors={a, %b}
        }
        """))
    by_name = module.entry.by_name
    assert by_name["c"].control_predecessors == ("a", "b")
    assert by_name["c"].operands == ("p", "p")
    assert by_name["a"].control_predecessors == ()


def test_constants_keep_their_literal():
    module = parse_hlo(hlo("""
        e {
          elided = f32[1024,1024] constant({...})
          neg_inf = f32[] constant(-inf)
          nested = f32[2,2] constant({ { 1, 2 }, { 3, 4 } })
          pair = (f32[], s32[]) constant((1.5, 2))
          flag = pred[] constant(true)
          ROOT t = tuple(elided, neg_inf, nested, pair, flag)
        }
        """))
    literals = {i.name: i.literal for i in module.entry.instructions}
    assert literals == {"elided": "{...}", "neg_inf": "-inf", "nested": "{ { 1, 2 }, { 3, 4 } }",
                        "pair": "(1.5, 2)", "flag": "true", "t": None}
    assert all(i.operands == () for i in module.entry.instructions[:-1])


def test_parameter_numbers():
    module = parse_hlo("e {\n  b = f32[] parameter(1)\n  a = f32[] parameter( 0 )\n  ROOT s = f32[] add(a, b)\n}\n")
    entry = module.entry
    assert [(i.name, i.parameter_number) for i in entry.instructions] == [("b", 1), ("a", 0), ("s", None)]
    assert [p.name for p in entry.parameters] == ["a", "b"]


def test_metadata_with_source_file_and_line():
    module = parse_hlo(hlo("""
        e {
          ROOT p = f32[] parameter(0), metadata={op_type="MatMul" op_name="model/dense/MatMul" source_file="/src/model.py" source_line=42}
        }
        """))
    metadata = module.entry.root.metadata
    assert metadata.op_type == "MatMul"
    assert metadata.op_name == "model/dense/MatMul"
    assert metadata.source == SourceLocation("/src/model.py", 42)
    assert str(metadata.source) == "/src/model.py:42"
    assert metadata.stack == ()
    assert metadata.fields == {"op_type": "MatMul", "op_name": "model/dense/MatMul", "source_file": "/src/model.py",
                               "source_line": "42"}


def test_no_metadata_is_none():
    assert parse_hlo("e {\n  ROOT p = f32[] parameter(0)\n}\n").entry.root.metadata is None


STACK_FRAMES = hlo("""
    HloModule jit_f

    FileNames
    1 "/src/main.py"
    2 "/src/model.py"

    FunctionNames
    1 "<module>"
    2 "loss"
    3 "dense"

    FileLocations
    1 {file_name_id=1 function_name_id=1 line=30 end_line=30 column=4 end_column=20}
    2 {file_name_id=2 function_name_id=2 line=12 end_line=12 column=11 end_column=30}
    3 {file_name_id=2 function_name_id=3 line=5 end_line=6 column=8 end_column=9}

    StackFrames
    1 {file_location_id=1 parent_frame_id=1}
    2 {file_location_id=2 parent_frame_id=2}
    3 {file_location_id=3 parent_frame_id=3}

    ENTRY main {
      p = f32[4] parameter(0), metadata={op_name="x"}
      ROOT n = f32[4] negate(p), metadata={op_name="jit(f)/neg" stack_frame_id=3}
    }
    """)


def test_stack_frame_id_resolves_through_the_tables():
    # XLA prints a frame's parent as the parent's id + 1 (1: no parent): frame 3's parent is 2, frame 2's is 1.
    module = parse_hlo(STACK_FRAMES)
    metadata = module.entry.root.metadata
    dense = SourceLocation("/src/model.py", 5, "dense", 8, 6, 9)
    assert metadata.source == dense
    assert metadata.stack == (dense, SourceLocation("/src/model.py", 12, "loss", 11, 12, 30),
                              SourceLocation("/src/main.py", 30, "<module>", 4, 30, 20))
    assert module.entry.by_name["p"].metadata.source is None
    frames = module.stack_frames
    assert frames.file_names == {1: "/src/main.py", 2: "/src/model.py"}
    assert frames.function_names == {1: "<module>", 2: "loss", 3: "dense"}
    assert frames.frames == {1: (1, 0), 2: (2, 1), 3: (3, 2)}
    assert frames.location(99) is None
    assert module.name == "jit_f" and module.entry_name == "main"


def test_stack_frames_of_a_real_jax_dump():
    """Frames of a dump XLA wrote, resolved by hand from its tables and checked against the parser."""
    text = (DATA / "jit_layer.cpu_after_optimizations.txt").read_text()
    tables: dict[str, dict[int, str]] = {}
    for table in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
        block = re.search(table + r"\n((?:\d+ .*\n)+)", text).group(1)
        tables[table] = dict((int(k), v) for k, v in (row.split(" ", 1) for row in block.splitlines()))

    def field(row: str, key: str) -> int:
        return int(re.search(key + r"=(\d+)", row).group(1))

    def expected_stack(frame: int) -> list[tuple[str, int, str]]:
        stack = []
        while frame:
            row = tables["StackFrames"][frame]
            location = tables["FileLocations"][field(row, "file_location_id")]
            stack.append((tables["FileNames"][field(location, "file_name_id")].strip('"'), field(location, "line"),
                          tables["FunctionNames"][field(location, "function_name_id")].strip('"')))
            frame = field(row, "parent_frame_id") - 1
        return stack

    module = parse_hlo(text)
    checked = 0
    for instruction in module.instructions():
        match = re.search(r"stack_frame_id=(\d+)", instruction.attributes.get("metadata", ""))
        if match is None:
            continue
        stack = [(s.file, s.line, s.function) for s in instruction.metadata.stack]
        assert stack == expected_stack(int(match.group(1))), instruction.name
        assert stack[-1][2] == "<module>"  # every stack reaches the script's top level
        checked += 1
    assert checked >= 10


def test_sharding_and_frontend_attributes():
    module = parse_hlo(hlo(r"""
        e {
          p = f32[8,8] parameter(0), sharding={devices=[2,4]<=[4,2]T(1,0) last_tile_dim_replicate}
          q = f32[8,8] parameter(1), sharding={replicated}, frontend_attributes={_xla_compute_type="host",quoted="say \"hi\""}
          ROOT t = (f32[8,8], f32[8,8]) tuple(p, q), sharding={{replicated}, {maximal device=0}}
        }
        """))
    by_name = module.entry.by_name
    assert by_name["p"].sharding == "{devices=[2,4]<=[4,2]T(1,0) last_tile_dim_replicate}"
    assert by_name["q"].sharding == "{replicated}"
    assert by_name["t"].sharding == "{{replicated}, {maximal device=0}}"
    assert by_name["q"].frontend_attributes == {"_xla_compute_type": "host", "quoted": 'say "hi"'}
    assert by_name["p"].frontend_attributes == {}
    assert by_name["p"].attributes == {"sharding": "{devices=[2,4]<=[4,2]T(1,0) last_tile_dim_replicate}"}


def test_attribute_values_with_spaces():
    module = parse_hlo(hlo("""
        HloModule m
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }
        ENTRY e {
          p = f32[4] parameter(0)
          ROOT r = f32[4] all-reduce(p), channel_id=2, replica_groups=mesh['axis_0'=4,'axis_1'=2] {'axis_0'}, use_global_device_ids=true, to_apply=add
        }
        """))
    assert module.entry.root.attributes == {
        "channel_id": "2", "replica_groups": "mesh['axis_0'=4,'axis_1'=2] {'axis_0'}",
        "use_global_device_ids": "true", "to_apply": "add"}


def test_async_shorthand_creates_the_wrapped_computation_as_xla_does():
    module = parse_hlo(hlo("""
        HloModule m
        ENTRY e {
          p = f32[8] parameter(0)
          q = s32[] parameter(1)
          start = ((f32[8], s32[]), f32[8], u32[]) custom-call-start(p, q), custom_call_target="foo", api_version=API_VERSION_TYPED_FFI
          update = ((f32[8], s32[]), f32[8], u32[]) custom-call-update(start)
          ROOT done = f32[8] custom-call-done(update)
        }
        """))
    assert [c.name for c in module.computations] == ["async_wrapped", "e"]
    wrapped = module.computation("async_wrapped")
    assert wrapped.synthetic and not wrapped.is_entry
    assert [(i.name, i.opcode, i.operands, i.parameter_number, str(i.shape), i.is_root)
            for i in wrapped.instructions] == [
        ("async_param", "parameter", (), 0, "f32[8]", False),
        ("async_param.1", "parameter", (), 1, "s32[]", False),
        ("custom-call", "custom-call", ("async_param", "async_param.1"), None, "f32[8]", True)]
    assert wrapped.root.custom_call_target == "foo"
    start = module.entry.by_name["start"]
    assert start.opcode == "custom-call-start"
    assert start.called_computations == (CalledComputation("async_wrapped", "async_wrapped"),)
    assert [i.opcode for i in module.entry.instructions] == [
        "parameter", "parameter", "custom-call-start", "custom-call-update", "custom-call-done"]
    assert module.instruction_count == 8


def test_async_shorthand_wrappers_get_unique_names_before_their_caller():
    module = parse_hlo(hlo("""
        HloModule m
        helper {
          p = f32[8] parameter(0)
          s = ((f32[8]), f32[8], u32[]) custom-call-start(p), custom_call_target="a"
          ROOT d = f32[8] custom-call-done(s)
        }
        ENTRY async_wrapped {
          p = f32[8] parameter(0)
          s = ((f32[8]), f32[8], u32[]) custom-call-start(p), custom_call_target="b"
          d = f32[8] custom-call-done(s)
          ROOT c = f32[8] call(d), to_apply=helper
        }
        """))
    # Each wrapper comes right before the computation using it, as in XLA; the text's own names are kept (XLA would
    # rename the entry instead) and the wrappers take names nothing else has.
    first, helper, second, entry = module.computations
    assert (helper.name, entry.name, module.entry_name) == ("helper", "async_wrapped", "async_wrapped")
    assert first.synthetic and second.synthetic
    assert len({first.name, second.name, "helper", "async_wrapped"}) == 4
    assert first.name.startswith("async_wrapped") and second.name.startswith("async_wrapped")
    assert first.root.custom_call_target == "a"
    assert second.root.custom_call_target == "b"
    assert helper.by_name["s"].called_computations == (CalledComputation("async_wrapped", first.name),)


def test_real_async_opcodes_are_not_shorthand():
    module = parse_hlo(hlo("""
        HloModule m
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }
        ENTRY e {
          p = f32[8] parameter(0)
          s = f32[8] all-reduce-start(p), replica_groups={}, to_apply=add
          d = f32[8] all-reduce-done(s)
          c = (f32[8], f32[8], u32[]) copy-start(d)
          ROOT e = f32[8] copy-done(c)
        }
        """))
    assert [c.name for c in module.computations] == ["add", "e"]
    assert module.entry.by_name["s"].called_computations == (CalledComputation("to_apply", "add"),)


# -- compact get-tuple-element operands (`%t#0`), written by XLA from jax 0.11 on -------------------------------------

COMPACT_WHILE = hlo("""
    HloModule m
    body {
      %arg_tuple.1 = (s32[], f32[4]{0}) parameter(0)
      %one = s32[] constant(1)
      %next = s32[] add(%arg_tuple.1#0, %one)
      %twice = f32[4]{0} add(%arg_tuple.1#1, %arg_tuple.1#1)
      ROOT %t = (s32[], f32[4]{0}) tuple(%next, %twice)
    }
    cond {
      %arg_tuple.2 = (s32[], f32[4]{0}) parameter(0)
      %ten = s32[] constant(10)
      ROOT %lt = pred[] compare(%arg_tuple.2#0, %ten), direction=LT
    }
    ENTRY e {
      %x = f32[4]{0} parameter(0)
      %zero = s32[] constant(0)
      %init = (s32[], f32[4]{0}) tuple(%zero, %x)
      %w = (s32[], f32[4]{0}) while(%init), condition=cond, body=body
      ROOT %r = f32[4]{0} negate(%w #1)
    }
    """)


def test_compact_tuple_operands_become_the_get_tuple_elements_xla_makes():
    module = parse_hlo(COMPACT_WHILE)
    body = module.computation("body")
    # One get-tuple-element per element and computation, just before its first user, named as XLA names it.
    assert [(i.name, i.opcode, i.operands) for i in body.instructions] == [
        ("arg_tuple.1", "parameter", ()), ("one", "constant", ()),
        ("arg_tuple.1_0", "get-tuple-element", ("arg_tuple.1",)), ("next", "add", ("arg_tuple.1_0", "one")),
        ("arg_tuple.1_1", "get-tuple-element", ("arg_tuple.1",)),
        ("twice", "add", ("arg_tuple.1_1", "arg_tuple.1_1")), ("t", "tuple", ("next", "twice"))]
    made = body.by_name["arg_tuple.1_1"]
    assert made.synthetic and made.attributes == {"index": "1"} and str(made.shape) == "f32[4]{0}"
    assert made.line == body.by_name["twice"].line == 6 and not made.is_root
    assert not any(i.synthetic for i in body.instructions if i.opcode != "get-tuple-element")
    assert [i.name for i in module.computation("cond").instructions] == ["arg_tuple.2", "ten", "arg_tuple.2_0", "lt"]
    entry = module.entry  # spaces around '#' are XLA's too: its lexer reads a name, '#', an integer
    assert [(i.name, i.operands, i.is_root) for i in entry.instructions[-2:]] == [
        ("w_1", ("w",), False), ("r", ("w_1",), True)]


def test_compact_form_parses_like_the_module_written_in_full():
    full = (COMPACT_WHILE.replace("  %next = s32[] add(%arg_tuple.1#0, %one)\n",
                                  "  %arg_tuple.1_0 = s32[] get-tuple-element(%arg_tuple.1), index=0\n"
                                  "  %next = s32[] add(%arg_tuple.1_0, %one)\n")
            .replace("  %twice = f32[4]{0} add(%arg_tuple.1#1, %arg_tuple.1#1)\n",
                     "  %arg_tuple.1_1 = f32[4]{0} get-tuple-element(%arg_tuple.1), index=1\n"
                     "  %twice = f32[4]{0} add(%arg_tuple.1_1, %arg_tuple.1_1)\n")
            .replace("  ROOT %lt = pred[] compare(%arg_tuple.2#0, %ten)",
                     "  %arg_tuple.2_0 = s32[] get-tuple-element(%arg_tuple.2), index=0\n"
                     "  ROOT %lt = pred[] compare(%arg_tuple.2_0, %ten)")
            .replace("  ROOT %r = f32[4]{0} negate(%w #1)",
                     "  %w_1 = f32[4]{0} get-tuple-element(%w), index=1\n  ROOT %r = f32[4]{0} negate(%w_1)"))
    assert "#" not in full

    def seen(module):
        return [[(i.name, i.opcode, i.operands, i.shape, dict(i.attributes), i.is_root) for i in c.instructions]
                for c in module.computations]

    compact, written = parse_hlo(COMPACT_WHILE), parse_hlo(full)
    assert seen(compact) == seen(written)
    # What the analyses see is the same too: kernels with their fingerprints and producers, and the graph.
    from xlainspect.analysis import census, to_networkx

    def kernels(module):
        return [(k, k.fingerprint, k.layout_fingerprint, k.producers) for k in census(module).kernels]

    assert kernels(compact) == kernels(written) and len(kernels(compact)) == 4
    assert sorted(to_networkx(compact).edges(keys=True)) == sorted(to_networkx(written).edges(keys=True))


def test_compact_tuple_operands_nest_repeat_and_avoid_taken_names():
    module = parse_hlo(hlo("""
        ENTRY e {
          p = (f32[4], (f32[2], s32[])) parameter(0)
          a = f32[2] negate(p#1#0)
          b = (f32[2], s32[]) tuple(p#1#0, p#1#1)
          c = (f32[2], s32[]) copy(p#1)
          p_1 = f32[3] parameter(1)
          ROOT t = (f32[2], f32[3], s32[]) tuple(a, p_1, b#1)
        }
        """))
    names = [(i.name, i.operands, i.attributes.get("index")) for i in module.entry.instructions]
    # `p_1` is the text's own, so the element of `p` at 1 takes `p_1.1`; the nested name follows the text, as XLA's.
    assert names == [
        ("p", (), None), ("p_1.1", ("p",), "1"), ("p_1_0", ("p_1.1",), "0"), ("a", ("p_1_0",), None),
        ("p_1_1", ("p_1.1",), "1"), ("b", ("p_1_0", "p_1_1"), None), ("c", ("p_1.1",), None),
        ("p_1", (), None), ("b_1", ("b",), "1"), ("t", ("a", "p_1", "b_1"), None)]
    assert str(module.entry.by_name["p_1.1"].shape) == "(f32[2], s32[])"


def test_a_name_defined_right_after_an_opening_brace_is_taken_too():
    # One-line computations: the taken name `p_0` follows `{` on the header's line, not a line's start.
    module = parse_hlo("HloModule m\nENTRY e { p = (f32[4], f32[4]) parameter(0) }\n".replace(
        "{ p =", "{ p_0 = f32[] constant(1)\n  p =") .replace(" }", "\n  ROOT n = f32[4] negate(p#0)\n}"))
    assert [i.name for i in module.entry.instructions] == ["p_0", "p", "p_0.1", "n"]
    assert module.entry.by_name["n"].operands == ("p_0.1",)


def test_compact_tuple_operands_in_branches_and_custom_calls():
    module = parse_hlo(hlo("""
        HloModule m
        branch_0 {
          arg_tuple.3 = (f32[4], f32[4]) parameter(0)
          ROOT n = f32[4] negate(arg_tuple.3#1)
        }
        branch_1 {
          arg_tuple.4 = (f32[4], f32[4]) parameter(0)
          ROOT s = f32[4] subtract(arg_tuple.4#0, arg_tuple.4#1)
        }
        ENTRY e {
          i = s32[] parameter(0)
          p = (f32[4], f32[4]) parameter(1)
          c = f32[4] conditional(i, p, p), branch_computations={branch_0, branch_1}
          r = (f32[4], f32[]) custom-call(c, p#0), custom_call_target="xla_ffi_python_cpu_callback"
          ROOT d = f32[] add(r#1, r#1)
        }
        """))
    assert module.computation("branch_0").root.operands == ("arg_tuple.3_1",)
    assert module.computation("branch_1").root.operands == ("arg_tuple.4_0", "arg_tuple.4_1")
    entry = module.entry
    assert entry.by_name["r"].operands == ("c", "p_0") and entry.by_name["d"].operands == ("r_1", "r_1")
    assert [i.name for i in entry.instructions] == ["i", "p", "c", "p_0", "r", "r_1", "d"]


COMPACT_ERRORS = [
    ("%x#", "x.hlo:3:29: expected a tuple index (a number) after '#', found ')'"),
    ("%x#a", "x.hlo:3:29: expected a tuple index (a number) after '#', found 'a)'"),
    ("%x#-1", "x.hlo:3:29: expected a tuple index (a number) after '#', found '-1)'"),
    ("%x#0#", "x.hlo:3:31: expected a tuple index (a number) after '#', found ')'"),
    ("%x#2", "x.hlo:3:26: operand 'x#2': tuple index 2 is out of range; 'x' has 2 elements ((f32[4], s32[]))"),
    ("%x#0#1", "x.hlo:3:26: operand 'x#0#1' takes element 1 of a tuple, but 'x#0' has shape f32[4]"),
    ("%y#0", "x.hlo:3:26: instruction 'n' uses operand 'y', which computation 'e' does not define"),
]


def compact_error_text(operand: str) -> str:
    return f"e {{\n  x = (f32[4], s32[]) parameter(0)\n  ROOT n = f32[4] negate({operand})\n}}\n"


@pytest.mark.parametrize("operand, message", COMPACT_ERRORS)
def test_malformed_compact_tuple_operands_are_one_line_errors(operand, message):
    assert parse_error(compact_error_text(operand), "x.hlo") == message


def test_the_valid_twin_of_the_malformed_compact_operands_parses():
    assert parse_hlo(compact_error_text("%x#0")).entry.root.operands == ("x_0",)


def test_compact_operand_used_before_its_tuple_is_defined_says_so():
    text = "e {\n  p = f32[4] parameter(0)\n  ROOT n = f32[4] negate(t#0)\n  t = (f32[4]) tuple(p)\n}\n"
    assert parse_error(text) == ("<string>:3:26: instruction 'n' uses operand 't' before its definition on line 4; "
                                 "XLA requires every instruction to be defined above its users: move 't' above 'n'")


def test_modules_separated_by_dashes_and_by_headers():
    text = hlo("""
        // RUN: test
        HloModule first
        ENTRY e {
          ROOT p = f32[] parameter(0)
        }

        // -----

        bare {
          ROOT q = s32[] parameter(0)
        }
        // ------------------- a rule in prose, not a separator
        // -----
        HloModule third
        ENTRY e {
          ROOT r = u8[] parameter(0)
        }
        HloModule fourth
        ENTRY e {
          ROOT s = pred[] parameter(0)
        }
        """)
    modules = parse_hlo_modules(text, "many.hlo")
    assert [(m.name, m.index, m.source) for m in modules] == [
        ("first", 0, "many.hlo"), ("module_bare", 1, "many.hlo"), ("third", 2, "many.hlo"),
        ("fourth", 3, "many.hlo")]
    assert [m.entry.root.line for m in modules] == [4, 10, 16, 20]


def test_read_hlo_reads_every_module_of_a_file(tmp_path):
    path = tmp_path / "two.hlo"
    path.write_text("a {\n  ROOT p = f32[] parameter(0)\n}\n// -----\nb {\n  ROOT q = f32[] parameter(0)\n}\n")
    modules = read_hlo(path)
    assert [(m.name, m.source) for m in modules] == [("module_a", str(path)), ("module_b", str(path))]


def test_instruction_lines_count_from_the_start_of_the_file():
    module = parse_hlo(hlo("""
        HloModule m

        ENTRY e {
          p = f32[] parameter(0)

          n = f32[]
              negate(p)
          ROOT t = (f32[]) tuple(
            n)
        }
        """))
    assert [(i.name, i.line) for i in module.entry.instructions] == [("p", 4), ("n", 6), ("t", 8)]


def test_instruction_lines_match_the_text_of_each_corpus_file(corpus_file):
    """Each instruction's line holds its definition; checked on the text itself, not through the parser."""
    lines = corpus_file.read_text().splitlines()
    checked = 0
    for module in read_hlo(corpus_file):
        for computation in module.computations:
            if computation.synthetic:
                continue
            for instruction in computation.instructions:
                definition = re.compile(r"(?:^|[\s%])" + re.escape(instruction.name) + r"\s*=")
                assert definition.search(lines[instruction.line - 1]), (instruction.name, instruction.line)
                checked += 1
    assert checked > 0


def test_deep_literal_parses_through_the_slow_path():
    literal = "{" * 14 + "1" + "}" * 14
    shape = "f32[" + ",".join(["1"] * 14) + "]"
    module = parse_hlo(f'e {{\n  ROOT c = {shape} constant({literal}), metadata={{op_name="c"}}\n}}\n')
    root = module.entry.root
    assert root.literal == literal
    assert root.shape.rank == 14
    assert root.metadata.op_name == "c"


def test_a_real_optimized_dump():
    module = parse_hlo((DATA / "jit_layer.cpu_after_optimizations.txt").read_text())
    assert module.name == "jit_layer"
    assert module.entry_name == "main.2_spmd"
    assert module.is_scheduled
    assert [c.name for c in module.computations] == [
        "add.clone", "region_0.1.clone", "fused_computation", "fused_computation.1", "region_0.1",
        "fused_computation.2", "fused_computation.3", "main.2_spmd"]
    assert module.fusion_computations == frozenset(
        {"fused_computation", "fused_computation.1", "fused_computation.2", "fused_computation.3"})
    entry = module.entry.by_name
    assert entry["ynn_fusion"].backend_fusion_kind == "__ynn_fusion"
    assert entry["ynn_fusion"].fusion_kind == "kCustom"
    assert entry["param.1"].sharding == "{devices=[2,1,4]<=[4,2]T(1,0) last_tile_dim_replicate}"
    assert entry["all-reduce.1"].attributes["replica_groups"] == "mesh['axis_0'=4,'axis_1'=1,'axis_2'=2] {'axis_0'}"
    assert entry["tuple.2"].is_root
    assert str(entry["tuple.2"].shape) == "(f32[2,4]{1,0}, f32[4]{0})"


# -- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("e {\n  p = f32[] parameter(0)\n", "x.hlo:1:3: unbalanced brackets: '{' is never closed"),
    ("e {\n  p f32[] parameter(0)\n}\n",
     "x.hlo:2:5: expected '=' after instruction name 'p', found 'f32[] parameter(0)'"),
    ("e {\n  p = f32[] parameter(0)\n  p = f32[] parameter(1)\n}\n",
     "x.hlo:3:3: instruction 'p' defined twice in computation 'e'"),
    ("a {\n  p = f32[] parameter(0)\n}\na {\n  q = f32[] parameter(0)\n}\n",
     "x.hlo:4:1: computation 'a' defined twice"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(q)\n}\n",
     "x.hlo:3:25: instruction 'n' uses operand 'q', which computation 'e' does not define"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] call(p), to_apply=missing\n}\n",
     "x.hlo:3:36: instruction 'n' calls computation 'missing' (to_apply=), which the module does not define"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p), control-predecessors={zz}\n}\n",
     "x.hlo:3:51: instruction 'n' names control predecessor 'zz', which computation 'e' does not define"),
    ("e {\n  p = f32[] parameter(x)\n}\n", "x.hlo:2:23: expected a parameter number in parameter(x)"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT c = f32[] custom-call(p), backend_config={{]\n}\n",
     "x.hlo:3:51: unbalanced brackets: found ']' where '}' closes the '{' at 3:50"),
    ("e {\n  p = f32[] parameter(0)\n}\n}\n", "x.hlo:4:1: unbalanced brackets: '}' closes nothing"),
    ("", "x.hlo:1:1: no HLO module or computation found"),
    ("  \n// only a comment\n", "x.hlo:1:1: no HLO module or computation found"),
    ("// -----\n// -----\n", "x.hlo:1:1: no HLO module or computation found"),
    ("HloModule m\n", "x.hlo:2:1: expected a computation after the module header"),
    ("HloModule , is_scheduled=true\ne {\n  ROOT p = f32[] parameter(0)\n}\n",
     "x.hlo:1:10: expected a module name after 'HloModule'"),
    ("e {\n}\n", "x.hlo:2:1: computation 'e' has no instructions"),
    ("e {\n  ROOT p = f32[] parameter(0)\n  ROOT q = f32[] parameter(1)\n}\n",
     "x.hlo:3:3: second ROOT in computation 'e' (first: 'p'); a computation has one root"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p), a=1, a=2\n}\n",
     "x.hlo:3:34: attribute 'a' given twice"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p),\n}\n",
     "x.hlo:4:1: expected an attribute 'name=value' after ','"),
    ("e {\n  p = f32[x] parameter(0)\n}\n", "x.hlo:2:11: expected a dimension size, '<=N' or '?', got 'x'"),
    ("e {\n  p = f32[2]{a} parameter(0)\n}\n", "x.hlo:2:14: expected dimension numbers in layout, got 'a'"),
    ("e {\n  p = parameter(0)\n}\n",
     "x.hlo:2:7: expected a result shape before opcode 'parameter'; XLA cannot infer it for parameter: write the "
     "shape before the opcode"),
    ("e {\n  ROOT t = tuple(q)\n  q = f32[] parameter(0)\n}\n",
     "x.hlo:2:18: instruction 't' uses operand 'q' before its definition on line 3; XLA requires every instruction "
     "to be defined above its users: move 'q' above 't'"),
    ("e (p: f32[]) {\n  ROOT p = f32[] parameter(0)\n}\n",
     "x.hlo:1:14: expected '-> shape {' after the parameter list of computation 'e'"),
    ("e ROOT p = f32[] parameter(0)\n", "x.hlo:1:3: expected '{' or a parameter list after computation name 'e', "
                                        "found 'ROOT p = f32[] param'"),
    ("e {\n  ROOT p = f32[] parameter(0)\n}\n= {\n}\n",
     "x.hlo:4:1: expected a computation 'name {' or 'ENTRY name {', found '= {'"),
    ("e {\n  ROOT p = f32[] parameter(0) \x00\n}\n",
     "x.hlo:2:31: expected an instruction 'name = shape opcode(...)' or '}', found '\\x00'"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(abs(p))\n}\n",
     "x.hlo:3:25: an instruction nested in an operand list is not supported; define it as its own instruction and "
     "use its name"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT n = f32[] negate(p q)\n}\n", "x.hlo:3:25: expected an operand name, "
                                                                        "found 'p q)'"),
    ("e {\n  p = f32[] parameter(0)\n  ROOT c = f32[] custom-call(p), custom_call_target=x\"abc\n}\n",
     "x.hlo:3:54: unterminated string literal; close it with a matching quote"),
    ("HloModule m\nFileNames\n1 \"a\"\nFileNames\n1 \"b\"\ne {\n  ROOT p = f32[] parameter(0)\n}\n",
     "x.hlo:4:1: FileNames table given twice"),
    ("e {\n  ROOT p = f32[] parameter(0)\n  n = = f32[] negate(p)\n}\n",
     "x.hlo:3:7: expected a shape and an opcode followed by '(', found '= f32[] negate(p)'"),
])
def test_error_messages(text, message):
    assert parse_error(text, "x.hlo") == message


def test_error_positions_count_lines_of_earlier_modules():
    text = ("a {\n  ROOT p = f32[] parameter(0)\n}\n// -----\n"
            "b {\n  ROOT q = f32[] parameter(0)\n  q = f32[] parameter(1)\n}\n")
    assert parse_error(text) == "<string>:7:3: instruction 'q' defined twice in computation 'b'"


def test_error_reports_a_second_entry_where_it_starts():
    # Expected: the position of the second `ENTRY` (line 4, column 1), where the fix goes.
    text = "ENTRY a {\n  ROOT p = f32[] parameter(0)\n}\nENTRY b {\n  ROOT q = f32[] parameter(0)\n}\n"
    assert parse_error(text) == "<string>:4:1: second ENTRY computation 'b'; a module has one entry"


def test_parse_hlo_wants_exactly_one_module():
    text = "a {\n  ROOT p = f32[] parameter(0)\n}\n// -----\nb {\n  ROOT q = f32[] parameter(0)\n}\n"
    with pytest.raises(HloParseError) as info:
        parse_hlo(text, "two.hlo")
    assert str(info.value) == ("two.hlo:1:1: expected one HLO module, found 2; use read_hlo() for files that hold "
                               "several")
    assert len(parse_hlo_modules(text)) == 2


def test_parse_error_is_an_xlainspect_error_with_fields():
    with pytest.raises(HloParseError) as info:
        parse_hlo("e {\n  p = f32[] parameter(0)\n  p = f32[] parameter(1)\n}\n", "f.hlo")
    error = info.value
    assert (error.path, error.line, error.column) == ("f.hlo", 3, 3)
    assert error.message == "instruction 'p' defined twice in computation 'e'"
    assert error.exit_code == 1


def test_read_hlo_reports_a_missing_path(tmp_path):
    path = tmp_path / "missing.hlo"
    with pytest.raises(InputError) as info:
        read_hlo(path)
    assert str(info.value) == f"{path}: no such file; give the path of an HLO text file"


def test_read_hlo_reports_a_directory(tmp_path):
    with pytest.raises(InputError) as info:
        read_hlo(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory; give an HLO text file"


def test_read_hlo_reports_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "binary.pb"
    path.write_bytes(b"HloModule m\n\xff\xfe\x00")
    with pytest.raises(InputError) as info:
        read_hlo(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 12); is this an HLO text dump?"


def test_read_hlo_reports_parse_errors_with_the_file_path(tmp_path):
    path = tmp_path / "bad.hlo"
    path.write_text("e {\n  p f32[] parameter(0)\n}\n")
    with pytest.raises(HloParseError) as info:
        read_hlo(path)
    assert str(info.value) == f"{path}:2:5: expected '=' after instruction name 'p', found 'f32[] parameter(0)'"


# -- valid HLO that must parse: XLA's parser accepts every text below (test_parse_oracle.py checks that) -----------


def _nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _nested_tuple(depth: int) -> str:
    return "(" * depth + "f32[]" + ")" * depth


VALID_HLO = {
    **{f"backend_config nested {depth} deep": (
        f'e {{\n  p = f32[] parameter(0)\n  ROOT c = f32[] custom-call(p), custom_call_target="x", '
        f"backend_config={_nested_json(depth)}\n}}\n") for depth in (12, 13, 20)},
    **{f"tuple shape nested {depth} deep": f"e {{\n  ROOT p = {_nested_tuple(depth)} parameter(0)\n}}\n"
       for depth in (11, 12, 13)},
    "module attribute nested 14 deep": (
        f"HloModule m, entry_computation_layout={{({_nested_tuple(14)})->{_nested_tuple(14)}}}\nENTRY e {{\n"
        f"  ROOT p = {_nested_tuple(14)} parameter(0)\n}}\n"),
    "string with a raw line break": (
        'e {\n  p = f32[] parameter(0)\n  ROOT c = f32[] custom-call(p), custom_call_target="a\nb"\n}\n'),
    "iota replica groups broken over lines": hlo("""
        HloModule m
        add {
          a = f32[] parameter(0)
          b = f32[] parameter(1)
          ROOT s = f32[] add(a, b)
        }
        ENTRY e {
          p = f32[8] parameter(0)
          ROOT r = f32[8] all-reduce(p), replica_groups=[1,8]<=
            [8], to_apply=add
        }
        """),
    "stack frame row without a space": STACK_FRAMES.replace("3 {file_location_id=3", "3{file_location_id=3"),
}


@pytest.mark.parametrize("depth", [12, 13, 20])
def test_attribute_value_nested_deeper_than_the_fast_pattern(depth):
    root = parse_hlo(VALID_HLO[f"backend_config nested {depth} deep"]).entry.root
    config = root.backend_config
    for _ in range(depth - 1):
        config = config["a"]
    assert config == {"a": 1}


@pytest.mark.parametrize("depth", [11, 12, 13])
def test_tuple_shape_nested_deeper_than_the_fast_pattern(depth):
    root = parse_hlo(VALID_HLO[f"tuple shape nested {depth} deep"]).entry.root
    assert str(root.shape) == _nested_tuple(depth)
    assert root.parameter_number == 0


def test_module_attribute_nested_deeper_than_the_fast_pattern():
    module = parse_hlo(VALID_HLO["module attribute nested 14 deep"])
    assert module.attributes == {"entry_computation_layout": f"{{({_nested_tuple(14)})->{_nested_tuple(14)}}}"}


def test_string_with_a_raw_line_break():
    # XLA's lexer takes any character but an unescaped quote inside a string, line breaks included.
    module = parse_hlo(VALID_HLO["string with a raw line break"])
    assert module.entry.root.custom_call_target == "a\nb"


def test_iota_replica_groups_broken_over_lines():
    root = parse_hlo(VALID_HLO["iota replica groups broken over lines"]).entry.root
    assert root.called_computations == (CalledComputation("to_apply", "add"),)
    assert re.sub(r"\s", "", root.attributes["replica_groups"]) == "[1,8]<=[8]"


def test_stack_frame_rows_without_a_space_before_the_brace():
    assert parse_hlo(VALID_HLO["stack frame row without a space"]).entry.root.metadata.source.function == "dense"


def test_unterminated_string_is_reported_at_its_quote():
    # XLA says "expects string" at the quote (3:53); "expected an attribute 'name=value'" at the name misleads.
    text = 'e {\n  p = f32[] parameter(0)\n  ROOT c = f32[] custom-call(p), custom_call_target="abc\n}\n'
    assert parse_error(text) == ("<string>:3:53: unterminated string literal; close it with a matching quote")


def test_text_that_is_not_hlo_is_named_as_such():
    with pytest.raises(HloParseError) as info:
        parse_hlo("# A README\n\nSome prose (with brackets [ that never close.\n", "README.md")
    assert str(info.value) == ("README.md:1:1: this does not look like HLO text (it starts with '# A README'); give "
                               "an HLO module: a dump's *after_optimizations.txt, or .compile().as_text()")


@pytest.mark.requires_jax
def test_stablehlo_is_named_and_the_way_to_optimized_hlo_given():
    import jax
    import jax.numpy as jnp

    lowered = jax.jit(lambda x: jnp.sin(x) * 2).lower(jnp.ones(3))
    with pytest.raises(HloParseError) as info:
        parse_hlo(lowered.as_text(), "f.mlir")
    assert str(info.value) == ("f.mlir:1:1: this is StableHLO (MLIR), not HLO text; give the optimized HLO: "
                               "jax.jit(f).lower(*args).compile().as_text(), or a dump's *after_optimizations.txt")
    assert parse_hlo(lowered.compile().as_text())  # what the message says to give parses
