"""The Model Explorer adapter, its overlays and ``xlainspect view``.

What the graphs should hold is worked out here from the parsed module and the census, independently of the
converter: per graph, the instructions of its computation at the top level and, in each fusion's layer, exactly its
fused computation's instructions plus the kernel node. Overlay values are compared with the ``time --json`` and
``diff --json`` they come from.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.hlo import HloModule, Instruction
from xlainspect.measure.records import KernelTime, TimingRecord, TimingSummary
from xlainspect.output.model_explorer import (
    build_view,
    graph_computations,
    graphs_json,
    module_graphs,
    write_mapping,
)

REPO = Path(__file__).resolve().parents[1]
JAX_DUMP = REPO / "dumps/cpu/dpsgd_mnist/jax"
TF_DUMP = REPO / "dumps/cpu/dpsgd_mnist/tf"
LOOPS = REPO / "tests/data/jax-0.12.0.1/jit_loops_and_branches.cpu_after_optimizations.txt"
KERNEL = "ynn_fusion.20"  # the dpsgd_mnist JAX step's costliest kernel: a YNNPACK convolution fusion


def module(path: Path) -> HloModule:
    return read_hlo(path / "after_optimizations.txt" if path.is_dir() else path)[0]


def expected_layout(m: HloModule, computation: str, namespace: str = "") -> Counter[tuple[str, str]]:
    """(namespace, label) of every node the graph of ``computation`` should hold: its instructions, and inside each
    fusion's layer its fused computation's instructions (nested fusions nested) and the fusion itself."""
    result: Counter[tuple[str, str]] = Counter()
    for instruction in m.computation(computation).instructions:
        if instruction.opcode == "fusion":
            layer = f"{namespace}/{instruction.name}" if namespace else instruction.name
            (body,) = [c.name for c in instruction.called_computations if c.role == "calls"]
            result += expected_layout(m, body, layer)
            result[(layer, instruction.name)] += 1
        else:
            result[(namespace, instruction.name)] += 1
    return result


def attrs(node: dict) -> dict[str, str]:
    return {item["key"]: item["value"] for item in node["attrs"]}


COMMITTED = sorted(REPO.glob("dumps/**/after_optimizations.txt")) + [LOOPS]


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(REPO)) for p in COMMITTED])
def test_every_graph_holds_its_computation_and_every_fusion_is_a_layer_of_exactly_its_fused_ops(path):
    """Every committed module (CPU and GPU, JAX, TF and PyTorch/XLA, loops, async ops): see :func:`check_graphs`."""
    m = module(path)
    graphs = module_graphs(m)
    assert [g["id"] for g in graphs.graphs] == [c.name for c in graph_computations(m)]
    assert graphs.graphs[0]["id"] == m.entry_name
    check_graphs(m, graphs)


def test_every_corpus_module_converts_to_graphs_with_distinct_ids_and_edges_that_land(corpus_file):
    """XLA's own test modules, hand-written: they reuse names such as ``p0`` in every computation, which the graphs'
    node ids must not (Model Explorer would merge the nodes and misroute their edges)."""
    for m in read_hlo(corpus_file):
        check_graphs(m, module_graphs(m))


def check_graphs(m: HloModule, graphs) -> None:
    """Each graph holds its computation's instructions, each fusion's fused ops in its layer; node ids are distinct;
    every operand edge comes from that operand's node, in the same computation; subgraph links name graphs."""
    names = {g["id"] for g in graphs.graphs}
    for graph in graphs.graphs:
        got = Counter((node["namespace"], node["label"]) for node in graph["nodes"])
        assert got == expected_layout(m, graph["id"]), (m.name, graph["id"])
        ids = [node["id"] for node in graph["nodes"]]
        assert len(ids) == len(set(ids)), (m.name, graph["id"])
        by_id = {node["id"]: node for node in graph["nodes"]}
        places = instructions_by_place(m, graph["id"])
        for node in graph["nodes"]:
            edges = node.get("incomingEdges", ())
            assert {edge["sourceNodeId"] for edge in edges} <= set(by_id), (m.name, node["id"])
            assert set(node.get("subgraphIds", ())) <= names
            namespace = node["namespace"]
            instruction = places[(namespace, node["label"])]
            if instruction.opcode == "fusion":  # the kernel node, at its layer's output: fed by the body's root
                body = m.computation(next(c.name for c in instruction.called_computations if c.role == "calls"))
                expected = [value_place(namespace, body.root.name, places)]
            elif instruction.opcode == "parameter" and instruction.computation != graph["id"]:
                # a fused parameter: fed by the fusion's operand of its number, outside the layer
                parent, _, fusion = namespace.rpartition("/")
                operands = places[(namespace, fusion)].operands
                number = instruction.parameter_number or 0
                expected = [value_place(parent, operands[number], places)] if number < len(operands) else []
            else:  # each operand edge comes from that operand, in the same computation (so the same layer)
                expected = [value_place(namespace, operand, places) for operand in instruction.operands]
            sources = [by_id[edge["sourceNodeId"]] for edge in edges]
            assert [(s["namespace"], s["label"]) for s in sources] == expected, (m.name, node["id"])


