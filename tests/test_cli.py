"""Tests for the CLI: output, JSON shape, exit codes and one-line errors."""

from __future__ import annotations

import json
import textwrap

import networkx as nx
import pytest

from xlainspect.cli import main

GOOD = textwrap.dedent("""\
    HloModule good

    %body (p: f32[2]) -> f32[2] {
      %p = f32[2]{0} parameter(0)
      ROOT %e = f32[2]{0} exponential(%p)
    }

    ENTRY %main (x: f32[2]) -> f32[2] {
      %x = f32[2]{0} parameter(0)
      %f = f32[2]{0} fusion(%x), kind=kLoop, calls=%body
      ROOT %c = f32[2]{0} custom-call(%f), custom_call_target="my_target"
    }
    """)

TWO_MODULES = GOOD + "// -----\n" + GOOD.replace("HloModule good", "HloModule second")


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.hlo"
    path.write_text(GOOD)
    return path


def test_stats_json(capsys, tmp_path, good):
    two = tmp_path / "two.txt"
    two.write_text(TWO_MODULES)
    status, out, err = run(capsys, "stats", str(good), str(two), "--json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert [(item["file"], item["index"], item["module"]) for item in data] == [
        (str(good), 0, "good"), (str(two), 0, "good"), (str(two), 1, "second")]
    first = data[0]
    assert first["computations"] == 2 and first["instructions"] == 5
    assert first["opcodes"] == {"parameter": 2, "exponential": 1, "fusion": 1, "custom-call": 1}
    assert first["fusions"] == {"total": 1, "by_kind": {"kLoop": 1}}
    assert first["custom_calls"] == {"my_target": 1}


def test_stats_text(capsys, good):
    status, out, _ = run(capsys, "stats", str(good))
    assert status == 0
    assert out.splitlines()[0] == f"{good} [0] good"
    assert "  fusions       1 (kLoop 1)" in out.splitlines()
    assert "  custom-calls  1 (my_target 1)" in out.splitlines()


def test_stats_directory_skips_files_that_are_not_hlo(capsys, tmp_path, good):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "module_0001.jit_f.cpu_after_optimizations.txt").write_text(GOOD)
    (dump / "module_0001.jit_f.cpu_after_optimizations-buffer-assignment.txt").write_text(
        "BufferAssignment:\nallocation 0: size 8\n")
    (dump / "module_0001.jit_f.ir-no-opt.ll").write_text("; ModuleID\n")
    status, out, _ = run(capsys, "stats", str(dump), "--json")
    assert status == 0
    assert [item["file"] for item in json.loads(out)] == [str(dump / "module_0001.jit_f.cpu_after_optimizations.txt")]


def test_parse_error_is_one_line_with_location_and_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.hlo"
    bad.write_text(GOOD.replace("%x = f32[2]{0} parameter(0)", "%x = f32[2]{0} parameter(zero)"))
    status, out, err = run(capsys, "stats", str(bad))
    assert status == 1 and out == ""
    assert err == f"{bad}:9:28: expected a parameter number in parameter(zero)\n"


def test_missing_path_is_one_line(capsys, tmp_path):
    status, _, err = run(capsys, "stats", str(tmp_path / "nope.hlo"))
    assert status == 1
    assert err == f"xlainspect: {tmp_path / 'nope.hlo'}: no such file or directory; give an HLO text file or a " \
                  "folder of them\n"


def test_empty_directory_is_one_line(capsys, tmp_path):
    status, _, err = run(capsys, "stats", str(tmp_path))
    assert status == 1
    assert err == f"xlainspect: {tmp_path}: no HLO text files (*.txt, *.hlo) in this directory; give a dump folder " \
                  "or an HLO file\n"


def test_usage_error_exits_2(capsys):
    status, _, err = run(capsys, "stats")
    assert status == 2
    assert "Missing argument 'PATHS...'" in err


@pytest.mark.parametrize("fmt", ["graphml", "json"])
def test_graph_writes_a_readable_graph(capsys, tmp_path, good, fmt):
    out_file = tmp_path / f"g.{fmt}"
    status, out, err = run(capsys, "graph", str(good), "--format", fmt, "-o", str(out_file))
    assert (status, err) == (0, "")
    assert out == f"wrote {out_file}: 5 nodes, 4 edges ({fmt}, module good)\n"
    if fmt == "graphml":
        graph = nx.read_graphml(out_file, force_multigraph=True)
    else:
        graph = nx.node_link_graph(json.loads(out_file.read_text()), edges="edges")
    assert graph.nodes["f"]["fusion_kind"] == "kLoop"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_graph_module_index_out_of_range(capsys, tmp_path, good):
    status, _, err = run(capsys, "graph", str(good), "--module", "3", "-o", str(tmp_path / "g.graphml"))
    assert status == 1
    assert err == f"xlainspect: {good}: has 1 module(s); --module must be 0 to 0\n"
    assert not (tmp_path / "g.graphml").exists()


def test_graph_into_missing_folder_is_one_line(capsys, tmp_path, good):
    status, _, err = run(capsys, "graph", str(good), "-o", str(tmp_path / "missing" / "g.graphml"))
    assert status == 1
    assert err.startswith(f"xlainspect: {tmp_path / 'missing' / 'g.graphml'}: cannot write here:")
    assert err.count("\n") == 1
