"""Floating-point work of a kernel's contractions, from shapes: 2 x the multiply-adds the program asks for.

The same step must cost the same FLOPs whichever backend compiled it. On CPU the work sits in ``dot`` and
``convolution`` instructions (fused or not); for a GPU, XLA also hands it to libraries as custom-calls: cuBLAS GEMMs
(``__cublas$gemm``, ``__cublas$lt$matmul`` with or without an epilogue, ``__cublas$lt$matmul$f8``), whose dimension
numbers sit in ``backend_config``, and cuDNN convolutions (``__cudnn$convForward``, ``$convBackwardInput``,
``$convBackwardFilter``, ``$convBiasActivationForward``), whose ``window`` and ``dim_labels`` describe the *forward*
convolution whatever the direction. Only which operand or result plays the forward input I, filter F and output O
changes with it. A library call counts its contraction only: a bias, activation or ``beta`` accumulation is
elementwise work, which the CPU does in separate ``add`` and ``maximum`` ops that count nothing either.

Three rewrites make one backend's instructions look like more, or less, work than the other's for the same math:

* **Zero padding.** XLA:GPU pads operands with zeros so that libraries and Triton get the shapes they like: split-K
  GEMMs pad K (104 to 112 for a 4-way split), cuDNN pads channels (1 to 4, or to a multiple of 8), and a filter
  dilation becomes a filter with zeros between its taps (a 5x5 filter dilated by 2 becomes 9x9). Multiplying by those
  zeros is not the program's work. Each operand is traced back through ``bitcast``, ``reshape``, ``transpose``,
  ``copy``, ``convert``, ``broadcast``, ``slice`` and fusion boundaries to any ``pad`` with a zero value, giving a mask
  of its real elements, and only products of real elements count (exactly for dots; for convolutions per dimension,
  which is exact for what a ``pad`` makes and an upper bound otherwise).
* **Taps on padding.** A convolution's work is counted tap by tap, as XLA's own cost analysis does: per spatial
  dimension, the pairs of output and filter positions that land on a real input element, not on the window's padding
  or on the holes that base dilation (``lhs_dilate``, how XLA writes a strided convolution's input gradient) inserts.
  FLOPs = 2 x output batch x output features x filter input features x the product of those counts.
* **Small dots as reductions.** XLA:GPU writes a matrix-vector product as ``reduce(multiply(w, broadcast(x)), add)``,
  which XLA:CPU keeps as a ``dot``. A sum over a product of two arrays (neither a constant nor a broadcast scalar) is
  therefore a contraction too: 2 x the product's elements, what the same ``dot`` costs.

Anything else (or shapes too odd to trust) counts 0: no estimate rather than a wrong one. Following values across
fusions needs the module; without it, operands count as unpadded and reductions count nothing.
"""

from __future__ import annotations

import re
import weakref
from math import prod
from typing import TYPE_CHECKING, Any

from xlainspect.hlo import Computation, HloModule, Instruction, Shape

if TYPE_CHECKING:
    import numpy as np

CUBLAS_GEMMS = frozenset({"__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8"})

_Where = tuple[str, int]  # ("operand", i) or ("result", 0)
_FORWARD: tuple[_Where, _Where, _Where] = (("operand", 0), ("operand", 1), ("result", 0))

# cuDNN convolution target -> where the forward convolution's input I, filter F and output O are.
CUDNN_CONVOLUTIONS: dict[str, tuple[_Where, _Where, _Where]] = {
    "__cudnn$convForward": _FORWARD,
    "__cudnn$convBiasActivationForward": _FORWARD,
    "__cudnn$convForwardGraph": _FORWARD,
    "__cudnn$convBackwardInput": (("result", 0), ("operand", 1), ("operand", 0)),
    "__cudnn$convBackwardFilter": (("operand", 0), ("result", 0), ("operand", 1)),
}

