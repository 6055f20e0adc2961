"""The diff's whole pairing as a Model Explorer sync mapping, for kernels that pair one-to-many.

``view A B`` syncs the panes by node id ("match node id"): each paired B kernel carries its A partner's id. An id
names one node, so where the diff pairs one kernel with several on the other side (TF running in two launches what
JAX runs in one, say) only the first pair is linked. Model Explorer's "Upload mapping from computer" sync mode takes
a JSON file of entries, each a group of left node ids and the right node ids they map to, and follows every one; a
click then selects the first partner and outlines the rest. :func:`sync_mapping` builds that file's content: one
entry per connected group of the pairing (two A kernels sharing one B kernel are one group).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xlainspect.errors import InputError
from xlainspect.hlo.files import atomic_write_text
from xlainspect.output.model_explorer._graphs import ModuleGraphs


def sync_mapping(graphs_a: ModuleGraphs, graphs_b: ModuleGraphs, pairing: Mapping[str, Any]) -> dict[str, Any]:
    """Model Explorer's sync navigation data for the diff's pairing: ``{"mappingEntries": [{"leftNodeIds": [...],
    "rightNodeIds": [...]}, ...]}`` in the node ids of A's (left) and B's (right) graphs.

    Args:
        pairing: ``diff --json`` output (its ``matched`` pairs), of these two modules.
    """
    ids_a, ids_b = _kernel_node_ids(graphs_a), _kernel_node_ids(graphs_b)
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(item: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    order: list[tuple[str, str]] = []
    for pair in pairing.get("matched", ()):
        a, b = ("a", ids_a.get(pair["a"])), ("b", ids_b.get(pair["b"]))
        if a[1] is None or b[1] is None:
            continue
        for item in (a, b):
            if item not in parent:
                order.append(item)
        parent[root(a)] = root(b)
    groups: dict[tuple[str, str], dict[str, list[str]]] = {}
    for item in order:  # the diff's order, so each group lists its kernels as the diff met them
        group = groups.setdefault(root(item), {"leftNodeIds": [], "rightNodeIds": []})
        group["leftNodeIds" if item[0] == "a" else "rightNodeIds"].append(item[1])
    return {"mappingEntries": list(groups.values())}


def _kernel_node_ids(graphs: ModuleGraphs) -> dict[str, str]:
    """Kernel name -> its node id, over all graphs of the module (loop bodies' kernels included)."""
    ids: dict[str, str] = {}
    for per_graph in graphs.node_ids.values():
        ids.update(per_graph)
    return ids


def write_mapping(mapping: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Writes the mapping as JSON, atomically (a partial file never stands under the name); returns the path.

    Raises:
        InputError: the folder does not exist or cannot be written.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"{target}: its folder {target.parent} does not exist; create it or pick another path")
    atomic_write_text(target, json.dumps(mapping, indent=1))
    return target
