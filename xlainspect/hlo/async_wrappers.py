"""XLA's async shorthand: ``custom-call-start(...)`` stands for an ``async-start`` whose wrapped computation holds
one instruction, and XLA's parser builds that computation. So does xlainspect, so that computation and instruction
counts agree with XLA's; the computations made are marked ``synthetic``.
"""

from __future__ import annotations

from dataclasses import replace

from xlainspect.hlo.model import CalledComputation, Computation, Instruction, make_instruction
from xlainspect.hlo.opcodes import async_wrapped_opcode


def with_async_wrappers(computations: list[Computation]) -> list[Computation]:
    """Adds the computations XLA's parser creates for the async shorthand, each before the computation using it.

    ``s = ((f32[8]), f32[8], u32[]) custom-call-start(p), custom_call_target="foo"`` means an ``async-start`` whose
    wrapped computation holds one parameter per operand and the custom-call. XLA builds that computation; so does
    this, so that computation and instruction counts agree with XLA's.
    """
    taken = {computation.name for computation in computations}
    result: list[Computation] = []
    for computation in computations:
        instructions = list(computation.instructions)
        by_name = {instruction.name: instruction for instruction in instructions}
        for position, start in enumerate(instructions):
            wrapped_opcode = async_wrapped_opcode(start.opcode)
            if wrapped_opcode is None or not start.opcode.endswith("-start"):
                continue
            name = _free_name("async_wrapped", taken)
            result.append(_async_wrapper(name, wrapped_opcode, start, by_name, computation.execution_thread))
            instructions[position] = replace(start, implicit_calls=(CalledComputation("async_wrapped", name),))
        result.append(replace(computation, instructions=tuple(instructions)) if instructions != list(
            computation.instructions) else computation)
    return result


def _async_wrapper(name: str, opcode: str, start: Instruction, by_name: dict[str, Instruction],
                   thread: str) -> Computation:
    params = []
    param_names: set[str] = set()
    for number, operand in enumerate(start.operands):
        param_name = _free_name("async_param", param_names)
        params.append(make_instruction(param_name, "parameter", by_name[operand].shape, (), {}, name, False,
                                       start.line, None, number, start.frames))
    # The start's shape is ((operand shapes), result shape, context...): the wrapped op produces element 1.
    shape = start.shape.tuple_shapes[1] if len(start.shape.tuple_shapes) >= 2 else start.shape
    root = make_instruction(opcode, opcode, shape, tuple(p.name for p in params), start.attributes, name, True,
                            start.line, None, None, start.frames)
    return Computation(name, (*params, root), False, "", thread, start.line, synthetic=True)


def _free_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base.N`` for the smallest N not yet taken; records the name as taken."""
    name = base
    counter = 0
    while name in taken:
        counter += 1
        name = f"{base}.{counter}"
    taken.add(name)
    return name
