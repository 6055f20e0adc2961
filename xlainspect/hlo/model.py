"""The HLO module model: modules, computations, instructions, and the metadata that ties them to framework code.

Entities are frozen dataclasses built by :mod:`xlainspect.hlo.parse`. Each keeps the attribute text exactly as written,
so nothing the text said is lost, and offers parsed views (``backend_config``, ``metadata``, ...) computed on first
use: a large module has hundreds of thousands of instructions, and most callers look at a few fields of a few.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from xlainspect.hlo.attributes import parse_backend_config, parse_called_names, parse_key_values, unquote
from xlainspect.hlo.metadata import NO_FRAMES, OpMetadata, StackFrames, metadata_from_text
from xlainspect.hlo.shape import Shape

# Attributes that name computations an instruction calls, in XLA's spelling; the attribute name is the role.
CALL_ROLES: tuple[str, ...] = (
    "calls",
    "to_apply",
    "condition",
    "body",
    "true_computation",
    "false_computation",
    "branch_computations",
    "called_computations",
    "async_wrapped_computation",
    "scatter",
    "select",
)


@dataclass(frozen=True)
class CalledComputation:
    """One computation an instruction calls, and in which role (``calls``, ``to_apply``, ``body``...)."""

    role: str
    name: str


@dataclass(frozen=True)
class Instruction:
    """One HLO instruction.

    Attributes:
        name: the name as written, without ``%``.
        opcode: the opcode as the text spells it (``exponential``, ``custom-call``, ``all-reduce-start``...).
        shape: the result shape.
        operands: operand names in order (a name may repeat: ``add(%p, %p)``).
        attributes: every ``key=value`` after the operands, values as written, in order.
        computation: name of the computation holding this instruction.
        is_root: whether it is its computation's root (``ROOT``, or the last instruction when none says so).
        line: 1-based line in the source text where the instruction starts.
        literal: a constant's literal as written (``{...}`` when elided), else None.
        parameter_number: a parameter's number, else None.
        synthetic: True for a ``get-tuple-element`` the text never defines but writes as an operand ``%t#i``
            (XLA's compact form, the default in dumps since jax 0.11): XLA's parser creates the same instruction,
            named ``t_i``, just before its first user, and every later ``%t#i`` of the computation uses it. With it,
            counts, graphs and fingerprints of a compact dump equal those of the same module printed in full.
    """

    name: str
    opcode: str
    shape: Shape
    operands: tuple[str, ...]
    attributes: Mapping[str, str]
    computation: str
    is_root: bool = False
    line: int = 0
    literal: str | None = None
    parameter_number: int | None = None
    frames: StackFrames = field(default=NO_FRAMES, repr=False, compare=False)
    implicit_calls: tuple[CalledComputation, ...] = ()
    synthetic: bool = False

    @cached_property
    def called_computations(self) -> tuple[CalledComputation, ...]:
        """Computations this instruction calls, with their roles, in attribute order.

        For XLA's async shorthand (``custom-call-start(...)``) this is the wrapped computation the parser made, in
        the role ``async_wrapped``; the attributes written on the shorthand belong to the wrapped instruction.
        """
        if self.implicit_calls:
            return self.implicit_calls
        attributes = self.attributes
        return tuple(
            CalledComputation(role, name)
            for role in attributes
            if role in CALL_ROLES
            for name in parse_called_names(attributes[role])
        )

    @property
    def fusion_kind(self) -> str | None:
        """``kLoop``, ``kInput``, ``kOutput`` or ``kCustom`` for a fusion, else None."""
        return self.attributes.get("kind") if self.opcode == "fusion" else None

    @cached_property
    def backend_config(self) -> dict[str, Any] | str | None:
        """The backend config as a dict when it is JSON (strict, quoted or relaxed), else its text; None if absent."""
        text = self.attributes.get("backend_config")
        return None if text is None else parse_backend_config(text)

    @property
    def backend_fusion_kind(self) -> str | None:
        """The kind a ``kCustom`` fusion's backend config names (``__triton_gemm``, ``__ynn_fusion``...), else None."""
        config = self.backend_config
        if not isinstance(config, dict):
            return None
        for key in ("fusion_backend_config", "fusion_config"):
            inner = config.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("kind"), str):
                return inner["kind"]
        return None

    @cached_property
    def metadata(self) -> OpMetadata | None:
        """The framework op and source location this instruction came from, or None without ``metadata=``."""
        text = self.attributes.get("metadata")
        return None if text is None else metadata_from_text(text, self.frames)

    @property
    def custom_call_target(self) -> str | None:
        """A custom-call's target, e.g. ``lapack_spotrf_ffi`` or ``__cublas$gemm``, else None."""
        target = self.attributes.get("custom_call_target")
        return None if target is None else unquote(target)

    @property
    def sharding(self) -> str | None:
        """The ``sharding={...}`` text, braces included, or None."""
        return self.attributes.get("sharding")

    @cached_property
    def frontend_attributes(self) -> Mapping[str, str]:
        """``frontend_attributes={k="v",...}`` as a dict of unquoted strings (empty when absent)."""
        text = self.attributes.get("frontend_attributes")
        return {} if text is None else parse_key_values(text)

    @cached_property
    def control_predecessors(self) -> tuple[str, ...]:
        """Names of instructions that must run before this one though no data flows between them."""
        text = self.attributes.get("control-predecessors")
        return () if text is None else parse_called_names(text)


