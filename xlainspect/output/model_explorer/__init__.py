"""HLO in Google's Model Explorer: an adapter (computations as graphs, fusions as collapsible layers), node data
overlays (time, share of the step, bytes, diff), and ``xlainspect view``, which serves one module or two side by side.

Converting needs nothing beyond xlainspect; serving and the extension module (``main``, which Model Explorer loads for
``model-explorer --extensions=xlainspect.output.model_explorer``) need the ``[explorer]`` extra.
"""

from xlainspect.output.model_explorer._graphs import ModuleGraphs, graph_computations, graphs_json, module_graphs
from xlainspect.output.model_explorer._mapping import sync_mapping, write_mapping
from xlainspect.output.model_explorer._overlays import (
    NodeOverlay,
    bytes_overlay,
    diff_overlay,
    share_overlay,
    time_overlay,
)
from xlainspect.output.model_explorer._view import RunningServer, View, ViewModel, build_view, serve

__all__ = ["ModuleGraphs", "NodeOverlay", "RunningServer", "View", "ViewModel", "build_view", "bytes_overlay",
           "diff_overlay", "graph_computations", "graphs_json", "module_graphs", "serve", "share_overlay",
           "sync_mapping", "time_overlay", "write_mapping"]