def value_place(namespace: str, operand: str, places: dict[tuple[str, str], Instruction]) -> tuple[str, str]:
    """Where the node giving an operand's value sits: beside the reader, or, for a fusion, in its own layer."""
    layer = f"{namespace}/{operand}" if namespace else operand
    return (layer, operand) if (layer, operand) in places and (namespace, operand) not in places else \
        (namespace, operand)


def instructions_by_place(m: HloModule, computation: str, namespace: str = "") -> dict[tuple[str, str], Instruction]:
    """(namespace, name) -> instruction for every node of a computation's graph, as :func:`expected_layout` places
    them (a fusion's name in its own layer)."""
    result = {}
    for instruction in m.computation(computation).instructions:
        if instruction.opcode == "fusion":
            layer = f"{namespace}/{instruction.name}" if namespace else instruction.name
            (body,) = [c.name for c in instruction.called_computations if c.role == "calls"]
            result.update(instructions_by_place(m, body, layer))
            result[(layer, instruction.name)] = instruction
        else:
            result[(namespace, instruction.name)] = instruction
    return result


def test_loop_and_branch_bodies_are_graphs_their_instructions_open():
    m = module(LOOPS)
    graphs = {g["id"]: g for g in module_graphs(m).graphs}
    controls = [i for c in graph_computations(m) for i in c.instructions if i.opcode in ("while", "conditional")]
    assert {i.opcode for i in controls} == {"while", "conditional"}
    for instruction in controls:
        (node,) = [n for n in graphs[instruction.computation]["nodes"] if n["label"] == instruction.name]
        assert node["subgraphIds"] == [c.name for c in instruction.called_computations]
        assert set(node["subgraphIds"]) <= set(graphs)


def test_a_kernel_node_carries_the_census_and_its_metadata_and_its_layer_is_wired_through():
    m = module(JAX_DUMP)
    kernel = {k.name: k for k in census(m).kernels}[KERNEL]
    nodes = {n["id"]: n for n in module_graphs(m).graphs[0]["nodes"]}
    node = nodes[KERNEL]
    instruction = m.entry.by_name[KERNEL]
    assert attrs(node) == {
        "opcode": "fusion", "shape": "f32[128,5,5,32]", "layout": "{3,2,1,0}", "kind": "__ynn_fusion",
        "bytes_read": str(kernel.bytes_read), "bytes_written": str(kernel.bytes_written), "flops": str(kernel.flops),
        "framework_op": instruction.metadata.op_name, "source": str(instruction.metadata.source)}
    assert attrs(node)["source"] == "xlainspect/programs/mnist_cnn.py:45"
    # Into the layer at its fused parameters, from the fusion's operands; out of it from the kernel node.
    (body,) = [c.name for c in instruction.called_computations]
    fused = m.computation(body)
    assert [e["sourceNodeId"] for e in node["incomingEdges"]] == [fused.root.name]
    for parameter in fused.parameters:
        (edge,) = nodes[parameter.name]["incomingEdges"]
        assert edge["sourceNodeId"] == instruction.operands[parameter.parameter_number]
    users = [n for n in nodes.values() if n["namespace"] != KERNEL
             and any(e["sourceNodeId"] == KERNEL for e in n.get("incomingEdges", ()))]
    assert users


