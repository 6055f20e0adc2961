"""A module as a networkx graph: one node per instruction, one edge per operand use, call edges into callees.

The graph follows networkx conventions so the usual tools apply: a ``MultiDiGraph`` (``add(%p, %p)`` uses ``p``
twice), node key = instruction name, operand edges keyed by operand index, and only plain strings, numbers and
booleans as attributes so that ``networkx.write_graphml`` and JSON export work unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xlainspect.hlo import HloModule, Instruction

if TYPE_CHECKING:
    import networkx


def node_keys(module: HloModule) -> dict[tuple[str, str], str]:
    """Graph key of each instruction, by (computation, name).

    Keys are instruction names. XLA keeps names unique in a module, but hand-written HLO (XLA's own tests) may reuse
    a name in two computations; every instruction with such a name is then keyed ``computation/name``.
    """
    counts = Counter(instruction.name for instruction in module.instructions())
    return {
        (instruction.computation, instruction.name): (
            instruction.name if counts[instruction.name] == 1 else f"{instruction.computation}/{instruction.name}"
        )
        for instruction in module.instructions()
    }


def to_networkx(module: HloModule) -> networkx.MultiDiGraph:
    """Builds the instruction graph of a module, fusion and loop bodies included.

    Nodes carry ``opcode``, ``shape``, ``element_type``, ``computation``, ``is_root``, ``in_fusion_body``,
    ``is_entry_computation``, ``line``, and where they apply ``fusion_kind``, ``backend_fusion_kind``,
    ``custom_call_target``, ``op_name``, ``op_type``, ``source_file``, ``source_line``, ``bytes``, ``calls``.
    Operand edges run operand -> user with key = operand index and ``kind="operand"``. Call edges run from a calling
    instruction to the root of each computation it calls, with key ``"<role>:<computation>"``, ``kind="call"`` and
    ``role`` (``calls``, ``to_apply``, ``body``...), so a walk can enter fusion and loop bodies.

    Raises:
        FrameworkUnavailable: networkx is not installed.
    """
    nx = _networkx()
    keys = node_keys(module)
    fusion_bodies = module.fusion_computations
    graph = nx.MultiDiGraph(module=module.name, entry=module.entry_name, source=module.source)
    for computation in module.computations:
        in_fusion = computation.name in fusion_bodies
        for instruction in computation.instructions:
            attributes = _node_attributes(instruction, in_fusion, computation.is_entry)
            graph.add_node(keys[(computation.name, instruction.name)], **attributes)
    for computation in module.computations:
        for instruction in computation.instructions:
            user = keys[(computation.name, instruction.name)]
            for index, operand in enumerate(instruction.operands):
                graph.add_edge(keys[(computation.name, operand)], user, key=index, kind="operand", index=index)
            for called in instruction.called_computations:
                root = module.computation(called.name).root
                graph.add_edge(user, keys[(called.name, root.name)], key=f"{called.role}:{called.name}", kind="call",
                               role=called.role)
    return graph


def _node_attributes(instruction: Instruction, in_fusion: bool, in_entry: bool) -> dict[str, Any]:
    shape = instruction.shape
    attributes: dict[str, Any] = {
        "name": instruction.name,
        "opcode": instruction.opcode,
        "shape": str(shape),
        "element_type": shape.element_type,
        "computation": instruction.computation,
        "is_root": instruction.is_root,
        "in_fusion_body": in_fusion,
        "is_entry_computation": in_entry,
        "line": instruction.line,
    }
    if shape.byte_size is not None:
        attributes["bytes"] = shape.byte_size
    optional = {
        "fusion_kind": instruction.fusion_kind,
        "backend_fusion_kind": instruction.backend_fusion_kind,
        "custom_call_target": instruction.custom_call_target,
        "parameter_number": instruction.parameter_number,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    metadata = instruction.metadata
    if metadata is not None:
        if metadata.op_name:
            attributes["op_name"] = metadata.op_name
        if metadata.op_type:
            attributes["op_type"] = metadata.op_type
        if metadata.source is not None:
            attributes["source_file"] = metadata.source.file
            attributes["source_line"] = metadata.source.line
    if instruction.called_computations:
        attributes["calls"] = ",".join(called.name for called in instruction.called_computations)
    return attributes


def attach_kernel_times(graph: networkx.MultiDiGraph, times_us: Mapping[str, float], step_us: float) -> int:
    """Sets ``time_us`` and ``share`` (of the step) on the nodes of timed kernels; returns how many were found.

    ``times_us`` maps HLO instruction names to time per step, as ``xlainspect time`` attributes it; nodes keyed
    ``computation/name`` (repeated names) are matched by their ``name`` attribute.
    """
    attached = 0
    for key, data in graph.nodes(data=True):
        time_us = times_us.get(data.get("name", key))
        if time_us is not None:
            data["time_us"] = float(time_us)
            data["share"] = float(time_us) / step_us if step_us else 0.0
            attached += 1
    return attached


def graph_to_json(graph: networkx.MultiDiGraph) -> str:
    """The graph as node-link JSON (``{"nodes": [...], "edges": [...]}``), as ``networkx.node_link_graph`` reads it."""
    nx = _networkx()
    data = nx.node_link_data(graph, edges="edges")
    return json.dumps(data, indent=1, sort_keys=False)


def write_graph(graph: networkx.MultiDiGraph, path: str, fmt: str) -> None:
    """Writes the graph as ``graphml`` or ``json`` (node-link) to ``path``, atomically.

    Raises:
        InputError: the output cannot be written.
    """
    from xlainspect.hlo.files import atomic_write_text

    if fmt == "graphml":
        nx = _networkx()
        text = "\n".join(nx.generate_graphml(graph)) + "\n"
    else:
        text = graph_to_json(graph) + "\n"
    atomic_write_text(path, text)


def _networkx() -> Any:
    try:
        import networkx
    except ImportError as e:
        from xlainspect.errors import FrameworkUnavailable

        raise FrameworkUnavailable("networkx is not installed; install it with 'pip install networkx'") from e
    return networkx
