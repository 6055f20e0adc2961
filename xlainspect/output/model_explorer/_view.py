"""``xlainspect view``: one module, or two side by side, opened in Model Explorer on the loopback address.

:func:`build_view` does the work that can fail on the user's input (reading the modules, the timing and diff files,
pairing the kernels) and converts everything to JSON, before any server starts. :func:`serve` then runs Model
Explorer's server in a child process (its own session, so a Ctrl-C in the terminal reaches only ``view``, which
stops it; the child also exits when ``view``'s process is gone, so nothing outlives it) and yields the URL.

Two modules share one page: the URL opens A in the left pane and B in the right with Model Explorer's "match node
id" navigation on, and B's paired kernels carry their A partner's node id (:mod:`._graphs`), so that a click on a
kernel in one graph selects its match in the other (Model Explorer syncs on clicks in the graph, not on picks from
its search results); tested in Chromium. Ids link one pair each; :attr:`View.mapping` holds the whole pairing as a
mapping file's content for the one-to-many pairs (:mod:`._mapping`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlainspect.analysis.census import census
from xlainspect.errors import FrameworkUnavailable, InputError, XlaInspectError
from xlainspect.hlo import HloModule
from xlainspect.output.model_explorer._graphs import ModuleGraphs, graphs_json, module_graphs
from xlainspect.output.model_explorer._mapping import sync_mapping
from xlainspect.output.model_explorer._overlays import (
    NodeOverlay,
    bytes_overlay,
    diff_overlay,
    share_overlay,
    time_overlay,
)

HOST = "127.0.0.1"
SERVER_START_S = 120.0  # Model Explorer's server imports flask and its extensions; a loaded CI machine is slow


@dataclass(frozen=True)
class ViewModel:
    """One side of the view: its graphs, JSON text, and overlays.

    Attributes:
        name: the model's name in Model Explorer (unique in the view: overlays are aimed at it).
        graphs: the converted module.
        overlays: node data sets for it.
    """

    name: str
    graphs: ModuleGraphs
    overlays: tuple[NodeOverlay, ...] = ()


@dataclass(frozen=True)
class View:
    """What ``view`` shows: one or two models; two are opened side by side with synced navigation."""

    models: tuple[ViewModel, ...]
    seconds: Mapping[str, float] = field(default_factory=dict)  # what each stage took: read, census, convert...
    mapping: Mapping[str, Any] | None = None  # two models: the whole pairing as a sync mapping (see ._mapping)

    def url_data(self) -> dict[str, Any]:
        """The ``data=`` parameter of Model Explorer's URL: the models, their node data, the panes and the sync."""
        models = [{"url": f"graphs://{model.name}/{index}"} for index, model in enumerate(self.models)]
        node_data, targets = [], []
        for model in self.models:
            for overlay in model.overlays:
                node_data.append(f"node_data://{overlay.name}/{len(node_data)}")
                targets.append(model.name)
        data: dict[str, Any] = {"models": models}
        if node_data:
            data["nodeData"], data["nodeDataTargets"] = node_data, targets
        if len(self.models) == 2:
            data["uiState"] = {"paneStates": [
                {"deepestExpandedGroupNodeIds": [], "selectedNodeId": "",
                 "selectedGraphId": model.graphs.graphs[0]["id"],
                 "selectedCollectionLabel": model.name, "widthFraction": 0.5, "selected": index == 0}
                for index, model in enumerate(self.models)]}
            data["sync"] = {"mode": "match_node_id"}
        return data