def test_a_different_module_gives_different_nodes():
    jax_nodes = {n["label"] for g in module_graphs(module(JAX_DUMP)).graphs for n in g["nodes"]}
    tf_nodes = {n["label"] for g in module_graphs(module(TF_DUMP)).graphs for n in g["nodes"]}
    assert KERNEL in jax_nodes and KERNEL not in tf_nodes


def raw_dump_folder(folder: Path) -> Path:
    """A folder as XLA's --xla_dump_to writes it: the step before and after optimization with side files, and a
    JAX helper module."""
    step = "module_0007.jit_dpsgd_mnist_step"
    shutil.copy(JAX_DUMP / "after_optimizations.txt", folder / f"{step}.cpu_after_optimizations.txt")
    shutil.copy(JAX_DUMP / "before_optimizations.txt", folder / f"{step}.before_optimizations.txt")
    (folder / f"{step}.cpu_after_optimizations-buffer-assignment.txt").write_text("BufferAssignment:\n")
    (folder / f"{step}.cpu_after_optimizations-memory-usage-report.txt").write_text("Total bytes used: 1\n")
    (folder / f"{step}.ir-no-opt.ll").write_text("; ModuleID\n")
    (folder / f"{step}.hlo_module_config.txt").write_text("debug_options {}\n")
    shutil.copy(REPO / "tests/data/jit_layer.cpu_after_optimizations.txt",
                folder / "module_0001.jit__normal.cpu_after_optimizations.txt")
    return folder


@pytest.mark.requires_explorer
def test_the_extension_adapter_reads_files_filed_dumps_and_raw_xla_dump_folders(tmp_path):
    from model_explorer.utils import convert_adapter_response

    from xlainspect.output.model_explorer.main import HloAdapter

    expected = module_graphs(module(JAX_DUMP)).to_json()
    for path in (JAX_DUMP, JAX_DUMP / "after_optimizations.txt", raw_dump_folder(tmp_path)):
        assert convert_adapter_response(HloAdapter().convert(str(path), {})) == expected, path
    assert HloAdapter.metadata.fileExts == ["txt", "hlo"]


def timing_file(path: Path, dump: Path, kernels: dict[str, tuple[float, float]]) -> Path:
    """A ``time --json`` file in which JAX ran the dump's module, with (µs per step, share) per kernel."""
    manifest = json.loads((dump / "manifest.json").read_text())
    summary = TimingSummary("0.10.2", 0.1, 2.0, 2.0, 2.0, 2.0, 2.0, 3, manifest["module_name"],
                            tuple(KernelTime(name, 1, us, share) for name, (us, share) in kernels.items()), "")
    path.write_text(json.dumps(TimingRecord(manifest["program"], None, {"jax": summary}).to_json()))
    return path


def overlay(view, model: int, name: str) -> dict[str, object]:
    (found,) = [o for o in view.models[model].overlays if o.name == name]
    data = found.to_json()
    return {node: result["value"] for graph in data.values() for node, result in graph["results"].items()}


