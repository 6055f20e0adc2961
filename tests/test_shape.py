"""Tests for xlainspect.hlo.shape: array, tuple and token shapes, dynamic dimensions, layouts, sizes, printing."""

from __future__ import annotations

import pytest

from xlainspect import Layout, Shape, parse_shape
from xlainspect.hlo.shape import ShapeSyntaxError, element_bits


def test_scalar_and_array_shapes():
    assert parse_shape("f32[]") == Shape("f32")
    assert parse_shape("s8[2,3]") == Shape("s8", (2, 3), (False, False))
    shape = parse_shape("bf16[4,8]{1,0}")
    assert (shape.element_type, shape.dims, shape.rank, shape.is_tuple) == ("bf16", (4, 8), 2, False)
    assert shape.layout == Layout((1, 0), text="1,0")


def test_spaces_inside_dimensions():
    assert parse_shape("f32[1, 4]") == Shape("f32", (1, 4), (False, False))


def test_bounded_and_unbounded_dynamic_dimensions():
    shape = parse_shape("f32[8,<=4,?]")
    assert shape.dims == (8, 4, None)
    assert shape.dynamic == (False, True, True)
    assert shape.element_count is None  # an unbounded dimension has no size
    bounded = parse_shape("f32[<=4,3]")
    assert bounded.element_count == 12  # a bounded dimension counts at its bound
    assert bounded.byte_size == 48


def test_layout_with_tiles_memory_space_and_element_size():
    shape = parse_shape("f32[8,<=4,?]{2,1,0:T(8,128)(2,1)S(1)}")
    assert shape.layout == Layout(minor_to_major=(2, 1, 0), tiles=((8, 128), (2, 1)), element_size_bits=0,
                                  memory_space=1, text="2,1,0:T(8,128)(2,1)S(1)")
    packed = parse_shape("s4[16]{0:E(4)}")
    assert packed.layout.element_size_bits == 4
    assert packed.layout.tiles == ()


def test_layout_with_only_tiles_and_combined_tile_dimensions():
    assert parse_shape("f32[128]{:T(128)}").layout == Layout((), ((128,),), text=":T(128)")
    assert parse_shape("f32[2,256]{1,0:T(2,*)}").layout.tiles == ((2, None),)
    assert parse_shape("f32[4]{}").layout == Layout((), text="")


def test_layout_suffixes_not_modelled_are_kept_in_the_text():
    shape = parse_shape("f32[2]{0:T(8)L(4)}")
    assert shape.layout.tiles == ((8,),)
    assert shape.layout.text == "0:T(8)L(4)"
    assert str(shape) == "f32[2]{0:T(8)L(4)}"


def test_nested_tuples_tokens_and_the_empty_tuple():
    shape = parse_shape("(f32[], (s32[2]{0}, token[]), ())")
    assert shape.is_tuple
    assert shape.element_type == "tuple"
    assert shape.tuple_shapes == (
        Shape("f32"),
        Shape("tuple", tuple_shapes=(Shape("s32", (2,), (False,), Layout((0,), text="0")), Shape("token"))),
        Shape("tuple"),
    )
    assert [str(leaf) for leaf in shape.leaves()] == ["f32[]", "s32[2]{0}", "token[]"]
    assert shape.element_count is None


def test_index_comments_between_tuple_elements():
    assert parse_shape("(f32[], /*index=1*/s32[])") == parse_shape("(f32[], s32[])")


@pytest.mark.parametrize("text, size", [
    ("f32[2,3]", 24),
    ("f64[]", 8),
    ("pred[3]", 3),  # a byte per pred
    ("c64[2]", 16),
    ("c128[2]", 32),
    ("s4[3]", 2),  # 12 bits, rounded up to whole bytes
    ("u2[5]", 2),
    ("s1[9]", 2),
    ("f4e2m1fn[3]", 2),
    ("f8e4m3fn[7]", 7),
    ("s4[16]{0:E(4)}", 8),
    ("token[]", 0),
    ("(f32[2], (s8[3], pred[]))", 12),
    ("()", 0),
])
def test_byte_size(text, size):
    assert parse_shape(text).byte_size == size


@pytest.mark.parametrize("text", ["f32[?]", "(f32[2], f32[?])", "f99[2]"])
def test_byte_size_is_none_when_unknown(text):
    assert parse_shape(text).byte_size is None


def test_element_bits():
    assert (element_bits("bf16"), element_bits("s4"), element_bits("pred"), element_bits("token")) == (16, 4, 8, 0)
    assert element_bits("f99") is None


@pytest.mark.parametrize("text", [
    "f32[]", "f32[2,3]{1,0}", "f32[8,<=4,?]{2,1,0:T(8,128)(2,1)S(1)}", "s4[16]{0:E(4)}", "f32[128]{:T(128)}",
    "(f32[], (s32[2]{0}, token[]), ())", "()", "token[]", "f8e5m2[4]{0}", "bf16[8,128]{1,0:T(8,128)(2,1)}",
])
def test_str_round_trips(text):
    shape = parse_shape(text)
    assert str(shape) == text
    assert parse_shape(str(shape)) == shape


def test_str_normalizes_spacing():
    assert str(parse_shape("f32[1, 4]")) == "f32[1,4]"
    assert str(parse_shape("(f32[],/*index=1*/s32[])")) == "(f32[], s32[])"


def test_parsed_shapes_are_shared():
    assert parse_shape("f32[17,19]{1,0}") is parse_shape("f32[17,19]{1,0}")


@pytest.mark.parametrize("text, offset, message", [
    ("hello", 0, "expected a shape such as f32[2,3]{1,0} or a tuple (...)"),
    ("", 0, "expected a shape such as f32[2,3]{1,0} or a tuple (...)"),
    ("F32[2]", 0, "expected a shape such as f32[2,3]{1,0} or a tuple (...)"),
    ("f32[] xyz", 6, "unexpected 'xyz' after shape"),
    ("(f32[] s32[])", 7, "expected ',' or ')' in tuple shape"),
    ("(f32[]", 6, "expected ',' or ')' in tuple shape"),
    ("f32[2,x]", 6, "expected a dimension size, '<=N' or '?', got 'x'"),
    ("f32[-1]", 4, "expected a dimension size, '<=N' or '?', got '-1'"),
    ("f32[2]{a,0}", 7, "expected dimension numbers in layout, got 'a,0'"),
    ("f32[2]{0:T(x)}", 11, "expected an integer in layout, got 'x'"),
    ("f32[2]{0:E(four)}", 11, "expected an integer in layout, got 'four'"),
])
def test_syntax_errors_point_at_the_problem(text, offset, message):
    with pytest.raises(ShapeSyntaxError) as info:
        parse_shape(text)
    assert (info.value.offset, info.value.message) == (offset, message)
    assert str(info.value) == message
