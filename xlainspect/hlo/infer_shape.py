"""Result shapes of instructions written without one, as XLA's parser infers them.

XLA's parser lets the text leave out an instruction's shape where XLA's ``ShapeInference`` can work it out (its
``CanInferShape``): XLA's own test files write ``ROOT out = reduce-window(...)`` and ``t = tuple(a, b)``. This module
infers the shape for most of those opcodes, following XLA's rules (checked against jaxlib's parser in
``tests/test_parse_strict.py``), and otherwise says plainly whether XLA needs the shape written (``slice``,
``reshape``...) or only xlainspect does not infer it (``convolution``, ``gather``...).

Inferred shapes carry no layout, except where the result is an operand's shape unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from xlainspect.hlo.attributes import parse_called_names
from xlainspect.hlo.model import Computation
from xlainspect.hlo.opcodes import ELEMENTWISE_BINARY, ELEMENTWISE_UNARY, XLA_REQUIRES_SHAPE
from xlainspect.hlo.shape import Shape, element_bits


class CannotInfer(Exception):
    """The result shape cannot be inferred; ``message`` says why and what to write. The parser adds the position."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def infer_shape(opcode: str, operands: Sequence[Shape], attributes: Mapping[str, str],
                computations: Mapping[str, Computation]) -> Shape:
    """The shape XLA gives an instruction written without one.

    Args:
        opcode: the opcode as the text spells it.
        operands: the operands' shapes, in order.
        attributes: the instruction's attributes as written.
        computations: the computations defined so far, for the result of ``call``, ``map``, ``conditional``.

    Raises:
        CannotInfer: XLA requires the shape for this opcode, xlainspect does not infer it, or the operands do not
            fit the opcode.
    """
    rule = _RULES.get(opcode)
    if rule is None:
        if opcode in ELEMENTWISE_UNARY:
            rule = _unary
        elif opcode in ELEMENTWISE_BINARY:
            rule = _binary
        elif opcode in XLA_REQUIRES_SHAPE:
            raise CannotInfer(f"expected a result shape before opcode {opcode!r}; XLA cannot infer it for "
                              f"{opcode}: write the shape before the opcode")
        else:
            raise CannotInfer(f"expected a result shape before opcode {opcode!r}; xlainspect does not infer it for "
                              f"{opcode} (XLA does): write the shape before the opcode")
    try:
        return rule(opcode, operands, attributes, computations)
    except (ValueError, IndexError, KeyError) as e:  # malformed attribute values
        raise CannotInfer(f"cannot infer the result shape of {opcode}: {_reason(e)}; write the shape before the "
                          "opcode") from None
    except _NotAbove as e:  # not a shape problem: the call itself breaks XLA's rule
        raise CannotInfer(f"{opcode} calls computation {e.name!r} ({e.role}=), which is not defined above it; XLA "
                          f"requires a computation to be defined above its callers: move {e.name!r} up") from None


class _NotAbove(Exception):
    """A called computation that is not defined above its caller."""

    def __init__(self, name: str, role: str) -> None:
        super().__init__(name, role)
        self.name = name
        self.role = role


class _Unfit(ValueError):
    """Operands or attributes that do not fit the opcode, in words."""


def _reason(error: Exception) -> str:
    if isinstance(error, _Unfit):
        return str(error)
    if isinstance(error, KeyError):
        return f"attribute {error.args[0]} is missing"
    return "its attributes are malformed"


# -- attribute values ---------------------------------------------------------------------------------------------

_INT_LIST_RE = re.compile(r"\s*\{\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\}\s*")


def _ints(text: str) -> tuple[int, ...]:
    """``{1,0,2}`` as integers."""
    match = _INT_LIST_RE.fullmatch(text)
    if match is None:
        raise _Unfit(f"expected a list of integers like {{0,1}}, got {text!r}")
    return tuple(int(part) for part in match.group(1).split(",")) if match.group(1) else ()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Unfit(f"expected an integer, got {text!r}") from None