_new_object = object.__new__
_set_attribute = object.__setattr__


def make_instruction(name: str, opcode: str, shape: Shape, operands: tuple[str, ...], attributes: Mapping[str, str],
                     computation: str, is_root: bool, line: int, literal: str | None, parameter_number: int | None,
                     frames: StackFrames) -> Instruction:
    """Builds an Instruction without the frozen dataclass's ``__init__``, for the parser's inner loop.

    A frozen dataclass sets each field through ``object.__setattr__``; filling ``__dict__`` at once builds the same
    value in less than half the time, which is a tenth of the parse time of a large module.
    """
    instruction = _new_object(Instruction)
    _set_attribute(instruction, "__dict__", {
        "name": name, "opcode": opcode, "shape": shape, "operands": operands, "attributes": attributes,
        "computation": computation, "is_root": is_root, "line": line, "literal": literal,
        "parameter_number": parameter_number, "frames": frames, "implicit_calls": (), "synthetic": False,
    })
    return instruction


@dataclass(frozen=True)
class Computation:
    """A computation: the entry, a fusion body, a loop body, a reducer...

    Attributes:
        name: the name as written, without ``%``.
        instructions: in text order (XLA prints them in a valid order; the parser keeps it).
        is_entry: whether this is the module's entry computation.
        signature: the parameter list and result shape as written (``(p: f32[2]) -> f32[2]``), or "".
        execution_thread: the ``execution_thread="..."`` after the closing brace, or "".
        line: 1-based line of the computation's header.
        synthetic: True for a computation the text does not spell out but XLA's parser creates, as it does for
            the async shorthand ``custom-call-start(...)``; counts then agree with XLA's.
    """

    name: str
    instructions: tuple[Instruction, ...]
    is_entry: bool = False
    signature: str = ""
    execution_thread: str = ""
    line: int = 0
    synthetic: bool = False

    @cached_property
    def root(self) -> Instruction:
        """The root instruction."""
        for instruction in self.instructions:
            if instruction.is_root:
                return instruction
        raise AssertionError(f"computation {self.name} has no root")  # the parser guarantees one

    @cached_property
    def by_name(self) -> Mapping[str, Instruction]:
        """Instructions by name."""
        return {instruction.name: instruction for instruction in self.instructions}

    @property
    def parameters(self) -> tuple[Instruction, ...]:
        """Parameter instructions ordered by parameter number."""
        params = [i for i in self.instructions if i.opcode == "parameter"]
        return tuple(sorted(params, key=lambda i: i.parameter_number or 0))


@dataclass(frozen=True)
class HloModule:
    """A parsed HLO module.

    Attributes:
        name: the ``HloModule`` name, or the entry computation's name for text without that line.
        attributes: the header's ``key=value`` pairs as written (``entry_computation_layout``, ``is_scheduled``...).
        computations: in text order.
        entry_name: name of the entry computation.
        stack_frames: the stack-frame tables (empty for modules without them).
        source: the file the module was read from, or ``"<string>"``.
        index: position of the module in its file, from 0.
    """

    name: str
    attributes: Mapping[str, str]
    computations: tuple[Computation, ...]
    entry_name: str
    stack_frames: StackFrames = field(default=NO_FRAMES, repr=False)
    source: str = "<string>"
    index: int = 0

    @cached_property
    def by_name(self) -> Mapping[str, Computation]:
        """Computations by name."""
        return {computation.name: computation for computation in self.computations}

    @property
    def entry(self) -> Computation:
        """The entry computation."""
        return self.by_name[self.entry_name]

    def computation(self, name: str) -> Computation:
        """The computation called ``name``.

        Raises:
            KeyError: no computation has that name.
        """
        return self.by_name[name]

    @cached_property
    def fusion_computations(self) -> frozenset[str]:
        """Names of computations that are fusion bodies (called by a ``fusion`` instruction's ``calls=``)."""
        return frozenset(
            called.name
            for computation in self.computations
            for instruction in computation.instructions
            if instruction.opcode == "fusion"
            for called in instruction.called_computations
            if called.role == "calls"
        )

    def instructions(self) -> Iterator[Instruction]:
        """Every instruction of every computation, fusion bodies included, in text order."""
        for computation in self.computations:
            yield from computation.instructions

    @property
    def instruction_count(self) -> int:
        return sum(len(computation.instructions) for computation in self.computations)

    @property
    def is_scheduled(self) -> bool:
        return self.attributes.get("is_scheduled") == "true"