def test_time_share_and_bytes_overlays_equal_the_timing_json_and_the_census(tmp_path):
    times = {KERNEL: (812.5, 0.4062), "broadcast_maximum_fusion": (20.25, 0.0101)}
    view = build_view(str(JAX_DUMP), timing=str(timing_file(tmp_path / "t.json", JAX_DUMP, times)))
    record = json.loads((tmp_path / "t.json").read_text())
    kernels = {k["hlo_op"]: k for k in record["frameworks"]["jax"]["kernels"]}
    assert overlay(view, 0, "time per step (µs)") == {name: k["total_us"] for name, k in kernels.items()}
    assert overlay(view, 0, "share of step (%)") == {name: round(100 * k["share"], 3) for name, k in kernels.items()}
    assert overlay(view, 0, "share of step (%)")[KERNEL] == 40.62
    cells = census(module(JAX_DUMP)).kernels
    assert overlay(view, 0, "bytes read + written") == {k.name: k.bytes_read + k.bytes_written for k in cells}


def test_timing_of_another_module_is_refused_naming_the_file(tmp_path):
    other = timing_file(tmp_path / "t.json", REPO / "dumps/cpu/linear_grad/jax", {"fusion": (1.0, 0.5)})
    with pytest.raises(InputError, match=f"^{other}: no framework there ran module jit_dpsgd_mnist_step"):
        build_view(str(JAX_DUMP), timing=str(other))


@pytest.fixture(scope="module")
def diff_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("diff") / "diff.json"
    with pytest.MonkeyPatch.context() as patch:
        lines: list[str] = []
        patch.setattr("click.echo", lambda text="", **_: lines.append(str(text)))
        assert main(["diff", str(JAX_DUMP), str(TF_DUMP), "--json"]) == 0
    path.write_text("\n".join(lines))
    return path


def test_the_diff_overlay_equals_the_diff_json_on_each_side(diff_json):
    diff = json.loads(diff_json.read_text())
    one = build_view(str(JAX_DUMP), diff=str(diff_json))
    expected_a = {**{p["a"]: "matched" for p in diff["matched"]}, **{n: "only A" for n in diff["only_a"]}}
    assert overlay(one, 0, "diff") == expected_a
    assert "only A" in expected_a.values()
    one_b = build_view(str(TF_DUMP), diff=str(diff_json))
    assert overlay(one_b, 0, "diff") == {**{p["b"]: "matched" for p in diff["matched"]},
                                         **{n: "only B" for n in diff["only_b"]}}


def test_a_diff_of_other_modules_is_refused(diff_json):
    with pytest.raises(InputError, match=f"^{diff_json}: the diff compares jit_dpsgd_mnist_step and "):
        build_view(str(REPO / "dumps/cpu/linear_grad/jax"), diff=str(diff_json))


def test_two_sides_share_node_ids_exactly_where_the_diff_pairs_kernels(diff_json):
    diff = json.loads(diff_json.read_text())
    view = build_view(str(JAX_DUMP), str(TF_DUMP))
    assert [m.name for m in view.models] == ["A_jax", "B_tf"] or [m.name for m in view.models] == ["jax", "tf"]
    ids_a = {n["id"] for g in view.models[0].graphs.graphs for n in g["nodes"]}
    nodes_b = {n["id"]: n["label"] for g in view.models[1].graphs.graphs for n in g["nodes"]}
    shared = {node_id: label for node_id, label in nodes_b.items() if node_id in ids_a}
    first_partner: dict[str, str] = {}
    for pair in diff["matched"]:
        if pair["b"] not in first_partner and pair["a"] not in first_partner.values():
            first_partner[pair["b"]] = pair["a"]
    assert shared == {a: b for b, a in first_partner.items()}
    assert len(shared) > 10
    # The B side's diff overlay sits on those ids; its values are the JSON's.
    values_b = overlay(view, 1, "diff")
    for b_name, a_name in first_partner.items():
        assert values_b[a_name] == "matched", b_name
    assert sorted(values_b.values()) == sorted(["matched"] * len({p["b"] for p in diff["matched"]})
                                               + ["only B"] * len(diff["only_b"]))
    url = view.url_data()
    assert url["sync"] == {"mode": "match_node_id"}
    assert [p["selectedGraphId"] for p in url["uiState"]["paneStates"]] == [module(JAX_DUMP).entry_name,
                                                                           module(TF_DUMP).entry_name]


