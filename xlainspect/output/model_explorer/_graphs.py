"""An HLO module as Model Explorer's graph JSON: computations as graphs, fusions as collapsible layers.

Model Explorer (``ai-edge-model-explorer``) draws a graph collection: graphs of nodes, each node with an id, a label,
a ``namespace`` path that nests it in collapsible layers, attributes shown in its side panel, incoming edges, and
``subgraphIds`` that open other graphs of the collection. Here:

- the entry, and every computation a ``while``, ``conditional``, ``call`` or async wrapper runs, is a graph; the
  instruction that runs it links to it (``subgraphIds``), so loop and branch bodies are one click away;
- a fusion is a layer named after it, holding its fused computation's instructions (nested fusions nest) and, as the
  layer's output, a node for the fusion instruction itself: the kernel, which carries the census's figures and which
  overlays colour. An edge from a fusion enters the layer at its fused parameter and leaves from the kernel node;
- reducers, comparators and other computations applied inside one op are not graphs: they are part of that op.

Node ids are instruction names (unique in a module as XLA writes them; a fusion body reached twice prefixes its
second copy with the fusion's name, and a fused instruction whose name is taken in the graph, as in hand-written HLO
that reuses ``p0`` in every computation, gets its layer's path), or what ``ids`` says for some of them: ``view A B``
gives a B kernel the name of its A partner so that Model Explorer's "match node id" navigation follows the diff's
pairing.

Everything is built as plain dicts and lists in one pass over the instructions (the census is one more pass), so a
100,000-instruction module converts in seconds; :func:`graphs_json` writes the JSON Model Explorer loads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xlainspect.analysis.census import CONTROL_OPCODES, Census, Kernel, census
from xlainspect.hlo import Computation, HloModule, Instruction

# Roles through which a computation becomes a graph of its own (run by control flow or an async wrapper).
_GRAPH_ROLES = frozenset({"condition", "body", "true_computation", "false_computation", "branch_computations",
                          "async_wrapped"})


@dataclass(frozen=True)
class ModuleGraphs:
    """A module converted for Model Explorer.

    Attributes:
        label: the model's name in Model Explorer (the module's name unless the caller named it).
        graphs: Model Explorer graphs as JSON-ready dicts, the entry first.
        node_ids: by graph id, instruction name -> node id for every kernel (what overlays key on).
    """

    label: str
    graphs: tuple[dict[str, Any], ...]
    node_ids: Mapping[str, Mapping[str, str]]

    def to_json(self) -> dict[str, Any]:
        """What Model Explorer's ``load_graphs_json`` serves: the graphs of one model, which its web app labels with
        the model's name (node data is aimed at a model by that name)."""
        return {"graphs": list(self.graphs)}


def graph_computations(module: HloModule) -> list[Computation]:
    """The computations shown as graphs: the entry first (Model Explorer opens it), then those control flow and async
    wrappers run, in text order."""
    shown = {module.entry_name}
    pending = [module.entry]
    while pending:
        for instruction in pending.pop().instructions:
            if not _runs_bodies(instruction):
                continue
            for called in instruction.called_computations:
                if called.name not in shown and called.name in module.by_name:
                    shown.add(called.name)
                    pending.append(module.by_name[called.name])
    return [module.entry] + [computation for computation in module.computations
                             if computation.name in shown and computation.name != module.entry_name]


def _runs_bodies(instruction: Instruction) -> bool:
    opcode = instruction.opcode
    if opcode in CONTROL_OPCODES or opcode == "async-start":
        return True
    # Only an async pair's start wraps a computation (XLA's shorthand ``custom-call-start(...)``); asking every
    # instruction for its called computations would parse the call attributes of the whole module.
    return opcode.endswith("-start") and any(called.role in _GRAPH_ROLES
                                             for called in instruction.called_computations)


def module_graphs(module: HloModule, label: str | None = None, ids: Mapping[str, str] | None = None,
                  kernels: Census | None = None) -> ModuleGraphs:
    """Converts a module to Model Explorer graphs.

    Args:
        label: the collection's label; default the module's name.
        ids: node ids to use instead of instruction names for some instructions (their names as keys).
        kernels: the module's census when the caller has it.
    """
    kernels = kernels if kernels is not None else census(module)
    by_name = {kernel.name: kernel for kernel in kernels.kernels}
    builder = _Builder(module, by_name, ids or {})
    shown = graph_computations(module)
    graph_names = {computation.name for computation in shown}
    graphs = []
    node_ids: dict[str, dict[str, str]] = {}
    for computation in shown:
        nodes: list[dict[str, Any]] = []
        builder.kernel_ids = node_ids.setdefault(computation.name, {})
        builder.emitted_bodies = set()
        # the graph's own instructions keep their ids; fused ones give way (see add_computation)
        builder.used_ids = {builder.ids.get(i.name, i.name) for i in computation.instructions}
        builder.add_computation(computation, nodes, "", "", graph_names)
        graphs.append({"id": computation.name, "nodes": nodes})
    return ModuleGraphs(label or module.name, tuple(graphs), node_ids)


def graphs_json(graphs: ModuleGraphs) -> str:
    """The collection as the JSON text Model Explorer loads (compact: a large module's is tens of megabytes)."""
    return json.dumps(graphs.to_json(), separators=(",", ":"))


