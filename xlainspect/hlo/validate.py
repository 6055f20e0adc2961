"""The rules beyond grammar that XLA's parser enforces and later stages rely on.

XLA's parser rejects an operand or control predecessor used before its definition (so a computation is acyclic), a
computation called before its definition (so calls are acyclic, recursion impossible), an instruction without the
computations its opcode needs (a fusion without ``calls=``), and an ``input_output_alias`` that points outside the
entry's result. Census, diff and render walk these graphs and would loop or fail on what these rules exclude.

The checks see parsed values and raise :class:`Invalid` with a message and what to point at; the parser turns that
into the usual located :class:`~xlainspect.errors.HloParseError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from xlainspect.hlo.attributes import parse_called_names
from xlainspect.hlo.model import CALL_ROLES, HloModule, Instruction
from xlainspect.hlo.opcodes import REQUIRED_CALLS
from xlainspect.hlo.shape import Shape


class Invalid(Exception):
    """A rule broken; the parser locates it.

    Attributes:
        message: what is wrong and what to do.
        line: file-relative line where the search for ``anchors`` starts; 0 for the module header.
        anchors: texts to find one after the other from ``line``; the error points at the last one found.
    """

    def __init__(self, message: str, line: int = 0, anchors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.anchors = tuple(anchors)


# -- operands and control predecessors ---------------------------------------------------------------------------


def use_before_definition(user: str, used: str, relation: str, computation: str,
                          later: Mapping[str, tuple[int, tuple[str, ...]]]) -> str:
    """The message for instruction ``user`` naming ``used`` (as an ``operand`` or ``control predecessor``) that
    nothing above it defines.

    Args:
        later: the instructions after ``user`` in its computation: name -> (line, names it depends on).
    """
    if used == user:
        what = "itself as an operand" if relation == "operand" else "itself as a control predecessor"
        return f"instruction {user!r} names {what}; an instruction cannot depend on itself"
    names = "uses operand" if relation == "operand" else "names control predecessor"
    if used not in later:
        return f"instruction {user!r} {names} {used!r}, which computation {computation!r} does not define"
    cycle = _path(used, user, later)
    if cycle is not None:
        chain = f"{user!r} uses " + ", which uses ".join(repr(name) for name in cycle)
        return (f"instructions {user!r} and {used!r} depend on each other ({chain}); HLO is acyclic: break the "
                "cycle")
    return (f"instruction {user!r} {names} {used!r} before its definition on line {later[used][0]}; XLA "
            f"requires every instruction to be defined above its users: move {used!r} above {user!r}")


def _path(start: str, goal: str, graph: Mapping[str, tuple[int, tuple[str, ...]]]) -> list[str] | None:
    """Names from ``start`` to ``goal`` along dependencies in ``graph`` (``goal`` need not be in it), or None."""
    parents: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        name = stack.pop()
        for dependency in graph[name][1]:
            if dependency in parents:
                continue
            parents[dependency] = name
            if dependency == goal:
                path = [dependency]
                node: str | None = name
                while node is not None:
                    path.append(node)
                    node = parents[node]
                return path[::-1]
            if dependency in graph:
                stack.append(dependency)
    return None


# -- called computations ---------------------------------------------------------------------------------------------


_CALL_ROLES = frozenset(CALL_ROLES)


def check_required_calls(instruction: Instruction) -> None:
    """Raises :class:`Invalid` when ``instruction`` lacks a computation its opcode needs (XLA's required attributes).

    The error points at the opcode; the parser passes the instruction's position.
    """
    attributes = instruction.attributes
    opcode = instruction.opcode
    if opcode == "conditional":
        if "branch_computations" in attributes:
            return
        for role, other in (("true_computation", "false_computation"), ("false_computation", "true_computation")):
            if role in attributes and other not in attributes:
                raise Invalid(f"conditional {instruction.name!r} has {role}= but no {other}=; XLA requires both")
        if "true_computation" not in attributes:
            raise Invalid(f"conditional {instruction.name!r} names no branches; XLA requires "
                          "branch_computations={...} or true_computation= and false_computation=")
        return
    for role, what in REQUIRED_CALLS.get(opcode, ()):
        if role not in attributes:
            raise Invalid(f"{opcode} {instruction.name!r} has no {role}=; XLA requires one: add {role}=<name of "
                          f"{what}>")


def check_call_order(module: HloModule, callers: Iterable[Instruction]) -> None:
    """Raises :class:`Invalid` for a computation name defined twice, or for the first call (``callers`` are the
    instructions with call attributes, in text order) of a computation that is not defined above its caller:
    undefined, later, the caller itself, or in a cycle of calls. XLA's parser resolves a called name when it reads it,
    so it rejects all of these ("computation does not exist").
    """
    if len(module.by_name) != len(module.computations):
        seen: set[str] = set()
        for computation in module.computations:
            if computation.name in seen:
                raise Invalid(f"computation {computation.name!r} defined twice", computation.line)
            seen.add(computation.name)
    position = {computation.name: index for index, computation in enumerate(module.computations)}
    for instruction in callers:
        caller = position[instruction.computation]
        # The attributes, not the cached called_computations: this runs on every fusion of a large module.
        for role, value in instruction.attributes.items():
            if role not in _CALL_ROLES:
                continue
            for called in parse_called_names(value):
                where = position.get(called)
                if where is None or where >= caller:
                    raise _call_out_of_order(module, instruction, role, called)


def _call_out_of_order(module: HloModule, instruction: Instruction, role: str, called: str) -> Invalid:
    caller = instruction.computation
    if called not in module.by_name:
        message = (f"instruction {instruction.name!r} calls computation {called!r} ({role}=), which the module does "
                   "not define")
    elif called == caller:
        message = (f"instruction {instruction.name!r} calls its own computation {caller!r} ({role}=); HLO has no "
                   "recursion")
    else:
        cycle = _call_path(called, caller, module)
        if cycle is not None:
            chain = f"{caller!r} calls " + ", which calls ".join(repr(name) for name in cycle)
            message = (f"computations {caller!r} and {called!r} call each other ({chain}); HLO has no recursion: "
                       "break the cycle")
        else:
            message = (f"instruction {instruction.name!r} calls computation {called!r} ({role}=) before its "
                       f"definition on line {module.by_name[called].line}; XLA requires a computation to be defined "
                       f"above its callers: move {called!r} above {caller!r}")
    return Invalid(message, instruction.line, (f"{role}=", called))


def _call_path(start: str, goal: str, module: HloModule) -> list[str] | None:
    """Computations from ``start`` to ``goal`` along calls, or None (only on the error path: walks the module)."""
    graph = {computation.name: (computation.line, tuple(
        called.name for instruction in computation.instructions for called in instruction.called_computations))
        for computation in module.computations}
    return _path(start, goal, graph)


# -- input_output_alias -----------------------------------------------------------------------------------------------

_INDEX = r"\{\s*((?:-?\d+\s*(?:,\s*-?\d+\s*)*)?)\}"
_ALIAS_ENTRY_RE = re.compile(r"\s*" + _INDEX + r"\s*:\s*\(\s*(-?\d+)\s*,\s*" + _INDEX + r"\s*(?:,\s*([\w\-]+)\s*)?\)"
                             r"\s*(,|$)")
_ALIAS_KINDS = ("may-alias", "must-alias")
_ALIAS_FORM = "{ {output index}: (parameter number, {parameter index}, may-alias|must-alias), ... }"


def check_input_output_alias(module: HloModule) -> None:
    """Raises :class:`Invalid` when the header's ``input_output_alias`` is malformed, names an output index outside
    the entry's result shape (XLA's parser rejects that), or a parameter or parameter index the entry does not have
    (XLA's verifier rejects that when it compiles the module).
    """
    text = module.attributes.get("input_output_alias")
    if text is None:
        return
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise Invalid(f"malformed input_output_alias; write {_ALIAS_FORM}", 0, ("input_output_alias",))
    inner = stripped[1:-1]
    pos = 0
    if inner.strip():
        while True:
            match = _ALIAS_ENTRY_RE.match(inner, pos)
            if match is None:
                raise Invalid(f"malformed input_output_alias; write {_ALIAS_FORM}", 0,
                              ("input_output_alias", inner[pos:].strip()[:20]))
            _check_alias(module, match)
            pos = match.end()
            if match.group(5) != "," or not inner[pos:].strip():  # XLA allows a comma after the last entry
                break


def _check_alias(module: HloModule, match: re.Match[str]) -> None:
    output_text, number_text, parameter_text, kind = match.group(1, 2, 3, 4)
    anchors = ("input_output_alias", match.group().strip().rstrip(",").strip())
    output = _index(output_text)
    result = module.entry.root.shape
    if _subshape(result, output) is None:
        raise Invalid(f"input_output_alias names output {{{output_text.strip()}}}, which the entry's result shape "
                      f"{result} does not have; use an index into that shape ({{}} for the whole result)", 0, anchors)
    parameters = {parameter.parameter_number: parameter for parameter in module.entry.parameters}
    number = int(number_text)
    if number not in parameters:
        have = f"parameters 0 to {len(parameters) - 1}" if parameters else "no parameters"
        raise Invalid(f"input_output_alias names parameter {number}, which the entry {module.entry_name!r} does not "
                      f"have (it has {have})", 0, anchors)
    parameter_shape = parameters[number].shape
    if _subshape(parameter_shape, _index(parameter_text)) is None:
        raise Invalid(f"input_output_alias names index {{{parameter_text.strip()}}} of parameter {number}, whose "
                      f"shape {parameter_shape} has none; use an index into that shape ({{}} for the whole "
                      "parameter)", 0, anchors)
    if kind is not None and kind not in _ALIAS_KINDS:
        raise Invalid(f"input_output_alias kind {kind!r} is neither may-alias nor must-alias", 0, anchors)


def _index(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",")) if text.strip() else ()


def _subshape(shape: Shape, index: tuple[int, ...]) -> Shape | None:
    """The element of a (nested) tuple shape at ``index``, or None when there is none."""
    for position in index:
        if not shape.is_tuple or not 0 <= position < len(shape.tuple_shapes):
            return None
        shape = shape.tuple_shapes[position]
    return shape
