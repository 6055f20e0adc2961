"""Tests for xlainspect.analysis.graph: node and edge structure, call edges, GraphML and JSON round trips."""

from __future__ import annotations

import json
import textwrap

import networkx as nx
import pytest

from xlainspect import parse_hlo
from xlainspect.analysis.graph import graph_to_json, node_keys, to_networkx, write_graph

MODULE = textwrap.dedent("""\
    HloModule m

    %fused (p0: f32[4], p1: f32[4]) -> f32[4] {
      %p0 = f32[4]{0} parameter(0)
      %p1 = f32[4]{0} parameter(1)
      ROOT %mul = f32[4]{0} multiply(%p0, %p1), metadata={op_type="Mul" op_name="model/mul" source_file="m.py" source_line=7}
    }

    %add (a: f32[], b: f32[]) -> f32[] {
      %a = f32[] parameter(0)
      %b = f32[] parameter(1)
      ROOT %sum = f32[] add(%a, %b)
    }

    ENTRY %main (x: f32[4]) -> f32[] {
      %x = f32[4]{0} parameter(0)
      %square = f32[4]{0} fusion(%x, %x), kind=kLoop, calls=%fused
      %zero = f32[] constant(0)
      ROOT %total = f32[] reduce(%square, %zero), dimensions={0}, to_apply=%add
    }
    """)


@pytest.fixture
def graph() -> nx.MultiDiGraph:
    return to_networkx(parse_hlo(MODULE))


def test_one_node_per_instruction(graph):
    assert set(graph.nodes) == {"p0", "p1", "mul", "a", "b", "sum", "x", "square", "zero", "total"}


def test_repeated_operand_gives_two_edges_keyed_by_operand_index(graph):
    edges = graph.get_edge_data("x", "square")
    assert set(edges) == {0, 1}
    assert all(data["kind"] == "operand" for data in edges.values())


def test_call_edges_enter_fusion_and_reducer_bodies(graph):
    assert graph.get_edge_data("square", "mul") == {"calls:fused": {"kind": "call", "role": "calls"}}
    assert graph.get_edge_data("total", "sum") == {"to_apply:add": {"kind": "call", "role": "to_apply"}}
    # A walk from the root reaches the fused multiply through the call edge.
    assert "mul" in nx.descendants(graph, "square")


def test_node_attributes(graph):
    mul = graph.nodes["mul"]
    assert mul["opcode"] == "multiply"
    assert mul["shape"] == "f32[4]{0}"
    assert mul["in_fusion_body"] is True
    assert mul["is_root"] is True
    assert (mul["op_name"], mul["op_type"], mul["source_file"], mul["source_line"]) == ("model/mul", "Mul", "m.py", 7)
    assert mul["bytes"] == 16
    square = graph.nodes["square"]
    assert square["fusion_kind"] == "kLoop"
    assert square["calls"] == "fused"
    assert square["is_entry_computation"] is True
    assert "fusion_kind" not in graph.nodes["zero"]
    assert graph.graph == {"module": "m", "entry": "main", "source": "<string>"}


def test_names_repeated_across_computations_are_qualified():
    module = parse_hlo(textwrap.dedent("""\
        c {
          p = f32[] parameter(0)
          ROOT r = f32[] negate(p)
        }
        ENTRY e {
          p = f32[] parameter(0)
          ROOT r = f32[] call(p), to_apply=c
        }
        """))
    keys = node_keys(module)
    assert keys[("c", "p")] == "c/p" and keys[("e", "p")] == "e/p"
    graph = to_networkx(module)
    assert set(graph.nodes) == {"c/p", "c/r", "e/p", "e/r"}
    assert graph.has_edge("e/r", "c/r")


def test_graphml_round_trip(tmp_path, graph):
    path = tmp_path / "g.graphml"
    write_graph(graph, str(path), "graphml")
    loaded = nx.read_graphml(path, force_multigraph=True)
    assert set(loaded.nodes) == set(graph.nodes)
    assert loaded.number_of_edges() == graph.number_of_edges()
    assert loaded.nodes["mul"]["source_line"] == 7


def test_json_round_trip(graph):
    data = json.loads(graph_to_json(graph))
    loaded = nx.node_link_graph(data, edges="edges")
    assert set(loaded.nodes) == set(graph.nodes)
    assert loaded.number_of_edges() == graph.number_of_edges()


@pytest.mark.requires_jax
def test_every_generated_dump_survives_graphml(tmp_path, jax_dumps):
    from xlainspect import read_hlo

    for path in jax_dumps[:12]:
        for module in read_hlo(path):
            graph = to_networkx(module)
            assert graph.number_of_nodes() == module.instruction_count
            operand_uses = sum(len(i.operands) for i in module.instructions())
            calls = sum(len(i.called_computations) for i in module.instructions())
            assert graph.number_of_edges() == operand_uses + calls
            out = tmp_path / "m.graphml"
            write_graph(graph, str(out), "graphml")
            assert nx.read_graphml(out, force_multigraph=True).number_of_nodes() == module.instruction_count


def test_kernel_times_attach_to_nodes(tmp_path, graph):
    from xlainspect.analysis.graph import attach_kernel_times

    assert attach_kernel_times(graph, {"square": 30.0, "total": 10.0, "not_a_node": 5.0}, step_us=50.0) == 2
    assert (graph.nodes["square"]["time_us"], graph.nodes["square"]["share"]) == (30.0, 0.6)
    assert "time_us" not in graph.nodes["x"]
    path = tmp_path / "timed.graphml"
    write_graph(graph, str(path), "graphml")
    assert nx.read_graphml(path, force_multigraph=True).nodes["total"]["share"] == 0.2