class _Builder:
    """Emits the nodes of one graph; holds what every computation of the module shares."""

    def __init__(self, module: HloModule, kernels: Mapping[str, Kernel], ids: Mapping[str, str]) -> None:
        self.module = module
        self.kernels = kernels
        self.ids = ids
        self.kernel_ids: dict[str, str] = {}
        self.emitted_bodies: set[str] = set()
        self.used_ids: set[str] = set()  # node ids taken in the graph being built, its own instructions' from the start
        self.shape_texts: dict[int, tuple[str, str]] = {}
        self.shapes_seen: list[object] = []  # the parser shares Shape objects; print each once

    def add_computation(self, computation: Computation, nodes: list[dict[str, Any]], namespace: str, prefix: str,
                        graph_names: set[str], parameter_sources: tuple[str, ...] = ()) -> str:
        """Adds a computation's instructions to ``nodes`` under ``namespace``; returns its root's node id.

        Args:
            prefix: prepended to node ids (a fusion body emitted a second time in one graph).
            parameter_sources: for a fusion body, the node ids its parameters read (the fusion's operands).
        """
        ids = self.ids
        # Node id of each instruction's value: for a fusion, the kernel node at the layer's output.
        value_id: dict[str, str] = {}
        for instruction in computation.instructions:
            name = instruction.name
            own_id = prefix + ids.get(name, name)
            if namespace:  # a fused instruction: hand-written HLO reuses names across computations
                if own_id in self.used_ids:
                    own_id = self.unique_id(f"{namespace}/{name}")
                self.used_ids.add(own_id)
            edges = [{"sourceNodeId": value_id[operand], "sourceNodeOutputId": "0", "targetNodeInputId": str(i)}
                     for i, operand in enumerate(instruction.operands) if operand in value_id]
            if parameter_sources and instruction.opcode == "parameter":
                number = instruction.parameter_number or 0
                if number < len(parameter_sources):
                    edges = [{"sourceNodeId": parameter_sources[number], "sourceNodeOutputId": "0",
                              "targetNodeInputId": "0"}]
            node: dict[str, Any] = {"id": own_id, "label": name, "namespace": namespace,
                                    "attrs": self.attributes(instruction)}
            body = self.fusion_body(instruction)
            if body is not None:
                layer = f"{namespace}/{name}" if namespace else name
                body_prefix = prefix
                if body.name in self.emitted_bodies:  # one body fused twice: its instruction names would repeat
                    body_prefix = f"{own_id}/"
                self.emitted_bodies.add(body.name)
                operand_ids = tuple(value_id.get(operand, "") for operand in instruction.operands)
                root_id = self.add_computation(body, nodes, layer, body_prefix, graph_names, operand_ids)
                node["namespace"] = layer
                edges = [{"sourceNodeId": root_id, "sourceNodeOutputId": "0", "targetNodeInputId": "0"}]
            elif _runs_bodies(instruction):
                subgraphs = [called.name for called in instruction.called_computations if called.name in graph_names]
                if subgraphs:
                    node["subgraphIds"] = subgraphs
            if edges:
                node["incomingEdges"] = edges
            nodes.append(node)
            value_id[name] = own_id
            kernel = self.kernels.get(name)
            if kernel is not None and kernel.computation == computation.name:
                self.kernel_ids[name] = own_id
        return value_id[computation.root.name]

    def unique_id(self, wanted: str) -> str:
        """``wanted``, or ``wanted#2``, ``#3``... : the first that no node of the graph has."""
        candidate, number = wanted, 1
        while candidate in self.used_ids:
            number += 1
            candidate = f"{wanted}#{number}"
        return candidate

    def fusion_body(self, instruction: Instruction) -> Computation | None:
        if instruction.opcode != "fusion":
            return None
        for called in instruction.called_computations:
            if called.role == "calls" and called.name in self.module.by_name:
                return self.module.by_name[called.name]
        return None

    def attributes(self, instruction: Instruction) -> list[dict[str, str]]:
        """The side panel: opcode, shape, layout; for a kernel its kind, bytes and FLOPs; framework op, source."""
        shape = instruction.shape
        texts = self.shape_texts.get(id(shape))
        if texts is None:
            text = str(shape)
            cut = len(text) if shape.is_tuple or shape.layout is None else text.index("{")
            texts = self.shape_texts[id(shape)] = (text[:cut], text[cut:])
            self.shapes_seen.append(shape)  # keeps id() unique while cached
        attrs = [{"key": "opcode", "value": instruction.opcode}, {"key": "shape", "value": texts[0]}]
        if texts[1]:
            attrs.append({"key": "layout", "value": texts[1]})
        kernel = self.kernels.get(instruction.name)
        if kernel is not None and kernel.computation == instruction.computation:
            attrs += [{"key": "kind", "value": kernel.kind},
                      {"key": "bytes_read", "value": str(kernel.bytes_read)},
                      {"key": "bytes_written", "value": str(kernel.bytes_written)},
                      {"key": "flops", "value": str(kernel.flops)}]
            if kernel.trips != 1 or not kernel.trips_known:
                attrs.append({"key": "runs_per_step", "value": f"{kernel.trips}{'' if kernel.trips_known else '+'}"})
        if "metadata" in instruction.attributes:
            metadata = instruction.metadata
            if metadata is not None:
                op = metadata.op_name or metadata.op_type
                if op:
                    attrs.append({"key": "framework_op", "value": op})
                if metadata.source is not None:
                    attrs.append({"key": "source", "value": str(metadata.source)})
        return attrs
