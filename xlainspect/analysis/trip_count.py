"""How many times a ``while`` loop runs when XLA's backend config does not say: by running its scalar control.

XLA annotates a loop with ``known_trip_count`` when its own analysis finds one, which it does for JAX's
``lax.scan`` and ``fori_loop``. TF's loops often come without: ``tf.map_fn``'s condition is ``i < n and
i < maximum_iterations``, fused into one kernel, and so a census would count such a loop's kernels once, not once
per example (a DP-SGD LSTM step's TF module then reads as 1/128 of its work).

Such loops are almost always counted loops: a few integer scalars in the loop's tuple (the counter, the bound)
decide when it stops, and the arrays it carries do not. So the count is found by evaluating exactly that part: the
tuple elements the condition reads, and those the body's update of them reads, from the loop's initial tuple,
step by step, until the condition is false. Whatever the evaluation needs and cannot know (a value read from an
array, a parameter nobody passes a known value for, an op outside the small set below) means no count: the census
then says the count is unknown. All the loops one count runs (a loop's bound can be another loop's result) share
one budget of ``limit`` steps, so a census never hangs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Union

from xlainspect.hlo import Computation, HloModule, Instruction

Scalar = Union[int, float, bool]
Value = Union[Scalar, "TupleValue"]
TupleValue = dict[int, Scalar]  # the known scalar elements of a tuple, by index

DEFAULT_LIMIT = 20_000  # about a second of evaluation at worst; TF map_fn loops run once per example
_TOP: Mapping[int, Value] = {}  # the parameters where an evaluation starts: its computation's caller knows them


class _Unknown(Exception):
    """The value depends on something the evaluation cannot know."""


_BINARY: Mapping[str, Callable[[Scalar, Scalar], Scalar]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "maximum": max,
    "minimum": min,
    "and": lambda a, b: (a and b) if isinstance(a, bool) else a & b,
    "or": lambda a, b: (a or b) if isinstance(a, bool) else a | b,
    "xor": lambda a, b: a != b if isinstance(a, bool) else a ^ b,
}
_COMPARE: Mapping[str, Callable[[Scalar, Scalar], bool]] = {
    "LT": lambda a, b: a < b, "LE": lambda a, b: a <= b, "GT": lambda a, b: a > b, "GE": lambda a, b: a >= b,
    "EQ": lambda a, b: a == b, "NE": lambda a, b: a != b,
}
# Ops whose value is their first operand's, tuples included.
_PASS_THROUGH = frozenset({"copy", "bitcast", "reshape", "broadcast", "opt-barrier"})
# Ops that may produce a tuple this evaluation follows; every other op must produce a scalar.
_TUPLE_OPS = frozenset({"tuple", "parameter", "while", "fusion", "call", "select"}) | _PASS_THROUGH


class TripCounter:
    """Trip counts of one module's unannotated loops; one per module, so its index of callers is built once."""

    def __init__(self, module: HloModule, limit: int = DEFAULT_LIMIT) -> None:
        self.module = module
        self.limit = limit
        self._callers: dict[str, list[Instruction]] | None = None

    def count(self, loop: Instruction) -> int | None:
        """The number of times ``loop`` (a ``while``) runs its body, or None when its scalar control cannot tell or
        it (with the loops its control depends on) runs longer than ``limit`` steps."""
        evaluator = _Evaluator(self)
        try:
            return evaluator.run(self.module.computation(loop.computation), loop, _TOP, {})[0]
        except (_Unknown, RecursionError):  # a scalar chain deeper than Python's stack: not a counted loop's control
            return None

    def callers(self, computation: str) -> list[Instruction]:
        """The ``call`` and ``fusion`` instructions that call ``computation``."""
        if self._callers is None:
            self._callers = {}
            for instruction in self.module.instructions():
                if instruction.opcode in ("call", "fusion"):
                    for called in instruction.called_computations:
                        self._callers.setdefault(called.name, []).append(instruction)
        return self._callers.get(computation, [])


def inferred_trip_count(module: HloModule, loop: Instruction, limit: int = DEFAULT_LIMIT) -> int | None:
    """The number of times ``loop`` runs, or None when its scalar control cannot tell (see :class:`TripCounter`,
    which a caller counting many loops of one module should keep)."""
    return TripCounter(module, limit).count(loop)


