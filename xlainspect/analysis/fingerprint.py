"""Kernel identity by what is computed: name-free hashes of a kernel's math, and of its math with layouts.

Two kernels get the same *math* fingerprint when they compute the same values from inputs of the same types and
dimensions, whatever the framework or XLA named them. The hash covers, recursively through every computation the
kernel calls (fusion bodies, reducers, comparators, scatter combiners, nested fusions):

- each op's opcode, element type and dimensions (bounded and unbounded dynamic dimensions included);
- every attribute that can change the result: dot and convolution dimension numbers, ``window``, padding, group
  counts, comparison direction and type, slice sizes, the dimensions of broadcast, transpose, reshape, reduce and
  concatenate, gather/scatter dimension numbers, iota dimension, precision and algorithm, replica groups, RNG
  settings... Rather than list the attributes that count, :data:`NON_SEMANTIC_ATTRIBUTES` lists the few that never
  change a value (metadata, sharding annotations, scheduling, aliasing, channel ids), so an attribute a newer XLA adds
  counts until it is known not to;
- constant literal values (hashed, so a large literal costs its hash once);
- the custom-call target and the result-relevant part of ``backend_config`` (cuBLAS alpha/beta/epilogue, cuDNN
  activation mode and scales, the kind of a ``kCustom`` fusion), with tuning choices removed
  (:data:`TUNING_CONFIG_KEYS`: tile sizes, algorithm ids, stream assignment), which change speed, not values;
- the operands' hashes, sorted for commutative ops, so ``add(x, y)`` and ``add(y, x)`` agree.

Layouts are a separate question. They change how fast a kernel runs (a transposed layout makes XLA insert copies
and strides memory differently), never the values. So each kernel has a second fingerprint, the math plus every
layout in it (results, operands and called computations), and a diff reports "same math, different layout" as its
own category: the values are the same, the compiled kernel is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from xlainspect.errors import XlaInspectError
from xlainspect.hlo import CALL_ROLES, Computation, HloModule, Instruction, Shape
from xlainspect.hlo.tokens import CALL_ROLE_SET

# Attributes that never change the values an instruction computes. Everything else counts.
NON_SEMANTIC_ATTRIBUTES: frozenset[str] = frozenset({
    "metadata",  # which framework op and source line it came from
    "sharding",  # partitioning annotation; in an optimized module partitioning has already happened
    "frontend_attributes",  # framework hints (e.g. _xla_compute_type); results are fixed by the ops themselves
    "control-predecessors",  # ordering, not data
    "schedule", "custom_call_schedule",  # scheduling hints
    "operand_layout_constraints",  # layouts: part of the layout fingerprint instead
    "output_to_operand_aliasing",  # buffer reuse
    "api_version",  # the custom-call ABI, not what it computes
    "channel_id",  # an id, like a name
    "statistics",  # visualization data
    "backend_config",  # its result-relevant part is hashed separately (see TUNING_CONFIG_KEYS)
    "custom_call_has_side_effect",  # scheduling constraint
    *CALL_ROLES,  # called computations are hashed by content, never by name
})

# Keys of a backend_config (at any depth) that choose how a kernel runs, not what it computes.
TUNING_CONFIG_KEYS: frozenset[str] = frozenset({
    "operation_queue_id", "wait_on_operation_queues", "force_earliest_schedule", "reification_cost",
    "device_type", "triton_gemm_config", "block_level_fusion_config", "algorithm", "selected_algorithm",
    "workspace_size", "lhs_stride", "rhs_stride", "grad_x", "grad_y", "outer_dimension_partitions",
    "autotune_results", "collective_backend_config", "native_emitter_backend_config", "cost_model",
})

# Ops whose result does not depend on the order of their (two) operands.
COMMUTATIVE_OPCODES: frozenset[str] = frozenset({"add", "multiply", "maximum", "minimum", "and", "or", "xor"})
_SYMMETRIC_DIRECTIONS = frozenset({"EQ", "NE"})


class Fingerprints:
    """Computes and memoizes the fingerprints of one module's kernels, values and computations.

    Each hash is a pair ``(math, layout)`` of 16-hex-digit strings. Values inside a computation are hashed in
    post-order without recursion (fusion bodies can be chains of thousands of instructions); computations called by
    an instruction are hashed on demand, once each.
    """

    def __init__(self, module: HloModule) -> None:
        self.module = module
        self._values: dict[str, dict[str, tuple[str, str]]] = {}  # computation -> instruction -> hashes
        self._computations: dict[str, tuple[str, str]] = {}
        self._in_progress: set[str] = set()
        self._shape_keys: dict[int, tuple[str, str]] = {}

    def kernel(self, instruction: Instruction) -> tuple[str, str]:
        """The fingerprints of a kernel: the instruction with its operands standing for inputs of their shapes."""
        computation = self.module.computation(instruction.computation)
        operands = []
        for index, operand in enumerate(instruction.operands):
            producer = computation.by_name.get(operand)
            math, layout = self._shape_key(producer.shape) if producer is not None else ("?", "?")
            operands.append((f"in{index}:{math}", f"in{index}:{layout}"))
        return self._node(instruction, operands)

    def computation(self, name: str) -> tuple[str, str]:
        """The fingerprints of a called computation: its root value, parameters standing for themselves."""
        known = self._computations.get(name)
        if known is not None:
            return known
        if name in self._in_progress:
            raise XlaInspectError(f"{self.module.source}: computation {name!r} calls itself; HLO has no recursion")
        computation = self.module.computation(name)
        self._in_progress.add(name)
        try:
            result = self.value(computation, computation.root.name)
        finally:
            self._in_progress.discard(name)
        self._computations[name] = result
        return result

    def value(self, computation: Computation, name: str) -> tuple[str, str]:
        """The fingerprints of a value inside a computation and of everything it is computed from."""
        memo = self._values.get(computation.name)
        if memo is None:
            memo = self._values[computation.name] = {}
        by_name = computation.by_name
        node = self._node
        stack = [name]
        expanded: set[str] = set()  # entered and not finished: the current path of the depth-first walk
        while stack:
            current = stack[-1]
            if current in memo:
                stack.pop()
                continue
            instruction = by_name[current]
            if current in expanded:  # back after its operands: all are hashed now
                stack.pop()
                memo[current] = node(instruction, [memo[o] for o in instruction.operands])
                continue
            expanded.add(current)
            for operand in instruction.operands:
                if operand in memo:
                    continue
                if operand in expanded:
                    raise XlaInspectError(f"{self.module.source}:{instruction.line}: instruction {current!r} "
                                          f"depends on itself through {operand!r}; HLO data flow has no cycles")
                stack.append(operand)
        return memo[name]

    def _node(self, instruction: Instruction, operands: list[tuple[str, str]]) -> tuple[str, str]:
        opcode = instruction.opcode
        shape_math, shape_layout = self._shape_key(instruction.shape)
        parts = [opcode, shape_math, semantic_attributes(instruction)]
        if instruction.parameter_number is not None:
            parts.append(f"param{instruction.parameter_number}")
        if instruction.literal is not None:
            parts.append(_digest(instruction.literal))
        called_math, called_layout = [], []
        calls = instruction.called_computations if (instruction.implicit_calls or
                                                    not CALL_ROLE_SET.isdisjoint(instruction.attributes)) else ()
        for called in calls:
            math, layout = self.computation(called.name)
            called_math.append(math)
            called_layout.append(layout)
        if _is_commutative(instruction) and len(operands) == 2:
            operands = sorted(operands)
        math_text = "|".join((*parts, *called_math, "(", *(math for math, _ in operands)))
        layout_text = "|".join((math_text, shape_layout, instruction.attributes.get("operand_layout_constraints", ""),
                                *called_layout, "(", *(layout for _, layout in operands)))
        return _digest(math_text), _digest(layout_text)

    def _shape_key(self, shape: Shape) -> tuple[str, str]:
        """(type and dimensions, the same with layouts) of a shape; shapes are shared objects, so memoized by id."""
        key = self._shape_keys.get(id(shape))
        if key is None:
            key = (shape_text(shape, layouts=False), shape_text(shape, layouts=True))
            self._shape_keys[id(shape)] = key
        return key


def shape_text(shape: Shape, layouts: bool) -> str:
    """A shape's element type and dimensions (``f32[<=8,4]``), with its layout when ``layouts`` is set."""
    if shape.is_tuple:
        return "(" + ",".join(shape_text(element, layouts) for element in shape.tuple_shapes) + ")"
    dims = ",".join(("?" if size is None else ("<=" if dynamic else "") + str(size))
                    for size, dynamic in zip(shape.dims, shape.dynamic or (False,) * len(shape.dims)))
    text = f"{shape.element_type}[{dims}]"
    if layouts and shape.layout is not None:
        text += "{" + shape.layout.text + "}"
    return text


