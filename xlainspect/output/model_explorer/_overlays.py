"""Node data for Model Explorer: per-kernel values it colours nodes by and aggregates over layers.

Model Explorer's node data is, per graph id, ``results`` (node id -> ``{"value": ...}``, a number or a string,
optionally with its own ``bgColor``) and a ``gradient`` or ``thresholds`` mapping values to colours. Overlays here:

- ``time_overlay`` and ``share_overlay``: each kernel's µs per step and its share of the step, from
  ``xlainspect time --json`` (checked to belong to the module, as ``diff --timing`` checks it);
- ``bytes_overlay``: bytes each kernel reads and writes, from the census;
- ``diff_overlay``: from ``xlainspect diff --json``, ``matched``, ``only A`` or ``only B`` per kernel.

Each is a :class:`NodeOverlay`, written as the JSON Model Explorer's ``add_node_data`` takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlainspect.analysis.census import Census
from xlainspect.errors import InputError
from xlainspect.measure.records import TimingSummary
from xlainspect.output.model_explorer._graphs import ModuleGraphs

# Light to dark red, as render's --color time heat.
_HEAT = [{"stop": 0, "bgColor": "#fff5f0"}, {"stop": 0.5, "bgColor": "#fb6a4a"}, {"stop": 1, "bgColor": "#99000d"}]
_BYTES = [{"stop": 0, "bgColor": "#f7fbff"}, {"stop": 1, "bgColor": "#08519c"}]
DIFF_COLOURS = {"matched": "#c7e9c0", "only A": "#fdae6b", "only B": "#9ecae1"}


@dataclass(frozen=True)
class NodeOverlay:
    """One node data set: its name, and per graph id, node id -> value.

    Attributes:
        name: shown in Model Explorer's node data panel.
        values: graph id -> node id -> value (a number, or a string for categories).
        colours: for string values, the colour of each category; empty for numbers (a gradient colours them).
    """

    name: str
    values: Mapping[str, Mapping[str, float | str]]
    colours: Mapping[str, str] = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        """Model Explorer's ``ModelNodeData``: graph id -> ``GraphNodeData``."""
        data = {}
        for graph, values in self.values.items():
            if not values:
                continue
            if self.colours:
                results = {node: {"value": value, "bgColor": self.colours.get(str(value), "#ffffff")}
                           for node, value in values.items()}
                data[graph] = {"name": self.name, "results": results, "showExpandedSummaryOnGroupNode": True,
                               "showLabelCountColumnsInChildrenStatsTable": True}
            else:
                data[graph] = {"name": self.name, "results": {node: {"value": value} for node, value in values.items()},
                               "gradient": _BYTES if "bytes" in self.name else _HEAT}
        return data

    def json_text(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


def _by_graph(graphs: ModuleGraphs, values: Mapping[str, float | str]) -> dict[str, dict[str, float | str]]:
    """Kernel name -> value, placed on the kernel's node in the graph that holds it."""
    result: dict[str, dict[str, float | str]] = {}
    for graph, ids in graphs.node_ids.items():
        result[graph] = {ids[name]: value for name, value in values.items() if name in ids}
    return result


def time_overlay(graphs: ModuleGraphs, timing: TimingSummary) -> NodeOverlay:
    """µs per step of each timed kernel (all its launches in one step)."""
    return NodeOverlay("time per step (µs)", _by_graph(graphs, {k.hlo_op: k.total_us for k in timing.kernels}))


def share_overlay(graphs: ModuleGraphs, timing: TimingSummary) -> NodeOverlay:
    """Each timed kernel's share of the median step, in percent."""
    return NodeOverlay("share of step (%)",
                       _by_graph(graphs, {k.hlo_op: round(100 * k.share, 3) for k in timing.kernels}))


def bytes_overlay(graphs: ModuleGraphs, kernels: Census) -> NodeOverlay:
    """Bytes each kernel reads plus writes per launch."""
    return NodeOverlay("bytes read + written",
                       _by_graph(graphs, {k.name: k.bytes_read + k.bytes_written for k in kernels.kernels}))


def diff_overlay(graphs: ModuleGraphs, diff: Mapping[str, Any], side: str, source: str = "the diff") -> NodeOverlay:
    """``matched``, ``only A`` or ``only B`` per kernel of one side, from ``diff --json`` output.

    Args:
        diff: the JSON object ``xlainspect diff --json`` prints (its ``matched``, ``only_a``, ``only_b``).
        side: ``"a"`` or ``"b"``, which side of the diff these graphs are.
        source: the file it came from, for messages.

    Raises:
        InputError: the JSON lacks the pairing.
    """
    try:
        matched = {pair[side] for pair in diff["matched"]}
        only = diff[f"only_{side}"]
    except (KeyError, TypeError) as e:
        raise InputError(f"{source}: not 'xlainspect diff --json' output (no {e} in its pairing)") from e
    values: dict[str, str] = dict.fromkeys(matched, "matched")
    values.update(dict.fromkeys(only, f"only {side.upper()}"))
    return NodeOverlay("diff", _by_graph(graphs, values), DIFF_COLOURS)
