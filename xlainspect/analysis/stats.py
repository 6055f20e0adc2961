"""Per-module statistics: how big a module is, what it is made of, how many kernels XLA fused.

"Top-level" fusions are fusion instructions outside fusion bodies (in the entry, loop bodies, branches...): the
fused kernels a backend launches. Fusions nested inside fusion bodies (GPU's nested Triton fusions) are parts of
one kernel and are not counted. Custom-calls are counted the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from xlainspect.hlo import HloModule, Instruction


@dataclass(frozen=True)
class ModuleStats:
    """Counts for one module.

    Attributes:
        file: the file the module was read from.
        index: the module's position in its file, from 0.
        module: the module's name.
        computations: number of computations (fusion bodies included).
        instructions: number of instructions of all computations.
        opcodes: instructions per opcode, most frequent first.
        fusions_by_kind: top-level fusions per kind: ``kLoop``, ``kInput``, ``kOutput``, and for ``kCustom`` the
            backend config's kind (``__ynn_fusion``, ``__triton_gemm``...), or ``kCustom`` when it names none.
        custom_calls: top-level custom-calls per target.
    """

    file: str
    index: int
    module: str
    computations: int
    instructions: int
    opcodes: dict[str, int] = field(default_factory=dict)
    fusions_by_kind: dict[str, int] = field(default_factory=dict)
    custom_calls: dict[str, int] = field(default_factory=dict)

    @property
    def fusions(self) -> int:
        return sum(self.fusions_by_kind.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``xlainspect stats --json`` prints for this module."""
        return {
            "file": self.file,
            "index": self.index,
            "module": self.module,
            "computations": self.computations,
            "instructions": self.instructions,
            "opcodes": self.opcodes,
            "fusions": {"total": self.fusions, "by_kind": self.fusions_by_kind},
            "custom_calls": self.custom_calls,
        }


def fusion_kind_label(instruction: Instruction) -> str:
    """The kind a fusion is counted under: its ``kind=``, or for ``kCustom`` the backend's fusion kind."""
    kind = instruction.fusion_kind or "kUnknown"
    if kind == "kCustom":
        return instruction.backend_fusion_kind or kind
    return kind


def top_level_instructions(module: HloModule) -> list[Instruction]:
    """Instructions outside fusion bodies: what runs as its own kernel or host operation."""
    bodies = module.fusion_computations
    return [i for c in module.computations if c.name not in bodies for i in c.instructions]


def module_stats(module: HloModule) -> ModuleStats:
    """Counts computations, instructions, opcodes, top-level fusions by kind and custom-calls by target."""
    opcodes = Counter(instruction.opcode for instruction in module.instructions())
    fusions: Counter[str] = Counter()
    custom_calls: Counter[str] = Counter()
    for instruction in top_level_instructions(module):
        if instruction.opcode == "fusion":
            fusions[fusion_kind_label(instruction)] += 1
        elif instruction.opcode == "custom-call":
            custom_calls[instruction.custom_call_target or ""] += 1
    return ModuleStats(
        file=module.source,
        index=module.index,
        module=module.name,
        computations=len(module.computations),
        instructions=module.instruction_count,
        opcodes=dict(opcodes.most_common()),
        fusions_by_kind=dict(sorted(fusions.items())),
        custom_calls=dict(sorted(custom_calls.items())),
    )