def build_view(path_a: str, path_b: str | None = None, timing: str | None = None, diff: str | None = None,
               module: str | None = None, module_b: str | None = None) -> View:
    """Reads one or two modules and turns them, with their overlays, into what Model Explorer loads.

    Args:
        path_a: an HLO file or a dump folder (xlainspect's, or XLA's own ``--xla_dump_to``).
        path_b: a second one, shown beside A with navigation synced by the diff's pairing.
        timing: ``xlainspect time --json`` output: time per kernel and share of the step, for each side whose
            module the file timed.
        diff: ``xlainspect diff --json`` output: matched / only-A / only-B; with one path, its side is the one whose
            module the diff names; with two, its pairing is used instead of pairing them here.
        module, module_b: ``--module`` selectors for A and B.

    Raises:
        InputError: a path, timing or diff file that cannot be read or does not belong to the modules.
        HloParseError: a file that is not HLO.
    """
    from xlainspect.analysis.diff import diff_census
    from xlainspect.runners.sides import resolve_side

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    sides = [resolve_side(path, None, "dumps", "cpu", None, selector)
             for path, selector in ((path_a, module), (path_b, module_b or module)) if path is not None]
    modules = [side.read() for side in sides]
    seconds["read"] = time.perf_counter() - start
    start = time.perf_counter()
    censuses = [census(m) for m in modules]
    pairing: dict[str, Any] | None = _read_json(diff, "diff") if diff is not None else None
    if pairing is None and len(modules) == 2:
        pairing = diff_census(censuses[0], censuses[1]).to_json()
    seconds["census"] = time.perf_counter() - start
    start = time.perf_counter()
    names = _model_names([side.label for side in sides])
    ids_b = _synced_ids(modules[0], modules[1], pairing) if len(modules) == 2 and pairing else {}
    models = []
    for index, (side, m, kernels) in enumerate(zip(sides, modules, censuses)):
        graphs = module_graphs(m, names[index], ids_b if index == 1 else None, kernels)
        overlays = [bytes_overlay(graphs, kernels)]
        if timing is not None:
            overlays += _timing_overlays(graphs, timing, side.path, m)
        if pairing is not None:
            letter = "ab"[index] if len(modules) == 2 else _diff_side(pairing, m, diff or "")
            if len(modules) == 2:
                _check_diff_side(pairing, letter, m, diff)
            overlays.append(diff_overlay(graphs, pairing, letter, diff or "the diff"))
        models.append(ViewModel(names[index], graphs, tuple(overlays)))
    mapping = sync_mapping(models[0].graphs, models[1].graphs, pairing) if len(models) == 2 and pairing else None
    seconds["convert"] = time.perf_counter() - start
    return View(tuple(models), seconds, mapping)


def _model_names(labels: list[str]) -> list[str]:
    """Model names for Model Explorer: the sides' labels, made distinct (two folders both called ``jax``)."""
    clean = [re.sub(r"[^\w.\-]+", "_", label) or "module" for label in labels]
    if len(clean) == 2 and clean[0] == clean[1]:
        clean = [f"A_{clean[0]}", f"B_{clean[1]}"]
    return clean


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} file: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e.msg} at line {e.lineno}); give 'xlainspect {what} --json' "
                         "output") from e
    if not isinstance(data, dict):
        raise InputError(f"{path}: not 'xlainspect {what} --json' output (not a JSON object)")
    return data


def _diff_side(pairing: Mapping[str, Any], module: HloModule, source: str) -> str:
    """Which side of a diff a module is, by the module names the diff records."""
    for letter in "ab":
        side = pairing.get(letter)
        if isinstance(side, dict) and side.get("module") == module.name:
            return letter
    named = [pairing.get(letter, {}).get("module") if isinstance(pairing.get(letter), dict) else None
             for letter in "ab"]
    raise InputError(f"{source}: the diff compares {named[0]} and {named[1]}, not {module.name}; give the "
                     "'xlainspect diff --json' output of this module")


def _check_diff_side(pairing: Mapping[str, Any], letter: str, module: HloModule, source: str | None) -> None:
    side = pairing.get(letter)
    if source is not None and (not isinstance(side, dict) or side.get("module") != module.name):
        named = side.get("module") if isinstance(side, dict) else None
        raise InputError(f"{source}: its side {letter.upper()} is module {named}, not {module.name}; give the "
                         "'xlainspect diff --json' output of these two modules, in this order")


def _timing_overlays(graphs: ModuleGraphs, timing: str, dump: Path, module: HloModule) -> list[NodeOverlay]:
    """Time and share overlays for a module, when the timing file timed it (checked as ``diff --timing`` checks)."""
    from xlainspect.measure.records import TimingRecord
    from xlainspect.measure.timing import timing_for_dump

    record = TimingRecord.read(timing)
    framework = record.framework_that_ran(module.name)
    summary = timing_for_dump(timing, framework, dump, module)
    return [time_overlay(graphs, summary), share_overlay(graphs, summary)]


