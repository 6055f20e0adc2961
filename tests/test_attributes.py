"""Tests for xlainspect.hlo.attributes: backend_config in every form XLA writes, key/value lists, names, strings."""

from __future__ import annotations

import textwrap

import pytest

from xlainspect.hlo.attributes import parse_backend_config, parse_called_names, parse_key_values, unescape, unquote

# -- backend_config -------------------------------------------------------------------------------------------------


def test_backend_config_as_json():
    text = '{"outer_dimension_partitions":[],"fusion_config":{"kind":"__ynn_fusion"}}'
    assert parse_backend_config(text) == {"outer_dimension_partitions": [], "fusion_config": {"kind": "__ynn_fusion"}}


def test_backend_config_as_json_with_false_and_empty_lists():
    text = '{"op_queue_id":0,"wait_on_operation_queues":[],"force_earliest_schedule":false}'
    assert parse_backend_config(text) == {"op_queue_id": 0, "wait_on_operation_queues": [],
                                          "force_earliest_schedule": False}


def test_backend_config_as_quoted_escaped_json():
    text = r'"{\"gemm_backend_config\":{\"alpha_real\":1,\"epilogue\":\"DEFAULT\",\"lhs_batch_dimensions\":[]}}"'
    assert parse_backend_config(text) == {"gemm_backend_config": {"alpha_real": 1, "epilogue": "DEFAULT",
                                                                  "lhs_batch_dimensions": []}}


def test_backend_config_as_quoted_relaxed_json():
    text = r'"{\"fusion_backend_config\": {kind: \"__triton_nested_gemm_fusion\", num_warps: \"4\"}}"'
    assert parse_backend_config(text) == {"fusion_backend_config": {"kind": "__triton_nested_gemm_fusion",
                                                                    "num_warps": "4"}}


def test_backend_config_as_relaxed_json_over_lines():
    text = textwrap.dedent("""\
        {
          fusion_backend_config: {
            kind: "__triton_gemm",
            triton_gemm_config: {block_m: 16, block_n: 32, split_k: 1, is_tma_allowed: false,},
            output_tiles: [{sizes: [16,16]}]
          }
        }""")
    assert parse_backend_config(text) == {"fusion_backend_config": {
        "kind": "__triton_gemm",
        "triton_gemm_config": {"block_m": 16, "block_n": 32, "split_k": 1, "is_tma_allowed": False},
        "output_tiles": [{"sizes": [16, 16]}]}}


def test_backend_config_with_bare_enum_words():
    assert parse_backend_config("{kind: kLoop, fast: true, none: null}") == {"kind": "kLoop", "fast": True,
                                                                            "none": None}


def test_backend_config_keeps_colons_inside_strings():
    assert parse_backend_config('{"x": "a:b", y: c}') == {"x": "a:b", "y": "c"}


def test_backend_config_as_an_mlir_dict():
    assert parse_backend_config("{index = 0 : ui64}") == {"index": 0}
    assert parse_backend_config('{index = 1 : i64, name = "x", scale = 1.5 : f32, flag = true}') == {
        "index": 1, "name": "x", "scale": 1.5, "flag": True}


@pytest.mark.parametrize("text, expected", [
    ("plain-string", "plain-string"),
    ('"a quoted string"', "a quoted string"),
    ('""', ""),
    ("{not json at all", "{not json at all"),
    ('"{\\"unterminated\\": "', '{"unterminated": '),
])
def test_backend_config_that_is_not_json_comes_back_as_text(text, expected):
    assert parse_backend_config(text) == expected


def test_backend_config_empty_object():
    assert parse_backend_config("{}") == {}
    assert parse_backend_config('"{}"') == {}


# -- key/value lists ------------------------------------------------------------------------------------------------


def test_metadata_style_key_values():
    text = r'{op_type="Add" op_name="jit(f)/add \"x\"" source_file="/a b/c.py" source_line=3 stack_frame_id=7}'
    assert parse_key_values(text) == {"op_type": "Add", "op_name": 'jit(f)/add "x"', "source_file": "/a b/c.py",
                                      "source_line": "3", "stack_frame_id": "7"}


def test_frontend_attribute_style_key_values():
    assert parse_key_values('{_xla_compute_type="host",_xla_stream_annotation="1", x=y}') == {
        "_xla_compute_type": "host", "_xla_stream_annotation": "1", "x": "y"}


def test_key_values_without_braces_and_empty():
    assert parse_key_values("a=1 b=\"two\"") == {"a": "1", "b": "two"}
    assert parse_key_values("{}") == {}


def test_stack_frame_table_rows_are_key_values():
    assert parse_key_values("{file_name_id=1 function_name_id=5 line=486 end_line=486 column=30 end_column=51}") == {
        "file_name_id": "1", "function_name_id": "5", "line": "486", "end_line": "486", "column": "30",
        "end_column": "51"}


# -- computation names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, names", [
    ("%body", ("body",)),
    ("body.1-x", ("body.1-x",)),
    ("{%a, %b.1}", ("a", "b.1")),
    ("{a,b}", ("a", "b")),
    ("{}", ()),
])
def test_called_names(text, names):
    assert parse_called_names(text) == names


# -- strings --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ('"plain"', "plain"),
    (r'"a\nb"', "a\nb"),
    (r'"say \"hi\""', 'say "hi"'),
    (r'"back\\slash"', "back\\slash"),
    (r'"\303\251t\303\251"', "été"),  # octal escapes of UTF-8 bytes, as XLA's CEscape writes non-ASCII text
    ("'single'", "single"),
    ("bare", "bare"),
    ('"', '"'),
])
def test_unquote(text, expected):
    assert unquote(text) == expected


def test_unescape_leaves_text_without_backslashes_alone():
    text = "été/jit(f)"
    assert unescape(text) is text


@pytest.mark.parametrize("escaped,plain", [
    (r'say \"hi\"', 'say "hi"'), (r"back\\slash", "back\\slash"), (r"\x41\x42", "AB"), (r"caf\xc3\xa9", "café"),
    (r"\303\251t\303\251", "été"), (r"tab\tnew\nline", "tab\tnew\nline"), (r"\m\q", "mq"), ("plain", "plain"),
])
def test_unescape_reads_c_escapes_and_warns_about_none(escaped, plain):
    # An unknown escape (\m) once made Python's codec warn, which -W error turned into a crash (found by fuzzing).
    import warnings

    from xlainspect.hlo.attributes import unescape

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unescape(escaped) == plain