# Ops whose result holds real data exactly where their operand does (zeros stay zeros, positions stay put).
_SAME_POSITIONS = frozenset({"copy", "convert"})
# Ops a value passes through unchanged in meaning when looking for the op that computed it.
_VIEWS = frozenset({"bitcast", "reshape", "transpose", "copy", "convert"})
_MAX_MASK = 1 << 22  # elements; a mask larger than this is given up (counted as all real) rather than built
_MAX_DEPTH = 64


def instruction_flops(computation: Computation, instruction: Instruction, module: HloModule | None = None) -> int:
    """2 x multiply-adds of one contraction (dot, convolution, cuBLAS GEMM, cuDNN convolution, sum of a product).

    Args:
        computation: the computation holding ``instruction``.
        instruction: any instruction; those that contract nothing count 0.
        module: the module, to follow operands across fusion boundaries (zero padding made in another kernel) and to
            read a reduction's computation. Without it, operands count as unpadded and reductions as 0.
    """
    trace = _Trace(module, computation)
    opcode = instruction.opcode
    if opcode == "dot":
        attributes = instruction.attributes
        numbers = tuple(_dims(attributes.get(key)) for key in ("lhs_contracting_dims", "rhs_contracting_dims",
                                                                  "lhs_batch_dims", "rhs_batch_dims"))
        return _dot_flops(trace, instruction, *numbers)
    if opcode == "convolution":
        return _convolution_flops(trace, instruction, *_FORWARD)
    if opcode in ("reduce", "reduce-window"):
        return _reduced_product_flops(trace, instruction)
    if opcode != "custom-call":
        return 0
    target = instruction.custom_call_target or ""
    if target in CUBLAS_GEMMS:
        config = instruction.backend_config
        gemm = config.get("gemm_backend_config") if isinstance(config, dict) else None
        numbers = gemm.get("dot_dimension_numbers") if isinstance(gemm, dict) else None
        if not isinstance(numbers, dict) or not isinstance(numbers.get("lhs_contracting_dimensions"), list):
            return 0
        keys = ("lhs_contracting_dimensions", "rhs_contracting_dimensions", "lhs_batch_dimensions",
                "rhs_batch_dimensions")
        return _dot_flops(trace, instruction, *(tuple(str(d) for d in numbers.get(key) or ()) for key in keys))
    if target in CUDNN_CONVOLUTIONS:
        return _convolution_flops(trace, instruction, *CUDNN_CONVOLUTIONS[target])
    return 0