def _synced_ids(module_a: HloModule, module_b: HloModule, pairing: Mapping[str, Any]) -> dict[str, str]:
    """Node ids for B so that Model Explorer's "match node id" navigation follows the pairing, and only it.

    A paired B kernel takes its A partner's name (the first pair of each kernel, where one stands for several); any
    other B instruction whose name is also a node of A is renamed ``B:name``, so no unrelated instructions that
    happen to share a name are linked.
    """
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for pair in pairing.get("matched", ()):
        a, b = pair["a"], pair["b"]
        if b not in ids and a not in taken:
            ids[b] = a
            taken.add(a)
    names_a = {instruction.name for instruction in module_a.instructions()}
    for instruction in module_b.instructions():
        name = instruction.name
        if name not in ids and (name in names_a or name in taken):
            ids[name] = f"B:{name}"
    return ids


# -- the server -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningServer:
    """Model Explorer's server, running for a view.

    Attributes:
        url: the page to open: the models loaded, with their overlays (and two panes, synced, for two models).
        port: the port on 127.0.0.1.
        pid: the server process.
    """

    url: str
    port: int
    pid: int
    process: subprocess.Popen[str] = field(repr=False, compare=False)

    def wait(self) -> int:
        """Blocks until the server stops; returns its exit status."""
        return self.process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def explorer_available() -> None:
    """Raises FrameworkUnavailable when Model Explorer is not installed."""
    if importlib.util.find_spec("model_explorer") is None:
        raise FrameworkUnavailable("Model Explorer is not installed: pip install 'xlainspect[explorer]' "
                                   "(ai-edge-model-explorer)")


@contextmanager
def serve(view: View, port: int | None = None) -> Iterator[RunningServer]:
    """Runs Model Explorer's server for ``view`` on 127.0.0.1 while the ``with`` block runs.

    Args:
        port: the port; None for a free one.

    Raises:
        FrameworkUnavailable: Model Explorer is not installed.
        InputError: the port is taken.
        XlaInspectError: the server did not start.
    """
    explorer_available()
    port = free_port() if port is None else port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex((HOST, port)) == 0:
            raise InputError(f"--port {port}: something already listens on {HOST}:{port}; pick another or leave "
                             "--port out for a free one")
    folder = Path(tempfile.mkdtemp(prefix="xlainspect-view-"))
    process: subprocess.Popen[str] | None = None
    try:
        spec = _write_spec(view, folder, port)
        env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        process = subprocess.Popen([sys.executable, "-m", "xlainspect.output.model_explorer._serve", str(spec),
                                    str(os.getpid())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=env, start_new_session=True)
        _started(process, port)  # its reader thread goes on reading, so the server never blocks on a full pipe
        url = f"http://{HOST}:{port}/?data=" + urllib.parse.quote(json.dumps(view.url_data()))
        yield RunningServer(url, port, process.pid, process)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _write_spec(view: View, folder: Path, port: int) -> Path:
    """Writes the graphs and node data as files, and the spec naming them, for the server process."""
    models = []
    for index, model in enumerate(view.models):
        graphs_file = folder / f"graphs-{index}.json"
        graphs_file.write_text(graphs_json(model.graphs), encoding="utf-8")
        overlays = []
        for number, overlay in enumerate(model.overlays):
            data_file = folder / f"node-data-{index}-{number}.json"
            data_file.write_text(overlay.json_text(), encoding="utf-8")
            overlays.append({"name": overlay.name, "file": str(data_file)})
        models.append({"name": model.name, "graphs": str(graphs_file), "overlays": overlays})
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"host": HOST, "port": port, "models": models}), encoding="utf-8")
    return spec


def _started(process: subprocess.Popen[str], port: int) -> list[str]:
    """Waits until the server answers; returns what it printed. Raises XlaInspectError if it exits first."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reader.join(5)
            tail = " | ".join(line.strip() for line in lines[-5:] if line.strip())
            raise XlaInspectError(f"Model Explorer's server exited with status {process.returncode} before it "
                                  f"served: {tail or 'no output'}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((HOST, port)) == 0:
                return lines
        time.sleep(0.1)
    raise XlaInspectError(f"Model Explorer's server did not answer on {HOST}:{port} within {SERVER_START_S:.0f} s")


def _stop(process: subprocess.Popen[str]) -> None:
    """Stops the server (its whole session), gently first."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
        except ProcessLookupError:
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
