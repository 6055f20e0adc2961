"""XLA's buffer assignment, as its ``*-buffer-assignment.txt`` dump writes it: which value lives in which allocation.

The compile-time memory figures (``memory_analysis()``) say how many bytes of temporaries a program needs; the buffer
assignment says whose they are. Each ``allocation N: size S, <kind>:`` line opens an allocation, and the
``value: <id name @pos> (size=..,offset=..): shape`` lines under it are the HLO values packed into it. Temporaries
are the allocations that are neither parameters, constants, thread-local scalars nor outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALLOCATION_RE = re.compile(r"^allocation (\d+): size (\d+)(.*):\s*$")
_VALUE_RE = re.compile(r"^ value: <\d+ (\S+) @\d+> \(size=(\d+),offset=(\d+)\): (.*)$")


@dataclass(frozen=True)
class BufferValue:
    """One HLO value in an allocation.

    Attributes:
        instruction: the instruction that defines it, with the tuple index XLA appends (``fusion.3{1}``) removed.
        index: that tuple index (``{1}``), or ``""`` for a whole value.
        size: bytes.
        offset: where it sits in its allocation.
        shape: its shape as written, layout included.
    """

    instruction: str
    index: str
    size: int
    offset: int
    shape: str


@dataclass(frozen=True)
class Allocation:
    """One buffer allocation and the values packed into it."""

    index: int
    size: int
    kinds: str
    values: tuple[BufferValue, ...]

    @property
    def is_temporary(self) -> bool:
        """Scratch the program needs while it runs: not a parameter, constant, output or thread-local scalar."""
        return not any(word in self.kinds for word in ("parameter", "constant", "thread-local", "maybe-live-out",
                                                       "output shape"))


def parse_buffer_assignment(text: str) -> tuple[Allocation, ...]:
    """The allocations of a buffer-assignment dump, in order; lines it does not know are skipped."""
    allocations: list[Allocation] = []
    current: tuple[int, int, str] | None = None
    values: list[BufferValue] = []
    for line in text.splitlines():
        opened = _ALLOCATION_RE.match(line)
        if opened:
            if current is not None:
                allocations.append(Allocation(*current, tuple(values)))
            current, values = (int(opened.group(1)), int(opened.group(2)), opened.group(3)), []
            continue
        value = _VALUE_RE.match(line)
        if value and current is not None:
            name, size, offset, shape = value.groups()
            instruction, brace, index = name.partition("{")
            values.append(BufferValue(instruction, brace + index, int(size), int(offset), shape.strip()))
        elif current is not None and line and not line.startswith(" "):
            allocations.append(Allocation(*current, tuple(values)))
            current, values = None, []
    if current is not None:
        allocations.append(Allocation(*current, tuple(values)))
    return tuple(allocations)


def largest_temporaries(allocations: tuple[Allocation, ...], most: int = 10) -> tuple[BufferValue, ...]:
    """The biggest array values in the temporary allocations: what the peak is made of, largest first."""
    values = [v for a in allocations if a.is_temporary for v in a.values if not v.shape.startswith("(")]
    return tuple(sorted(values, key=lambda v: (-v.size, v.instruction))[:most])