def test_the_mapping_file_links_each_kernel_to_all_its_partners_and_nothing_else(diff_json, tmp_path):
    """``view A B --mapping``: one entry per connected group of the diff's pairs, in the graphs' node ids, so a kernel
    the diff pairs with two (a one-to-many group, which node ids alone cannot link) maps to both."""
    diff = json.loads(diff_json.read_text())
    view = build_view(str(JAX_DUMP), str(TF_DUMP), diff=str(diff_json))
    label = [{n["id"]: n["label"] for g in model.graphs.graphs for n in g["nodes"]} for model in view.models]
    path = write_mapping(view.mapping, tmp_path / "mapping.json")
    entries = json.loads(path.read_text())["mappingEntries"]
    group_of = {}
    for number, entry in enumerate(entries):
        for side, key in enumerate(("leftNodeIds", "rightNodeIds")):
            for node_id in entry[key]:
                kernel = (side, label[side][node_id])
                assert kernel not in group_of  # groups are disjoint
                group_of[kernel] = number
    partners: dict[tuple[int, str], set[tuple[int, str]]] = {}
    for pair in diff["matched"]:
        a, b = (0, pair["a"]), (1, pair["b"])
        assert group_of[a] == group_of[b], pair
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    assert set(group_of) == set(partners)  # only paired kernels: no only-A / only-B ones
    for number, entry in enumerate(entries):  # a group is connected through the pairs, not merged by chance
        members = {item for item, group in group_of.items() if group == number}
        reached, frontier = set(), [next(iter(members))]
        while frontier:
            item = frontier.pop()
            if item not in reached:
                reached.add(item)
                frontier.extend(partners[item])
        assert reached == members
    many = [e for e in entries if len(e["leftNodeIds"]) + len(e["rightNodeIds"]) > 2]
    assert many and all(len(e["leftNodeIds"]) >= 1 and len(e["rightNodeIds"]) >= 1 for e in entries)
    # a module paired with itself maps every kernel to its own copy, one to one
    same = build_view(str(JAX_DUMP), str(JAX_DUMP)).mapping["mappingEntries"]
    assert all(e["leftNodeIds"] == e["rightNodeIds"] and len(e["leftNodeIds"]) == 1 for e in same)
    assert len(same) == len(census(module(JAX_DUMP)).kernels)


def test_mapping_needs_two_modules_and_a_folder_that_exists(capsys, tmp_path):
    assert main(["view", str(JAX_DUMP), "--mapping", str(tmp_path / "m.json"), "--no-browser"]) == 2
    assert "--mapping needs two modules" in capsys.readouterr().err
    with pytest.raises(InputError, match="does not exist; create it"):
        write_mapping({"mappingEntries": []}, tmp_path / "no" / "m.json")
    assert list(tmp_path.iterdir()) == []