def _dims(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").strip("{}").split(",") if part.strip())


def _result(instruction: Instruction) -> Shape:
    """The array a library call produces: the first element of its (result, scratch) tuple."""
    shape = instruction.shape
    return shape.tuple_shapes[0] if shape.is_tuple and shape.tuple_shapes else shape


def _shape(computation: Computation, instruction: Instruction, where: _Where) -> Shape | None:
    kind, index = where
    if kind == "result":
        return _result(instruction)
    if index >= len(instruction.operands):
        return None
    producer = computation.by_name.get(instruction.operands[index])
    return None if producer is None else producer.shape


def _indices(texts: tuple[str, ...], rank: int) -> tuple[int, ...] | None:
    """Dimension numbers as ints, or None when one is not a dimension of a rank-``rank`` array."""
    if not all(text.isdigit() and int(text) < rank for text in texts):
        return None  # dimension numbers XLA's verifier would reject
    numbers = tuple(int(text) for text in texts)
    return numbers if len(set(numbers)) == len(numbers) else None


# --- dots ------------------------------------------------------------------------------------------------------------

def _dot_flops(trace: _Trace, instruction: Instruction, lhs_contracting: tuple[str, ...],
               rhs_contracting: tuple[str, ...], lhs_batch: tuple[str, ...], rhs_batch: tuple[str, ...]) -> int:
    computation = trace.computation
    output = _result(instruction).element_count
    lhs, rhs = (_shape(computation, instruction, ("operand", i)) for i in (0, 1))
    if output is None or lhs is None or rhs is None or None in lhs.dims or None in rhs.dims:
        return 0
    lc, rc, lb, rb = (_indices(texts, shape.rank) for texts, shape in
                      ((lhs_contracting, lhs), (rhs_contracting, rhs), (lhs_batch, lhs), (rhs_batch, rhs)))
    if lc is None:
        return 0
    size = prod(lhs.dims[d] or 0 for d in lc)
    masks = [trace.mask(instruction.operands[i]) for i in (0, 1)]
    if all(mask is None for mask in masks) or rc is None or lb is None or rb is None or len(lc) != len(rc) or len(lb) != len(rb):
        return 2 * output * size
    lhs_cells, lhs_sizes = _real_per_cell(masks[0], lhs.dims, lb + lc)  # type: ignore[arg-type]
    rhs_cells, rhs_sizes = _real_per_cell(masks[1], rhs.dims, rb + rc)  # type: ignore[arg-type]
    if lhs_sizes != rhs_sizes:
        return 2 * output * size
    both = lhs_cells * rhs_cells
    unseen = prod(n for n, a, b in zip(lhs_sizes, lhs_cells.shape, rhs_cells.shape) if a == b == 1)
    return 2 * int(both.sum()) * unseen


def _real_per_cell(mask: np.ndarray | None, dims: tuple[int, ...], kept: tuple[int, ...]) -> tuple[np.ndarray, list]:
    """Real elements over the free dimensions of a dot operand, per cell of its (batch..., contracting...) dims."""
    import numpy as np

    if mask is None:
        mask = np.ones((1,) * len(dims), dtype=bool)
    free = tuple(d for d in range(len(dims)) if d not in kept)
    counts = mask.sum(axis=free, dtype=np.int64) if free else mask.astype(np.int64)
    scale = prod(dims[d] for d in free if mask.shape[d] == 1)  # a size-1 mask dimension stands for all of it
    remaining = [d for d in range(len(dims)) if d not in free]
    return np.transpose(counts, [remaining.index(d) for d in kept]) * scale, [dims[d] for d in kept]


def _reduced_product_flops(trace: _Trace, instruction: Instruction) -> int:
    """A sum over a product of two arrays: the dot it is (XLA:GPU writes small dots this way); 0 for other reduces."""
    if trace.module is None or len(instruction.operands) != 2:
        return 0
    if instruction.opcode == "reduce" and not _dims(instruction.attributes.get("dimensions")):
        return 0
    if instruction.opcode == "reduce-window":
        window = _window(instruction.attributes.get("window", ""))
        if window.get("stride", ["1"] * len(window.get("size", []))) != window.get("size") or any(
                key in window for key in ("lhs_dilate", "rhs_dilate")):
            return 0  # overlapping windows add an element more than once: not a sum of products
    called = [c.name for c in instruction.called_computations if c.role == "to_apply"]
    reducer = trace.module.by_name.get(called[0]) if called else None
    if reducer is None or reducer.root.opcode != "add" or len(reducer.parameters) != 2:
        return 0
    product = trace.producer(instruction.operands[0])
    if product is None or product[1].opcode != "multiply" or len(product[1].operands) != 2:
        return 0
    at = _Trace(trace.module, product[0], product[2])
    for operand in product[1].operands:
        source = at.producer(operand)
        if source is None or source[1].opcode == "constant" or (
                source[1].opcode == "broadcast" and _scalar_broadcast(source[0], source[1])):
            return 0  # a scaled sum, not a contraction
    count = product[1].shape.element_count
    return 2 * count if count else 0


def _scalar_broadcast(computation: Computation, broadcast: Instruction) -> bool:
    operand = computation.by_name.get(broadcast.operands[0]) if broadcast.operands else None
    return operand is None or operand.shape.element_count == 1


# --- convolutions ----------------------------------------------------------------------------------------------------

def _convolution_flops(trace: _Trace, instruction: Instruction, input_at: _Where, filter_at: _Where,
                       output_at: _Where) -> int:
    computation = trace.computation
    places = (input_at, filter_at, output_at)
    shapes = [_shape(computation, instruction, where) for where in places]
    parts = re.fullmatch(r"(\w+)_(\w+)->(\w+)", instruction.attributes.get("dim_labels", ""))
    if parts is None or any(shape is None or None in shape.dims for shape in shapes):
        return 0
    labels = parts.groups()
    if any(len(label) != shape.rank for label, shape in zip(labels, shapes)):  # type: ignore[union-attr]
        return 0
    input_labels, kernel_labels, output_labels = labels
    if not {"b", "f"} <= set(input_labels) or not {"i", "o"} <= set(kernel_labels) or not {
            "b", "f"} <= set(output_labels):
        return 0
    dims = [dict(zip(label, shape.dims)) for label, shape in zip(labels, shapes)]  # type: ignore[union-attr]
    masks = [trace.mask(instruction.operands[index]) if kind == "operand" and index < len(instruction.operands)
             else None for kind, index in places]
    real = [_per_dimension(mask, label, shape.dims) if mask is not None else {}  # type: ignore[union-attr]
            for mask, label, shape in zip(masks, labels, shapes)]
    real_in, real_kernel, real_out = real
    window = _window(instruction.attributes.get("window", ""))
    taps = 1
    for d, label in enumerate(sorted(ch for ch in kernel_labels if ch.isdigit())):
        if label not in input_labels or label not in output_labels:
            return 0
        taps *= _valid_taps(dims[0][label], dims[2][label], dims[1][label], window, d,
                            (real_in.get(label), real_kernel.get(label), real_out.get(label)))
    if not any(real):
        return 2 * dims[2]["b"] * dims[2]["f"] * dims[1]["i"] * taps
    groups = _int_attribute(instruction, "feature_group_count")
    batch = _count_batch(dims[2]["b"], real_out.get("b"), real_in.get("b"))
    features = _count_features(dims[2]["f"], dims[1]["i"], groups, (real_out.get("f"), real_kernel.get("o")),
                               real_kernel.get("i"), real_in.get("f"))
    return 2 * batch * features * taps


def _int_attribute(instruction: Instruction, key: str) -> int:
    text = instruction.attributes.get(key, "1")
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _count_batch(size: int, real_out: list[bool] | None, real_in: list[bool] | None) -> int:
    real_in = real_in if real_in is not None and len(real_in) == size else None  # batch groups change the size
    return sum(1 for b in range(size) if (real_out is None or real_out[b]) and (real_in is None or real_in[b]))


def _count_features(outputs: int, inputs: int, groups: int, real_outputs: tuple[list[bool] | None, ...],
                    real_kernel_inputs: list[bool] | None, real_features: list[bool] | None) -> int:
    """Pairs (output feature, filter input feature) whose both ends are real, within each feature group."""
    if real_features is not None and len(real_features) != groups * inputs:
        real_features = None
    per_group = max(outputs // groups, 1)
    inputs_of_group = [sum(1 for i in range(inputs) if (real_kernel_inputs is None or real_kernel_inputs[i]) and (
        real_features is None or real_features[g * inputs + i])) for g in range(groups)]
    return sum(inputs_of_group[min(o // per_group, groups - 1)] for o in range(outputs)
               if all(real is None or real[o] for real in real_outputs))


def _window(text: str) -> dict[str, list[str]]:
    """``size=3x3 stride=2x2 pad=1_1x0_2 lhs_dilate=2x2`` as {"size": ["3", "3"], "pad": ["1_1", "0_2"], ...}."""
    return {key: value.split("x") for key, value in re.findall(r"(\w+)=([\w\-]+)", text)}


def _valid_taps(input_size: int, output_size: int, kernel_size: int, window: dict[str, list[str]], d: int,
                real: tuple[list[bool] | None, ...] = (None, None, None)) -> int:
    """Pairs (output position, filter position) along one spatial dimension that read a real input element.

    ``real`` says, per position of the input, filter and output, whether it holds real data (None: all do); pairs
    touching a zero that a ``pad`` made count nothing.
    """
    def number(key: str, default: int) -> int:
        values = window.get(key)
        return int(values[d]) if values and d < len(values) and values[d].lstrip("-").isdigit() else default

    stride, base, dilation = number("stride", 1), number("lhs_dilate", 1), number("rhs_dilate", 1)
    pads = window.get("pad")
    low = int(pads[d].split("_")[0]) if pads and d < len(pads) and "_" in pads[d] else 0
    real_in, real_kernel, real_out = real
    last = (input_size - 1) * base  # the last real element of the base-dilated input
    count = 0
    for out in range(output_size):
        if real_out is not None and not real_out[out]:
            continue
        start = out * stride - low
        for k in range(kernel_size):
            position = start + k * dilation
            if 0 <= position <= last and position % base == 0 and (real_kernel is None or real_kernel[k]) and (
                    real_in is None or real_in[position // base]):
                count += 1
    return count


def _per_dimension(mask: np.ndarray, labels: str, dims: tuple[int, ...]) -> dict[str, list[bool]]:
    """Per labelled dimension, which positions hold real data somewhere (exact when the mask is a pad's product)."""
    result = {}
    for axis, label in enumerate(labels):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        marginal = mask.any(axis=others) if others else mask
        result[label] = [bool(marginal[i if len(marginal) > 1 else 0]) for i in range(dims[axis])]
    return result


# --- where the real data is ------------------------------------------------------------------------------------------

_CALLERS: dict[int, tuple[weakref.ref, dict[str, list[tuple[str, Instruction]]]]] = {}


def _fusion_callers(module: HloModule) -> dict[str, list[tuple[str, Instruction]]]:
    """Fused computation name -> the (computation, fusion instruction) pairs that call it; cached per module."""
    cached = _CALLERS.get(id(module))
    if cached is not None and cached[0]() is module:
        return cached[1]
    callers: dict[str, list[tuple[str, Instruction]]] = {}
    for computation in module.computations:
        for instruction in computation.instructions:
            if instruction.opcode == "fusion":
                for called in instruction.called_computations:
                    if called.role == "calls":
                        callers.setdefault(called.name, []).append((computation.name, instruction))
    if len(_CALLERS) >= 8:
        _CALLERS.clear()
    _CALLERS[id(module)] = (weakref.ref(module), callers)
    return callers


class _Trace:
    """Follows a value back to what computed it, across fusion boundaries when the module is known.

    ``callers`` is the stack of fusions entered on the way down, so a fused parameter resolves to the operand of the
    fusion that was followed into, even when several fusions share one computation.
    """

    def __init__(self, module: HloModule | None, computation: Computation,
                 callers: tuple[tuple[Computation, Instruction], ...] = ()) -> None:
        self.module, self.computation, self.callers = module, computation, callers

    def _step(self, computation: Computation, instruction: Instruction,
              callers: tuple[tuple[Computation, Instruction], ...]) -> tuple[Computation, str, tuple] | None:
        """Where the value of a fused parameter or a fusion's result is defined; None for anything else."""
        if self.module is None:
            return None
        if instruction.opcode == "parameter" and instruction.parameter_number is not None:
            if callers:
                (caller_computation, fusion), callers = callers[-1], callers[:-1]
            else:
                found = _fusion_callers(self.module).get(computation.name, [])
                if len(found) != 1:
                    return None
                caller_computation, fusion = self.module.by_name[found[0][0]], found[0][1]
            if instruction.parameter_number >= len(fusion.operands):
                return None
            return caller_computation, fusion.operands[instruction.parameter_number], callers
        if instruction.opcode == "fusion" and instruction.called_computations:
            called = self.module.by_name.get(instruction.called_computations[0].name)
            if called is None:
                return None
            return called, called.root.name, (*callers, (computation, instruction))
        return None

    def producer(self, name: str) -> tuple[Computation, Instruction, tuple] | None:
        """The op that computes ``name``, past views (bitcast, reshape, copy...) and fusion boundaries."""
        computation, callers = self.computation, self.callers
        for _ in range(_MAX_DEPTH):
            instruction = computation.by_name.get(name)
            if instruction is None:
                return None
            step = self._step(computation, instruction, callers)
            if step is not None:
                computation, name, callers = step
            elif instruction.opcode in _VIEWS and instruction.operands:
                name = instruction.operands[0]
            elif instruction.opcode == "get-tuple-element" and instruction.operands:
                found = _Trace(self.module, computation, callers).producer(instruction.operands[0])
                index = instruction.attributes.get("index", "")
                if found is None or found[1].opcode != "tuple" or not index.isdigit() or int(index) >= len(
                        found[1].operands):
                    return computation, instruction, callers
                computation, name, callers = found[0], found[1].operands[int(index)], found[2]
            else:
                return computation, instruction, callers
        return None

    def mask(self, name: str) -> np.ndarray | None:
        """Where the array ``name`` holds real data rather than zeros a ``pad`` inserted; None when all of it does.

        A dimension of size 1 in the mask stands for the whole dimension (numpy broadcasting), so masks stay small.
        None too when it cannot be told (an op not followed, a mask too large).
        """
        try:
            return self._mask(self.computation, name, self.callers, 0)
        except (ValueError, IndexError, KeyError):
            return None  # shapes that disagree with their ops: no correction rather than a wrong one

    def _mask(self, computation: Computation, name: str, callers: tuple, depth: int) -> np.ndarray | None:
        instruction = computation.by_name.get(name)
        if instruction is None or depth > _MAX_DEPTH:
            return None
        step = self._step(computation, instruction, callers)
        if step is not None:
            return self._mask(step[0], step[1], step[2], depth + 1)
        opcode, operands = instruction.opcode, instruction.operands
        if opcode not in _SAME_POSITIONS | {"pad", "bitcast", "reshape", "transpose", "broadcast", "slice"}:
            return None
        if not operands or None in instruction.shape.dims:
            return None
        if opcode == "pad" and not (len(operands) == 2 and self._is_zero(computation, operands[1], callers)):
            return None
        inner = self._mask(computation, operands[0], callers, depth + 1)
        if inner is None and opcode != "pad":
            return None
        source = computation.by_name[operands[0]].shape
        if None in source.dims:
            return None
        result = _MASK_OPS[opcode](inner, source, instruction)
        if result is None or result.size > _MAX_MASK:
            return None
        return None if result.all() else result

    def _is_zero(self, computation: Computation, name: str, callers: tuple) -> bool:
        found = _Trace(self.module, computation, callers).producer(name)
        while found is not None and found[1].opcode == "broadcast" and found[1].operands:
            found = _Trace(self.module, found[0], found[2]).producer(found[1].operands[0])
        if found is None or found[1].opcode != "constant" or found[1].literal is None:
            return False
        try:
            return float(found[1].literal.strip("{} ")) == 0
        except ValueError:
            return False


def _pad_mask(inner: np.ndarray | None, source: Shape, pad: Instruction) -> np.ndarray | None:
    import numpy as np

    rank = source.rank
    inner = np.ones((1,) * rank, dtype=bool) if inner is None else inner
    specs = pad.attributes.get("padding", "").split("x")
    if len(specs) != rank:
        return None
    shape, source_index, target_index = [], [], []
    for d, spec in enumerate(specs):
        low, high, interior = ([int(v) for v in spec.split("_")] + [0])[:3]
        size_in, size_out = source.dims[d], pad.shape.dims[d]
        if inner.shape[d] == 1 and low <= 0 and high <= 0 and interior == 0:
            shape.append(1)  # a crop of an all-alike dimension leaves it all alike
            source_index.append([0])
            target_index.append([0])
            continue
        pairs = [(i, low + i * (interior + 1)) for i in range(size_in)]
        pairs = [(i if inner.shape[d] > 1 else 0, p) for i, p in pairs if 0 <= p < size_out]
        shape.append(size_out)
        source_index.append([i for i, _ in pairs])
        target_index.append([p for _, p in pairs])
    if prod(shape) > _MAX_MASK:
        return None
    result = np.zeros(shape, dtype=bool)
    if all(source_index):
        result[np.ix_(*target_index)] = inner[np.ix_(*source_index)]
    return result


def _reshape_mask(mask: np.ndarray, source: tuple[int, ...], target: tuple[int, ...]) -> np.ndarray | None:
    """A row-major reshape of a mask, keeping the groups of dimensions that only moved as size 1."""
    import numpy as np

    groups = _reshape_groups(source, target)
    if groups is None:
        return None
    expanded, shape = list(mask.shape), []
    for (a, b), (c, e) in groups:
        if any(mask.shape[d] != 1 for d in range(a, b)):
            expanded[a:b] = source[a:b]
            shape.extend(target[c:e])
        else:
            shape.extend([1] * (e - c))
    if prod(expanded) > _MAX_MASK:
        return None
    return np.broadcast_to(mask, expanded).reshape(shape)


def _reshape_groups(source: tuple[int, ...], target: tuple[int, ...]) -> list | None:
    """Runs of source and target dimensions with equal products, in order; None when the sizes do not factor."""
    if 0 in source or 0 in target or prod(source) != prod(target):
        return None
    groups, i, j = [], 0, 0
    while i < len(source) or j < len(target):
        start = (i, j)
        left = right = 1
        if i < len(source):
            left, i = left * source[i], i + 1
        if j < len(target):
            right, j = right * target[j], j + 1
        while left != right:
            if left < right and i < len(source):
                left, i = left * source[i], i + 1
            elif right < left and j < len(target):
                right, j = right * target[j], j + 1
            else:
                return None
        groups.append(((start[0], i), (start[1], j)))
    return groups


def _bitcast_mask(mask: np.ndarray, source: Shape, bitcast: Instruction) -> np.ndarray | None:
    """A bitcast reinterprets memory: reshape in physical (major-to-minor) order, as each layout gives it."""
    import numpy as np

    target = bitcast.shape
    if source.layout is None or target.layout is None:
        return _reshape_mask(mask, source.dims, target.dims)  # type: ignore[arg-type]
    source_order = tuple(reversed(source.layout.minor_to_major))
    target_order = tuple(reversed(target.layout.minor_to_major))
    if sorted(source_order) != list(range(source.rank)) or sorted(target_order) != list(range(target.rank)):
        return None
    physical = _reshape_mask(np.transpose(mask, source_order), tuple(source.dims[d] for d in source_order),
                             tuple(target.dims[d] for d in target_order))  # type: ignore[misc]
    return None if physical is None else np.transpose(physical, np.argsort(target_order))


def _broadcast_mask(mask: np.ndarray, source: Shape, broadcast: Instruction) -> np.ndarray | None:
    import numpy as np

    placed = _indices(_dims(broadcast.attributes.get("dimensions")), broadcast.shape.rank)
    if placed is None or len(placed) != source.rank:
        return None
    order = sorted(range(len(placed)), key=lambda k: placed[k])
    shape = [1] * broadcast.shape.rank
    for k in order:
        shape[placed[k]] = mask.shape[k]
    return np.transpose(mask, order).reshape(shape)


def _slice_mask(mask: np.ndarray, source: Shape, instruction: Instruction) -> np.ndarray | None:
    ranges = re.findall(r"\[(-?\d+):(-?\d+)(?::(\d+))?\]", instruction.attributes.get("slice", ""))
    if len(ranges) != mask.ndim:
        return None
    index = tuple(slice(0, 1) if mask.shape[d] == 1 else slice(int(a), int(b), int(s or 1))
                  for d, (a, b, s) in enumerate(ranges))
    return mask[index]


def _transpose_mask(mask: np.ndarray, source: Shape, instruction: Instruction) -> np.ndarray | None:
    import numpy as np

    order = _indices(_dims(instruction.attributes.get("dimensions")), mask.ndim)
    return None if order is None or len(order) != mask.ndim else np.transpose(mask, order)


_MASK_OPS: dict[str, Any] = {
    "pad": _pad_mask,
    "bitcast": _bitcast_mask,
    "reshape": lambda mask, source, instruction: _reshape_mask(mask, source.dims, instruction.shape.dims),
    "transpose": _transpose_mask,
    "broadcast": _broadcast_mask,
    "slice": _slice_mask,
    "copy": lambda mask, source, instruction: mask,
    "convert": lambda mask, source, instruction: mask,
}
