"""Shapes and layouts as HLO text writes them: ``f32[8,<=4,?]{2,1,0:T(8,128)S(1)}``, ``(f32[], (s32[2]))``, ``token[]``.

Parsed shapes are cached by their text: a large module spells the same few hundred shapes hundreds of thousands of
times, and frozen values can be shared safely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

# Width in bits of each element type XLA prints. Sub-byte types pack in memory; `pred` takes a byte.
_ELEMENT_BITS: dict[str, int] = {
    "pred": 8,
    "s1": 1, "s2": 2, "s4": 4, "s8": 8, "s16": 16, "s32": 32, "s64": 64,
    "u1": 1, "u2": 2, "u4": 4, "u8": 8, "u16": 16, "u32": 32, "u64": 64,
    "f16": 16, "bf16": 16, "f32": 32, "f64": 64,
    "c64": 64, "c128": 128,
    "f4e2m1fn": 4, "f8e8m0fnu": 8, "f8e3m4": 8, "f8e4m3": 8, "f8e4m3fn": 8, "f8e4m3b11fnuz": 8, "f8e4m3fnuz": 8,
    "f8e5m2": 8, "f8e5m2fnuz": 8,
    "token": 0, "opaque": 0,
}


def element_bits(element_type: str) -> int | None:
    """Bits one element of ``element_type`` takes, or None for a type this table does not know (a newer XLA's)."""
    return _ELEMENT_BITS.get(element_type)


@dataclass(frozen=True)
class Layout:
    """A layout: dimension order plus the tiling and placement suffixes after ``:``.

    Attributes:
        minor_to_major: dimension numbers from fastest- to slowest-varying.
        tiles: each ``T(...)`` group, ``None`` standing for a ``*`` (combined) tile dimension.
        element_size_bits: the ``E(n)`` suffix (packed sub-byte elements), 0 when absent.
        memory_space: the ``S(n)`` suffix (e.g. 1 for GPU shared or TPU VMEM), 0 when absent.
        text: the layout exactly as written between the braces, so suffixes not modelled here are not lost.
    """

    minor_to_major: tuple[int, ...]
    tiles: tuple[tuple[int | None, ...], ...] = ()
    element_size_bits: int = 0
    memory_space: int = 0
    text: str = ""


@dataclass(frozen=True)
class Shape:
    """An array, tuple or token shape.

    Attributes:
        element_type: ``f32``, ``pred``, ``token``..., or ``tuple`` for tuples.
        dims: dimension sizes; the bound for a bounded-dynamic ``<=N`` dimension, None for an unbounded ``?`` one.
        dynamic: per dimension, whether it is dynamic (``<=N`` or ``?``).
        layout: the layout in braces, None when the text gave none.
        tuple_shapes: element shapes of a tuple, empty otherwise.
    """

    element_type: str
    dims: tuple[int | None, ...] = ()
    dynamic: tuple[bool, ...] = ()
    layout: Layout | None = None
    tuple_shapes: tuple[Shape, ...] = ()

    @property
    def is_tuple(self) -> bool:
        return self.element_type == "tuple"

    @property
    def rank(self) -> int:
        return len(self.dims)

    @cached_property
    def element_count(self) -> int | None:
        """Elements of an array shape (its bound when dynamic); None for tuples and unbounded dimensions."""
        if self.is_tuple or None in self.dims:
            return None
        count = 1
        for dim in self.dims:
            count *= dim  # type: ignore[operator]  # None excluded above
        return count

    @cached_property
    def byte_size(self) -> int | None:
        """Bytes the buffer(s) of this shape take, summing tuple elements; None if a size is unknown.

        Sub-byte element types are counted packed (two s4 per byte), rounded up, as XLA stores them on CPU and GPU.
        """
        if self.is_tuple:
            sizes = [element.byte_size for element in self.tuple_shapes]
            return None if None in sizes else sum(sizes)  # type: ignore[arg-type]
        bits = element_bits(self.element_type)
        count = self.element_count
        if bits is None or count is None:
            return None
        return (count * bits + 7) // 8

    def leaves(self) -> tuple[Shape, ...]:
        """The array and token shapes of this shape, tuples flattened depth-first."""
        if not self.is_tuple:
            return (self,)
        return tuple(leaf for element in self.tuple_shapes for leaf in element.leaves())

    def __str__(self) -> str:
        if self.is_tuple:
            return "(" + ", ".join(str(element) for element in self.tuple_shapes) + ")"
        dims = ",".join(_dim_text(size, dynamic) for size, dynamic in zip(self.dims, self.dynamic))
        layout = "" if self.layout is None else "{" + self.layout.text + "}"
        return f"{self.element_type}[{dims}]{layout}"


def _dim_text(size: int | None, dynamic: bool) -> str:
    if size is None:
        return "?"
    return f"<={size}" if dynamic else str(size)


class ShapeSyntaxError(ValueError):
    """Shape text that does not parse; the parser turns it into an HloParseError with a position."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


_ARRAY_RE = re.compile(r"([a-z][a-z0-9]*)\[([^\]]*)\](?:\{([^{}]*)\})?")
_DIM_RE = re.compile(r"\s*(?:(<=)\s*(\d+)|(\d+)|(\?))\s*$")
_LAYOUT_SUFFIX_RE = re.compile(r"([A-Z]+|#|\*)?\(([^()]*)\)")
_SEPARATOR_RE = re.compile(r"\s*(?:/\*.*?\*/\s*)*")  # whitespace and `/*index=5*/` comments between tuple elements

# Shapes by their text; the parser reads it directly in its inner loop.
SHAPE_CACHE: dict[str, Shape] = {}


def parse_shape(text: str) -> Shape:
    """Parses one shape, e.g. ``f32[2,3]{1,0}`` or ``(f32[], token[])``.

    Raises:
        ShapeSyntaxError: the text is not one complete shape; ``offset`` points at the problem.
    """
    shape = SHAPE_CACHE.get(text)
    if shape is None:
        shape, end = _parse_at(text, 0)
        end = _SEPARATOR_RE.match(text, end).end()
        if end != len(text):
            raise ShapeSyntaxError(end, f"unexpected {text[end:end + 10]!r} after shape")
        if len(SHAPE_CACHE) < 100_000:  # a bound, in case a pathological input spells millions of distinct shapes
            SHAPE_CACHE[text] = shape
    return shape


def _parse_at(text: str, pos: int) -> tuple[Shape, int]:
    pos = _SEPARATOR_RE.match(text, pos).end()
    if text.startswith("(", pos):
        return _parse_tuple(text, pos + 1)
    match = _ARRAY_RE.match(text, pos)
    if match is None:
        raise ShapeSyntaxError(pos, "expected a shape such as f32[2,3]{1,0} or a tuple (...)")
    element_type, dims_text, layout_text = match.groups()
    dims, dynamic = _parse_dims(dims_text, match.start(2))
    layout = None if layout_text is None else _parse_layout(layout_text, match.start(3))
    return Shape(element_type, dims, dynamic, layout), match.end()


def _parse_tuple(text: str, pos: int) -> tuple[Shape, int]:
    elements: list[Shape] = []
    pos = _SEPARATOR_RE.match(text, pos).end()
    if text.startswith(")", pos):
        return Shape("tuple"), pos + 1
    while True:
        element, pos = _parse_at(text, pos)
        elements.append(element)
        pos = _SEPARATOR_RE.match(text, pos).end()
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith(")", pos):
            return Shape("tuple", tuple_shapes=tuple(elements)), pos + 1
        else:
            raise ShapeSyntaxError(pos, "expected ',' or ')' in tuple shape")


def _parse_dims(text: str, offset: int) -> tuple[tuple[int | None, ...], tuple[bool, ...]]:
    if not text.strip():
        return (), ()
    dims: list[int | None] = []
    dynamic: list[bool] = []
    for part in text.split(","):
        match = _DIM_RE.match(part)
        if match is None:
            raise ShapeSyntaxError(offset, f"expected a dimension size, '<=N' or '?', got {part.strip()!r}")
        bounded, bound, static, unbounded = match.groups()
        if static is not None:
            dims.append(int(static))
            dynamic.append(False)
        else:
            dims.append(int(bound) if bounded else None)
            dynamic.append(True)
        offset += len(part) + 1
    return tuple(dims), tuple(dynamic)


def _parse_layout(text: str, offset: int) -> Layout:
    order_text, _, suffix = text.partition(":")
    try:
        minor_to_major = tuple(int(part) for part in order_text.split(",") if part.strip())
    except ValueError:
        raise ShapeSyntaxError(offset, f"expected dimension numbers in layout, got {order_text!r}") from None
    tiles: list[tuple[int | None, ...]] = []
    element_size_bits = memory_space = 0
    last_tag = ""
    suffix_offset = offset + len(order_text) + 1
    for match in _LAYOUT_SUFFIX_RE.finditer(suffix):
        tag, body = match.groups()
        tag = tag or last_tag  # T(8,128)(2,1): a bare group continues the previous tag
        last_tag = tag
        body_offset = suffix_offset + match.start(2)
        if tag == "T":
            dims: list[int | None] = []
            for part in body.split(","):
                dims.append(None if part.strip() == "*" else _int(part, body_offset))
                body_offset += len(part) + 1
            tiles.append(tuple(dims))
        elif tag == "E":
            element_size_bits = _int(body, body_offset)
        elif tag == "S":
            memory_space = _int(body, body_offset)
    return Layout(minor_to_major, tuple(tiles), element_size_bits, memory_space, text)


def _int(text: str, offset: int) -> int:
    try:
        return int(text)
    except ValueError:
        leading = len(text) - len(text.lstrip())
        raise ShapeSyntaxError(offset + leading, f"expected an integer in layout, got {text.strip()!r}") from None