def test_bad_paths_are_one_line_errors_naming_the_file(capsys, tmp_path):
    assert main(["view", str(tmp_path / "nope"), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xlainspect: {tmp_path / 'nope'}: no such file") and err.count("\n") == 1
    assert main(["view", str(JAX_DUMP), "--timing", str(tmp_path / "t.json"), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xlainspect: {tmp_path / 't.json'}: ") and err.count("\n") == 1
    (tmp_path / "d.json").write_text("{")
    assert main(["view", str(JAX_DUMP), "--diff", str(tmp_path / "d.json"), "--no-browser"]) == 1
    assert capsys.readouterr().err == (f"xlainspect: {tmp_path / 'd.json'}: not JSON (Expecting property name "
                                       "enclosed in double quotes at line 1); give 'xlainspect diff --json' output\n")


def test_conversion_is_linear_in_the_module_size():
    """Twice the kernels, about twice the time (a quadratic step would take four times as long)."""
    small, big = (parse_hlo(_chain_of_fusions(n)) for n in (1500, 3000))
    # The parameter, the kernels, and 3 fused ops each.
    assert sum(len(g["nodes"]) for g in module_graphs(big).graphs) == 1 + 3000 + 3 * 3000
    one = _best_of(lambda: module_graphs(small), 5)
    two = _best_of(lambda: module_graphs(big), 5)
    assert two < 3.0 * one, (one, two)


def _best_of(run, times: int) -> float:
    """The fastest of ``times`` runs, the garbage collector paused (its passes grow with the heap, not the work)."""
    import gc

    best = float("inf")
    for _ in range(times):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def _chain_of_fusions(n: int) -> str:
    """A module whose entry runs ``n`` loop fusions one after another, each fusing a multiply and an exponential."""
    bodies = [f"%fused_{i} (p.{i}: f32[64]) -> f32[64] {{\n  %p.{i} = f32[64]{{0}} parameter(0)\n"
              f"  %m.{i} = f32[64]{{0}} multiply(%p.{i}, %p.{i})\n  ROOT %e.{i} = f32[64]{{0}} exponential(%m.{i})\n}}"
              for i in range(n)]
    entry = ["ENTRY %main (a: f32[64]) -> f32[64] {", "  %a = f32[64]{0} parameter(0)"]
    previous = "%a"
    for i in range(n):
        root = "ROOT " if i == n - 1 else ""
        entry.append(f"  {root}%f.{i} = f32[64]{{0}} fusion({previous}), kind=kLoop, calls=%fused_{i}")
        previous = f"%f.{i}"
    return "HloModule chain, is_scheduled=true\n\n" + "\n\n".join(bodies) + "\n\n" + "\n".join(entry) + "\n}\n"


# -- the server ---------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_view(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "xlainspect", "view", *args, "--no-browser"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), (url, process.stderr.read() if process.poll() is not None else "")
    return process, url


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    with opener.open(url, timeout=30) as response:
        return response.read()


@pytest.mark.requires_explorer
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_view_serves_on_loopback_and_leaves_no_server_behind(stop):
    process, url = _start_view(str(JAX_DUMP))
    try:
        port = int(url.split(":")[2].split("/")[0])
        (server,) = _children(process.pid)
        served = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/load_graphs_json?graph_index=0"))
        assert served == json.loads(graphs_json(module_graphs(module(JAX_DUMP), "jax")))
        assert json.loads(_get(f"http://127.0.0.1:{port}/api/v1/check_new_version"))["version"] == ""
        assert b"fonts.gstatic.com" not in _get(f"http://127.0.0.1:{port}/")
        process.send_signal(stop)
        status = process.wait(30)
        assert status == (130 if stop == signal.SIGINT else -signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server) and not _listens(port)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # waits, and closes the pipes


@pytest.mark.requires_explorer
def test_model_explorer_registers_the_adapter_of_the_extension_module_and_runs_its_convert_command():
    """What ``model-explorer --extensions=xlainspect.output.model_explorer`` does: import ``<module>.main``, find the
    Adapter subclass its metaclass registered, and run the frontend's ``convert`` command through its runner."""
    import importlib

    from model_explorer.adapter_runner import AdapterRunner
    from model_explorer.extension_class_processor import ExtensionClassProcessor
    from model_explorer.registered_extension import RegisteredExtension
    from model_explorer.utils import convert_adapter_response

    importlib.import_module("xlainspect.output.model_explorer.main")
    registered = ExtensionClassProcessor.get_registry()["xlainspect.output.model_explorer.main.HloAdapter"]
    assert registered["type"] == "adapter" and registered["metadata"].id == "xlainspect_hlo"
    extension = RegisteredExtension(metadata=registered["metadata"], type="adapter", ext_class=registered["cls"])
    command = {"cmdId": "convert", "modelPath": str(LOOPS), "settings": {}, "deleteAfterConversion": False,
               "extensionId": "xlainspect_hlo"}
    response = convert_adapter_response(AdapterRunner().run_adapter(extension=extension, cmd=command))
    assert response == module_graphs(module(LOOPS)).to_json()
    assert len(response["graphs"]) == len(graph_computations(module(LOOPS))) > 1