class _Evaluator:
    """Evaluates the scalar part of HLO computations; tuples evaluate to their known scalar elements."""

    def __init__(self, counter: TripCounter) -> None:
        self.counter = counter
        self.module = counter.module
        self.steps_left = counter.limit
        self._reads: dict[tuple[str, str], frozenset[int]] = {}

    def run(self, computation: Computation, loop: Instruction, parameters: Mapping[int, Value],
            memo: dict[str, Value]) -> tuple[int, TupleValue]:
        """Runs ``loop``'s scalar control: its trip count and the known scalars of its final tuple.

        Only the tuple elements the condition reads are carried, with those the body needs to update them: a
        scalar the loop computes from an inner loop's result, but never tests, does not run that inner loop at
        every step. A loop's result can bound another loop: TF's gradient of a ``while_loop`` runs as many times
        as the forward loop did, which it reads from the forward loop's final counter.
        """
        roles = {called.role: called.name for called in loop.called_computations}
        if "condition" not in roles or "body" not in roles or len(loop.operands) != 1:
            raise _Unknown
        condition, body = self.module.computation(roles["condition"]), self.module.computation(roles["body"])
        if body.root.opcode != "tuple":
            raise _Unknown
        needed = set(self._reads_of(condition))
        while True:  # close over the body: an element it needs to update another it needs
            more = {j for k in needed if k < len(body.root.operands)
                    for j in self._reads_of(body, body.root.operands[k])} - needed
            if not more:
                break
            needed |= more
        state = self._evaluate(computation, computation.by_name[loop.operands[0]], parameters, memo)
        if not isinstance(state, dict) or not needed <= set(state):
            raise _Unknown
        state = {k: state[k] for k in needed}
        count = 0
        while _scalar(self.root(condition, {0: state})):
            self.steps_left -= 1
            if self.steps_left < 0:
                raise _Unknown  # longer than the limit: left unknown rather than counted for ever
            state = {k: _scalar(self.value(body, body.root.operands[k], {0: state})) for k in needed}
            count += 1
        return count, state

    def _reads_of(self, computation: Computation, name: str | None = None) -> frozenset[int]:
        """The elements of ``computation``'s tuple parameter that ``name`` (default: the root) reads, following
        scalar operands and the computations that fusions and calls apply."""
        name = name or computation.root.name
        key = (computation.name, name)
        if key not in self._reads:
            self._reads[key] = frozenset(self._indices(computation, name, {}))
        return self._reads[key]

    def _indices(self, computation: Computation, name: str, seen: dict[str, set[int]]) -> set[int]:
        if name in seen:
            return seen[name]
        seen[name] = set()
        instruction = computation.by_name[name]
        found: set[int] = set()
        if instruction.opcode == "get-tuple-element":
            source = computation.by_name[instruction.operands[0]]
            if source.opcode == "parameter":
                found.add(int(instruction.attributes.get("index", "-1")))
                seen[name] = found
                return found
        if instruction.opcode in ("fusion", "call") and instruction.called_computations:
            called = self.module.computation(instruction.called_computations[0].name)
            inner = self._indices_of_parameters(called)
            for number in inner:
                if number < len(instruction.operands):
                    found |= self._indices(computation, instruction.operands[number], seen)
        else:
            for operand in instruction.operands:
                found |= self._indices(computation, operand, seen)
        seen[name] = found
        return found

    def _indices_of_parameters(self, computation: Computation) -> set[int]:
        """Which parameters of a fused or called computation its root depends on (by parameter number)."""
        used, todo, seen = set(), [computation.root.name], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            instruction = computation.by_name[name]
            if instruction.opcode == "parameter" and instruction.parameter_number is not None:
                used.add(instruction.parameter_number)
            todo.extend(instruction.operands)
        return used

    def _caller_operand(self, computation: Computation, number: int) -> Value:
        """Parameter ``number`` of ``computation`` where the evaluation starts inside it (a loop in a called
        computation, as XLA's CPU pipeline outlines them): the operand its one caller passes."""
        callers = self.counter.callers(computation.name)
        if len(callers) != 1 or number >= len(callers[0].operands):
            raise _Unknown
        caller = callers[0]
        outer = self.module.computation(caller.computation)
        return self._evaluate(outer, outer.by_name[caller.operands[number]], _TOP, {})

    def root(self, computation: Computation, parameters: Mapping[int, Value]) -> Value:
        """The value of ``computation``'s root, its parameters bound to ``parameters`` (by number)."""
        return self.value(computation, computation.root.name, parameters)

    def value(self, computation: Computation, name: str, parameters: Mapping[int, Value]) -> Value:
        """The value of instruction ``name`` of ``computation``, its parameters bound to ``parameters``."""
        return self._evaluate(computation, computation.by_name[name], parameters, {})

    def _evaluate(self, computation: Computation, instruction: Instruction, parameters: Mapping[int, Value],
                  memo: dict[str, Value]) -> Value:
        if instruction.name in memo:
            return memo[instruction.name]

        def operand(k: int) -> Value:
            return self._evaluate(computation, computation.by_name[instruction.operands[k]], parameters, memo)

        opcode = instruction.opcode
        shape = instruction.shape
        # An array (or a nested tuple), told from the shape before any operand is evaluated, so an array read out
        # of an inner loop's result does not run that loop: the loop's control does not depend on it, or this
        # cannot tell.
        if shape.dims or (shape.is_tuple and opcode not in _TUPLE_OPS):
            raise _Unknown
        if opcode == "tuple":
            elements: TupleValue = {}
            for k in range(len(instruction.operands)):
                try:
                    element = operand(k)
                except _Unknown:
                    continue
                if not isinstance(element, dict):
                    elements[k] = element
            result: Value = elements
        elif opcode == "parameter":
            if instruction.parameter_number is None:
                raise _Unknown
            if instruction.parameter_number in parameters:
                result = parameters[instruction.parameter_number]
            elif parameters is _TOP:  # where the evaluation started: ask the caller
                result = self._caller_operand(computation, instruction.parameter_number)
            else:
                raise _Unknown
        elif opcode == "while":
            result = self.run(computation, instruction, parameters, memo)[1]
        elif opcode == "get-tuple-element":
            whole, index = operand(0), int(instruction.attributes.get("index", "-1"))
            if not isinstance(whole, dict) or index not in whole:
                raise _Unknown
            result = whole[index]
        elif opcode == "constant":
            result = _literal(instruction)
        elif opcode in _PASS_THROUGH:
            result = operand(0)
        elif opcode == "convert":
            result = _as_type(_scalar(operand(0)), shape.element_type)
        elif opcode in _BINARY:
            result = _as_type(_BINARY[opcode](_scalar(operand(0)), _scalar(operand(1))), shape.element_type)
        elif opcode == "not":
            value = _scalar(operand(0))
            result = (not value) if isinstance(value, bool) else _as_type(~int(value), shape.element_type)
        elif opcode == "negate":
            result = _as_type(-_scalar(operand(0)), shape.element_type)
        elif opcode == "compare":
            direction = instruction.attributes.get("direction", "")
            if direction not in _COMPARE:
                raise _Unknown
            result = _COMPARE[direction](_scalar(operand(0)), _scalar(operand(1)))
        elif opcode == "select":
            result = operand(1) if _scalar(operand(0)) else operand(2)
        elif opcode in ("fusion", "call") and len(instruction.called_computations) == 1:
            called = self.module.computation(instruction.called_computations[0].name)
            bound = {}
            for k in range(len(instruction.operands)):
                try:  # an array operand stays unbound: only a use of it inside fails
                    bound[k] = operand(k)
                except _Unknown:
                    continue
            result = self.root(called, bound)
        else:
            raise _Unknown
        memo[instruction.name] = result
        return result


def _scalar(value: Value) -> Scalar:
    if isinstance(value, dict):
        raise _Unknown
    return value


def _literal(instruction: Instruction) -> Scalar:
    text = (instruction.literal or "").strip()
    kind = instruction.shape.element_type
    try:
        if kind == "pred":
            return {"true": True, "false": False, "1": True, "0": False}[text]
        if kind.startswith(("s", "u")):
            return _as_type(int(text), kind)
        return float(text)
    except (KeyError, ValueError):
        raise _Unknown from None


def _as_type(value: Scalar, element_type: str) -> Scalar:
    """``value`` in ``element_type``: integers wrap at their width, as XLA's do."""
    if element_type == "pred":
        return bool(value)
    if element_type[:1] in ("s", "u") and element_type[1:].isdigit():
        bits = int(element_type[1:])
        wrapped = int(value) % (1 << bits)
        return wrapped - (1 << bits) if element_type[0] == "s" and wrapped >= 1 << (bits - 1) else wrapped
    if element_type.startswith(("f", "bf")):
        return float(value)
    raise _Unknown
