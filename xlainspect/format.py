"""All rendering of results as text tables and JSON, so the CLI only chooses what to print."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from xlainspect.stats import ModuleStats


def stats_json(stats: Iterable[ModuleStats]) -> str:
    """One JSON array with one object per module, in input order."""
    return json.dumps([item.to_json() for item in stats], indent=2)


def _counts(counts: Mapping[str, int], limit: int | None = None) -> str:
    items = list(counts.items())
    shown = items if limit is None else items[:limit]
    text = ", ".join(f"{key or '(none)'} {value}" for key, value in shown)
    if limit is not None and len(items) > limit:
        text += f", ... ({len(items) - limit} more)"
    return text or "none"


def stats_text(stats: Iterable[ModuleStats], top_opcodes: int = 12) -> str:
    """A block per module: sizes, fusions by kind, custom-calls by target, the most frequent opcodes."""
    blocks = []
    for item in stats:
        blocks.append("\n".join([
            f"{item.file} [{item.index}] {item.module}",
            f"  computations  {item.computations}",
            f"  instructions  {item.instructions}",
            f"  fusions       {item.fusions}" + (f" ({_counts(item.fusions_by_kind)})" if item.fusions else ""),
            f"  custom-calls  {sum(item.custom_calls.values())}"
            + (f" ({_counts(item.custom_calls)})" if item.custom_calls else ""),
            f"  opcodes       {_counts(item.opcodes, top_opcodes)}",
        ]))
    return "\n\n".join(blocks)


def _program_row(program) -> dict:
    return {
        "name": program.name,
        "description": program.description,
        "default_batch_size": program.default_batch_size,
        "shapes": {name: list(shape) for name, shape in program.shapes(program.default_batch_size).items()},
        "parameters": dict(program.hyperparameters),
        "outputs": list(program.output_names),
    }


def programs_json(programs: Iterable) -> str:
    """The synthetic programs as one JSON array."""
    return json.dumps([_program_row(program) for program in programs], indent=2)


def programs_text(programs: Iterable) -> str:
    """One block per program: name and description, then inputs with shapes and the hyperparameters."""
    blocks = []
    for program in programs:
        row = _program_row(program)
        shapes = ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}" for name, shape in row["shapes"].items())
        lines = [f"{row['name']:<12} {row['description']}", f"{'':<12} inputs: {shapes}"]
        if row["default_batch_size"] is not None:
            lines.append(f"{'':<12} batch size: {row['default_batch_size']} (--batch-size)")
        if row["parameters"]:
            lines.append(f"{'':<12} parameters: " + ", ".join(f"{k}={v}" for k, v in row["parameters"].items()))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