def _window(text: str, rank: int) -> dict[str, list[int]]:
    """``{size=2x2 stride=1x2 pad=0_1x1_1 lhs_dilate=.. rhs_dilate=..}`` as per-dimension lists (pads as lo, hi)."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise _Unfit(f"expected a window {{size=...}}, got {text!r}")
    window: dict[str, list[int]] = {}
    for field in inner[1:-1].split():
        key, _, value = field.partition("=")
        parts = value.split("x") if value else []
        if key == "pad":
            pads = [part.split("_") for part in parts]
            if any(len(pad) != 2 for pad in pads):
                raise _Unfit(f"expected pad=lo_hi per dimension, got {value!r}")
            window["pad_lo"] = [int(lo) for lo, _ in pads]
            window["pad_hi"] = [int(hi) for _, hi in pads]
        elif key in ("size", "stride", "lhs_dilate", "rhs_dilate"):
            window[key] = [int(part) for part in parts]
    defaults = {"size": None, "stride": 1, "pad_lo": 0, "pad_hi": 0, "lhs_dilate": 1, "rhs_dilate": 1}
    for key, default in defaults.items():
        if key not in window:
            if default is None:
                raise _Unfit("the window has no size=")
            window[key] = [default] * rank
        elif len(window[key]) != rank:
            raise _Unfit(f"window {key} has {len(window[key])} dimensions, the operand {rank}")
    return window


def _padding(text: str, rank: int) -> list[tuple[int, int, int]]:
    """``0_0x1_2_3``: low, high and interior padding per dimension."""
    pads = []
    for part in text.strip().split("x") if text.strip() else []:
        numbers = [int(number) for number in part.split("_")]
        if len(numbers) not in (2, 3):
            raise _Unfit(f"expected padding lo_hi or lo_hi_interior per dimension, got {part!r}")
        pads.append((numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else 0))
    if len(pads) != rank:
        raise _Unfit(f"padding has {len(pads)} dimensions, the operand {rank}")
    return pads


# -- shapes ---------------------------------------------------------------------------------------------------------

_COMPONENT = {"c64": "f32", "c128": "f64"}
_COMPLEX = {"f32": "c64", "f64": "c128"}


def _array(shape: Shape, what: str = "operand") -> Shape:
    if shape.is_tuple:
        raise _Unfit(f"the {what} is a tuple {shape}, where an array is expected")
    return shape


def _make(element_type: str, dims: Sequence[int | None], dynamic: Sequence[bool]) -> Shape:
    return Shape(element_type, tuple(dims), tuple(dynamic))


def _static(shape: Shape, dimension: int) -> int:
    size = shape.dims[dimension]
    if size is None:
        raise _Unfit(f"dimension {dimension} of {shape} is unbounded")
    return size


def _count(shapes: Sequence[Shape], expected: int | tuple[int, ...]) -> None:
    allowed = (expected,) if isinstance(expected, int) else expected
    if len(shapes) not in allowed:
        raise _Unfit(f"it takes {' or '.join(map(str, allowed))} operands, not {len(shapes)}")


def _dimensions(attributes: Mapping[str, str], rank: int, key: str = "dimensions") -> tuple[int, ...]:
    dimensions = _ints(attributes[key])
    if any(not 0 <= d < rank for d in dimensions) or len(set(dimensions)) != len(dimensions):
        raise _Unfit(f"{key}={attributes[key]} does not fit an operand of rank {rank}")
    return dimensions


def _called_root(attributes: Mapping[str, str], role: str, computations: Mapping[str, Computation]) -> Shape:
    names = parse_called_names(attributes[role])
    if not names:
        raise _Unfit(f"{role}= names no computation")
    computation = computations.get(names[0])
    if computation is None:
        raise _NotAbove(names[0], role)
    return computation.root.shape


# -- the rules, one per opcode or family -------------------------------------------------------------------------

Rule = Callable[[str, Sequence[Shape], Mapping[str, str], Mapping[str, Computation]], Shape]


def _unary(opcode, shapes, attributes, computations):
    _count(shapes, 1)
    shape = _array(shapes[0])
    if opcode == "is-finite":
        return _make("pred", shape.dims, shape.dynamic)
    if opcode in ("abs", "real", "imag") and shape.element_type in _COMPONENT:
        return _make(_COMPONENT[shape.element_type], shape.dims, shape.dynamic)
    return shape


def _broadcast_operands(shapes: Sequence[Shape]) -> Shape:
    """The operand whose dimensions the result takes: XLA lets a scalar stand beside an array of any rank."""
    shapes = [_array(shape) for shape in shapes]
    types = {shape.element_type for shape in shapes}
    if len(types) > 1:
        raise _Unfit(f"its operands have different element types ({', '.join(sorted(types))})")
    arrays = [shape for shape in shapes if shape.rank > 0]
    if any(shape.dims != arrays[0].dims for shape in arrays[1:]):
        raise _Unfit(f"its operands' dimensions differ ({', '.join(str(shape) for shape in shapes)})")
    return arrays[0] if arrays else shapes[0]


def _binary(opcode, shapes, attributes, computations):
    _count(shapes, 2)
    shape = _broadcast_operands(shapes)
    if opcode == "compare":
        return _make("pred", shape.dims, shape.dynamic)
    if opcode == "complex":
        if shape.element_type not in _COMPLEX:
            raise _Unfit(f"complex takes f32 or f64 operands, not {shape.element_type}")
        return _make(_COMPLEX[shape.element_type], shape.dims, shape.dynamic)
    return shape


def _select(opcode, shapes, attributes, computations):
    _count(shapes, 3)
    on_true, on_false = shapes[1], shapes[2]
    if (on_true.dims, on_true.element_type) != (on_false.dims, on_false.element_type):
        raise _Unfit(f"its two choices differ ({on_true} and {on_false})")
    return on_true


def _clamp(opcode, shapes, attributes, computations):
    _count(shapes, 3)
    _broadcast_operands(shapes)
    return _array(shapes[1])


def _tuple(opcode, shapes, attributes, computations):
    return Shape("tuple", tuple_shapes=tuple(shapes))


def _get_tuple_element(opcode, shapes, attributes, computations):
    _count(shapes, 1)
    if not shapes[0].is_tuple:
        raise _Unfit(f"its operand is not a tuple but {shapes[0]}")
    index = _int(attributes["index"])
    if not 0 <= index < len(shapes[0].tuple_shapes):
        raise _Unfit(f"index={index} is outside the operand's {len(shapes[0].tuple_shapes)} elements")
    return shapes[0].tuple_shapes[index]


def _reduce(opcode, shapes, attributes, computations):
    if not shapes or len(shapes) % 2:
        raise _Unfit(f"it takes inputs and as many init values, not {len(shapes)} operands")
    count = len(shapes) // 2
    inputs = [_array(shape, "input") for shape in shapes[:count]]
    if any(shape.dims != inputs[0].dims for shape in inputs[1:]):
        raise _Unfit(f"its inputs' dimensions differ ({', '.join(str(shape) for shape in inputs)})")
    reduced = set(_dimensions(attributes, inputs[0].rank))
    kept = [d for d in range(inputs[0].rank) if d not in reduced]
    results = [_make(init.element_type, [inputs[0].dims[d] for d in kept], [inputs[0].dynamic[d] for d in kept])
               for init in shapes[count:]]
    return results[0] if count == 1 else Shape("tuple", tuple_shapes=tuple(results))


def _reduce_window(opcode, shapes, attributes, computations):
    if len(shapes) != 2:  # XLA's parser, too, infers only the single-input form
        raise _Unfit("xlainspect infers it only for one input and one init value, as XLA does")
    shape, init = _array(shapes[0]), shapes[1]
    window = _window(attributes["window"], shape.rank)
    dims = []
    for d in range(shape.rank):
        size = _static(shape, d)
        dilated = (size - 1) * window["lhs_dilate"][d] + 1 if size else 0
        padded = dilated + window["pad_lo"][d] + window["pad_hi"][d]
        extent = (window["size"][d] - 1) * window["rhs_dilate"][d] + 1
        stride = window["stride"][d]
        if stride <= 0:
            raise _Unfit(f"window stride {stride} is not positive")
        dims.append(0 if padded < extent else (padded - extent) // stride + 1)
    return _make(init.element_type, dims, shape.dynamic)


def _transpose(opcode, shapes, attributes, computations):
    _count(shapes, 1)
    shape = _array(shapes[0])
    permutation = _dimensions(attributes, shape.rank)
    if len(permutation) != shape.rank:
        raise _Unfit(f"dimensions={attributes['dimensions']} is not a permutation of rank {shape.rank}")
    return _make(shape.element_type, [shape.dims[d] for d in permutation], [shape.dynamic[d] for d in permutation])


def _dot_type(lhs: Shape, rhs: Shape) -> str:
    if lhs.element_type == rhs.element_type:
        return lhs.element_type
    floats = [t for t in (lhs.element_type, rhs.element_type) if t.startswith(("f", "bf"))]
    bits = [element_bits(t) or 0 for t in (lhs.element_type, rhs.element_type)]
    if len(floats) == 2 and bits[0] != bits[1]:  # XLA takes the wider of two float types
        return lhs.element_type if bits[0] > bits[1] else rhs.element_type
    raise _Unfit(f"its operands' element types {lhs.element_type} and {rhs.element_type} differ")


def _dot(opcode, shapes, attributes, computations):
    if "sparsity" in attributes or len(shapes) != 2:
        raise _Unfit("xlainspect infers it only for a dense dot of two operands")
    lhs, rhs = _array(shapes[0], "left operand"), _array(shapes[1], "right operand")
    dims = {key: _dimensions(attributes, shape.rank, key) if key in attributes else ()
            for key, shape in (("lhs_batch_dims", lhs), ("lhs_contracting_dims", lhs),
                               ("rhs_batch_dims", rhs), ("rhs_contracting_dims", rhs))}
    for kind in ("batch", "contracting"):
        left, right = dims[f"lhs_{kind}_dims"], dims[f"rhs_{kind}_dims"]
        if len(left) != len(right) or any(lhs.dims[a] != rhs.dims[b] for a, b in zip(left, right, strict=True)):
            raise _Unfit(f"its {kind} dimensions do not match ({lhs} {left}, {rhs} {right})")
    lhs_free = [d for d in range(lhs.rank) if d not in dims["lhs_batch_dims"] + dims["lhs_contracting_dims"]]
    rhs_free = [d for d in range(rhs.rank) if d not in dims["rhs_batch_dims"] + dims["rhs_contracting_dims"]]
    picks = ([(lhs, d) for d in dims["lhs_batch_dims"]] + [(lhs, d) for d in lhs_free]
             + [(rhs, d) for d in rhs_free])
    return _make(_dot_type(lhs, rhs), [s.dims[d] for s, d in picks], [s.dynamic[d] for s, d in picks])


def _concatenate(opcode, shapes, attributes, computations):
    if not shapes:
        raise _Unfit("it has no operands")
    arrays = [_array(shape) for shape in shapes]
    axes = _dimensions(attributes, arrays[0].rank)
    if len(axes) != 1:
        raise _Unfit(f"dimensions={attributes['dimensions']} must name one dimension")
    axis = axes[0]
    first = arrays[0]
    for shape in arrays[1:]:
        if shape.element_type != first.element_type or shape.rank != first.rank or any(
                shape.dims[d] != first.dims[d] for d in range(first.rank) if d != axis):
            raise _Unfit(f"its operands {first} and {shape} do not fit together along dimension {axis}")
    dims = list(first.dims)
    dims[axis] = sum(_static(shape, axis) for shape in arrays)
    dynamic = list(first.dynamic)
    dynamic[axis] = any(shape.dynamic[axis] for shape in arrays)
    return _make(first.element_type, dims, dynamic)


def _broadcast(opcode, shapes, attributes, computations):
    # Without a result shape XLA reads `dimensions` as the sizes of new leading dimensions (the old client-side
    # Broadcast): `broadcast(f32[7] v), dimensions={2}` is f32[2,7]. Checked against jaxlib's parser.
    _count(shapes, 1)
    shape = _array(shapes[0])
    sizes = _ints(attributes["dimensions"])
    if any(size < 0 for size in sizes):
        raise _Unfit(f"dimensions={attributes['dimensions']} holds a negative size")
    return _make(shape.element_type, sizes + shape.dims, (False,) * len(sizes) + shape.dynamic)


def _pad(opcode, shapes, attributes, computations):
    _count(shapes, 2)
    shape = _array(shapes[0])
    dims = []
    for d, (low, high, interior) in enumerate(_padding(attributes["padding"], shape.rank)):
        size = _static(shape, d)
        dims.append(low + high + size + max(size - 1, 0) * interior)
    if any(size < 0 for size in dims):
        raise _Unfit(f"padding={attributes['padding']} leaves a negative dimension")
    return _make(shape.element_type, dims, shape.dynamic)


def _same_as_first(opcode, shapes, attributes, computations):
    if not shapes:
        raise _Unfit("it has no operands")
    return shapes[0]


def _same_as_second(opcode, shapes, attributes, computations):
    _count(shapes, 2)
    return shapes[1]


def _sort(opcode, shapes, attributes, computations):
    if not shapes:
        raise _Unfit("it has no operands")
    return shapes[0] if len(shapes) == 1 else Shape("tuple", tuple_shapes=tuple(shapes))


def _scatter(opcode, shapes, attributes, computations):
    if len(shapes) < 3 or len(shapes) % 2 == 0:
        raise _Unfit(f"it takes operands, indices and as many updates, not {len(shapes)} operands")
    count = (len(shapes) - 1) // 2
    return shapes[0] if count == 1 else Shape("tuple", tuple_shapes=tuple(shapes[:count]))


def _map(opcode, shapes, attributes, computations):
    if not shapes:
        raise _Unfit("it has no operands")
    root = _array(_called_root(attributes, "to_apply", computations), "mapped computation's result")
    return _make(root.element_type, _array(shapes[0]).dims, shapes[0].dynamic)


def _call(opcode, shapes, attributes, computations):
    return _called_root(attributes, "to_apply", computations)


def _conditional(opcode, shapes, attributes, computations):
    role = "branch_computations" if "branch_computations" in attributes else "true_computation"
    return _called_root(attributes, role, computations)


def _topk(opcode, shapes, attributes, computations):
    _count(shapes, 1)
    shape = _array(shapes[0])
    if shape.rank == 0:
        raise _Unfit("its operand is a scalar")
    k = _int(attributes["k"])
    dims = shape.dims[:-1] + (k,)
    return Shape("tuple", tuple_shapes=(_make(shape.element_type, dims, shape.dynamic),
                                        _make("s32", dims, shape.dynamic)))


def _fixed(element_type: str) -> Rule:
    def rule(opcode, shapes, attributes, computations):
        return Shape(element_type)
    return rule


_RULES: dict[str, Rule] = {
    "select": _select,
    "clamp": _clamp,
    "tuple": _tuple,
    "get-tuple-element": _get_tuple_element,
    "reduce": _reduce,
    "reduce-window": _reduce_window,
    "transpose": _transpose,
    "dot": _dot,
    "concatenate": _concatenate,
    "broadcast": _broadcast,
    "pad": _pad,
    "copy": _same_as_first,  # of an array, a tuple or a token alike
    "reverse": _same_as_first,
    "sort": _sort,
    "scatter": _scatter,
    "select-and-scatter": _same_as_first,
    "map": _map,
    "call": _call,
    "conditional": _conditional,
    "while": _same_as_first,
    "add-dependency": _same_as_first,
    "domain": _same_as_first,
    "cholesky": _same_as_first,
    "triangular-solve": _same_as_second,
    "topk": _topk,
    "after-all": _fixed("token"),
    "partition-id": _fixed("u32"),
    "replica-id": _fixed("u32"),
    "get-dimension-size": _fixed("s32"),
}