def semantic_attributes(instruction: Instruction) -> str:
    """The attributes that can change an instruction's result, as canonical text (attribute order ignored)."""
    attributes = instruction.attributes
    if instruction.opcode == "compare" and attributes.keys() & {"type", "order"}:
        attributes = _compare_order(attributes)
    keys = attributes.keys() - NON_SEMANTIC_ATTRIBUTES
    text = ",".join(sorted(f"{key}={_normalize_space(attributes[key])}" for key in keys)) if keys else ""
    config = attributes.get("backend_config")
    if config is not None:
        semantic = _CONFIG_CACHE.get(config)
        if semantic is None:
            if len(_CONFIG_CACHE) >= _CONFIG_CACHE_LIMIT:
                _CONFIG_CACHE.clear()
            semantic = _CONFIG_CACHE[config] = _semantic_config(instruction.backend_config)
        text += ",backend_config=" + semantic
    return text


def _compare_order(attributes: Mapping[str, str]) -> dict[str, str]:
    """``compare``'s ordering in one spelling: jax 0.10's XLA writes a float total order as ``type=TOTALORDER``,
    jax 0.12's as ``order=TOTAL`` (and a partial order as ``order=PARTIAL`` or not at all); each pair means the same
    comparison, so both hash alike. Other types (``FLOAT``, ``SIGNED``...) are left as written."""
    normalized = dict(attributes)
    if normalized.get("type") == "TOTALORDER":
        del normalized["type"]
        normalized["order"] = "TOTAL"
    if normalized.get("order") == "PARTIAL":
        del normalized["order"]
    return normalized


