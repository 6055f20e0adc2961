"""The Model Explorer extension: ``model-explorer --extensions=xlainspect.output.model_explorer`` loads this module
(Model Explorer imports ``<extension>.main``) and with it an adapter that opens HLO text files and dump folders.

The adapter converts with :func:`~xlainspect.output.model_explorer.module_graphs`; overlays are Model Explorer node
data files, which ``xlainspect view --timing/--diff`` makes and loads for you.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from model_explorer import Adapter, AdapterMetadata, ModelExplorerGraphs

from xlainspect.hlo.files import hlo_module_at
from xlainspect.output.model_explorer._graphs import module_graphs


@dataclasses.dataclass
class _Graph:
    """A converted graph in the shape Model Explorer's response converter reads (``dataclasses.asdict`` of each
    graph), holding the plain dicts :func:`module_graphs` builds rather than ``graph_builder`` objects made from them
    only to be turned back into dicts."""

    id: str
    nodes: list[dict[str, Any]]


class HloAdapter(Adapter):
    """Optimized HLO text (``*.txt``, ``*.hlo``) or a dump folder, as graphs with fusions as layers."""

    metadata = AdapterMetadata(
        id="xlainspect_hlo",
        name="xlainspect HLO adapter",
        description="Optimized XLA HLO text and dump folders: computations as graphs, fusions as layers.",
        source_repo="xlainspect",
        fileExts=["txt", "hlo"],
    )

    def __init__(self) -> None:
        super().__init__()

    def convert(self, model_path: str, settings: dict) -> ModelExplorerGraphs:
        del settings  # the frontend's settings concern other adapters' constants
        graphs = module_graphs(hlo_module_at(model_path))
        return {"graphs": [_Graph(graph["id"], graph["nodes"]) for graph in graphs.graphs]}