# Semantic parts of backend configs by their text: a module repeats a few hundred configs thousands of times.
_CONFIG_CACHE: dict[str, str] = {}
_CONFIG_CACHE_LIMIT = 100_000


def _semantic_config(config: dict[str, Any] | str | None) -> str:
    if config is None:
        return ""
    if isinstance(config, str):
        return config
    return json.dumps(_without_tuning(config), sort_keys=True, separators=(",", ":"))


def _without_tuning(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _without_tuning(item) for key, item in value.items() if key not in TUNING_CONFIG_KEYS}
    if isinstance(value, list):
        return [_without_tuning(item) for item in value]
    return value


def _is_commutative(instruction: Instruction) -> bool:
    opcode = instruction.opcode
    if opcode in COMMUTATIVE_OPCODES:
        return True
    return opcode == "compare" and instruction.attributes.get("direction") in _SYMMETRIC_DIRECTIONS


def _normalize_space(text: str) -> str:
    """Attribute text with whitespace runs removed outside string literals, so line breaks don't count."""
    if " " not in text and "\n" not in text and "\t" not in text and "\r" not in text:
        return text
    if '"' not in text:
        return "".join(text.split())
    pieces = text.split('"')  # even pieces are outside strings (escaped quotes are rare in semantic attributes)
    return '"'.join(piece if index % 2 else "".join(piece.split()) for index, piece in enumerate(pieces))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
