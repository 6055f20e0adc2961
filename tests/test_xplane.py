"""Tests for xlainspect/runners/xplane.py: the standard-library reader of XLA's XPlane profiles.

The oracle for the wire format is TF's own ``xplane_pb2``: a real profile of a ``jit_compile`` function is read by
both, and every event must agree. A real PyTorch/XLA profile (whose environment has no protobuf at all, the reason
this reader exists) must name the compiled module and only instructions of its optimized HLO. Profiles are made in
child processes, so neither framework is loaded into the test process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from xlainspect.errors import InputError, XlaInspectError
from xlainspect.hlo.parse import parse_hlo
from xlainspect.runners.xplane import HloOpEvent, XPlaneError, read_xplane

REPO = Path(__file__).resolve().parent.parent
# PyTorch/XLA lives in its own environment (its numpy and protobuf-free stack conflict with TF's); override with
# XLAINSPECT_TORCH_PYTHON to point at another interpreter that has torch_xla.
TORCH_PYTHON = Path(os.environ.get("XLAINSPECT_TORCH_PYTHON", REPO / ".venv-torch" / "bin" / "python"))
MARK = "xlainspect_test_run_"
RUNS = 3

_TF_PROFILE = textwrap.dedent("""
    import glob, json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    trace_dir, mark, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

    @tf.function(jit_compile=True)
    def affine_tanh(x, w):
        return tf.reduce_sum(tf.tanh(tf.matmul(x, w)), axis=0) * 2.0 + 1.0

    x, w = tf.random.normal([64, 128]), tf.random.normal([128, 32])
    affine_tanh(x, w).numpy()
    tf.profiler.experimental.start(trace_dir)
    for index in range(runs):
        with tf.profiler.experimental.Trace(f"{mark}{index}"):
            affine_tanh(x, w).numpy()
    tf.profiler.experimental.stop()

    print(json.dumps(sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))))
""")

# TF's reading, written as plainly as possible (as time_child's _tf_kernel_events does): the oracle the
# standard-library reader is checked against.
_TF_READ = textwrap.dedent("""
    import json, sys
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    mark, paths = sys.argv[1], sys.argv[2:]
    events, marks = [], {}
    for path in paths:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as file:
            space.ParseFromString(file.read())
        for plane in space.planes:
            stat_names = {key: value.name for key, value in plane.stat_metadata.items()}
            event_names = {key: value.name for key, value in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    start_us = line.timestamp_ns / 1e3 + event.offset_ps / 1e6
                    name = event_names.get(event.metadata_id, "")
                    if name.startswith(mark):
                        marks[name] = start_us
                    stats = {}
                    for stat in event.stats:
                        kind = stat.WhichOneof("value")
                        value = getattr(stat, kind) if kind else None
                        stats[stat_names.get(stat.metadata_id)] = (stat_names.get(value) if kind == "ref_value"
                                                                   else value)
                    if "hlo_op" in stats and "hlo_module" in stats:
                        events.append([str(stats["hlo_module"]), str(stats["hlo_op"]), start_us,
                                       event.duration_ps / 1e6])
    print(json.dumps({"events": events, "marks": marks}))
""")

# The recipe the report documents: N runs of a torch_xla.compile'd function, each inside a profiler annotation.
# xp.Trace cannot be that annotation: it also pushes an IR scope, and torch_xla.compile's sync() then raises
# "Expecting scope to be empty"; the TraceMe it derives from records the same event without the scope.
_TORCH_PROFILE = textwrap.dedent("""
    import glob, json, os, sys
    os.environ.setdefault("PJRT_DEVICE", "CPU")
    import torch
    import torch_xla
    import torch_xla.debug.profiler as xp

    trace_dir, mark, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def affine_tanh(x, w):
        return torch.tanh(x @ w).sum(0) * 2.0 + 1.0

    compiled = torch_xla.compile(affine_tanh, name="affine_tanh")
    device = torch_xla.device()
    x, w = torch.randn(64, 128, device=device), torch.randn(128, 32, device=device)
    compiled(x, w).cpu()
    xp.start_trace(trace_dir)
    for index in range(runs):
        with torch_xla._XLAC.profiler.TraceMe(f"{mark}{index}"):
            compiled(x, w).cpu()
    xp.stop_trace()
    print(json.dumps(sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))))
""")


def _child(python: str | Path, script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(python), "-c", script, *args], check=False, capture_output=True, text=True,
                            timeout=600, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


def _ops_per_run(events: list[HloOpEvent], marks: dict[str, float]) -> list[Counter[str]]:
    """Each run's ops, an event filed under the last mark that started before it."""
    starts = [marks[f"{MARK}{index}"] for index in range(RUNS)]
    runs: list[Counter[str]] = [Counter() for _ in starts]
    for event in events:
        assert event.start_us >= starts[0], (event, starts)  # nothing of the profiled runs before the first mark
        runs[sum(start <= event.start_us for start in starts) - 1][event.hlo_op] += 1
    return runs


@pytest.fixture(scope="module")
def tf_profile(tmp_path_factory: pytest.TempPathFactory) -> dict:
    trace_dir = tmp_path_factory.mktemp("tf-profile")
    paths = json.loads(_child(sys.executable, _TF_PROFILE, str(trace_dir), MARK, str(RUNS)))
    return {"paths": paths, **_tf_reading(paths)}


def _tf_reading(paths: list[str]) -> dict:
    """TF's ``xplane_pb2`` reading of ``paths``: ``events`` as lists, ``marks`` by name."""
    return json.loads(_child(sys.executable, _TF_READ, MARK, *paths))


@pytest.mark.slow
@pytest.mark.requires_tf
def test_reads_exactly_the_events_tf_reads(tf_profile: dict):
    assert tf_profile["paths"], "TF's profiler wrote no .xplane.pb"
    expected = Counter(HloOpEvent(*event) for event in tf_profile["events"])
    profile = read_xplane(tf_profile["paths"], MARK)
    # Exact equality, floats included: both compute the same expression from the same integers.
    assert Counter(profile.events) == expected
    assert profile.marks == tf_profile["marks"]
    # Not vacuous: the XLA module ran its instructions in every run, and each run was marked.
    assert sum(expected.values()) >= RUNS * 2
    assert sorted(profile.marks) == [f"{MARK}{index}" for index in range(RUNS)]
    assert all(event.duration_us > 0 for event in profile.events)


@pytest.mark.slow
@pytest.mark.requires_tf
def test_events_fall_inside_their_run_marks(tf_profile: dict):
    # Clock and unit check independent of TF's reading: the marks are on a Python thread's line, the ops on XLA's,
    # so a ps/ns or offset/timestamp mix-up would shift one against the other and break the one-run-each pattern.
    profile = read_xplane(tf_profile["paths"], MARK)
    module = Counter(event.hlo_module for event in profile.events).most_common(1)[0][0]
    runs = _ops_per_run([event for event in profile.events if event.hlo_module == module], profile.marks)
    assert runs[0] and all(run == runs[0] for run in runs), runs


@pytest.mark.slow
def test_reads_a_pytorch_xla_profile(tmp_path: Path):
    if not TORCH_PYTHON.exists():
        pytest.skip(f"no PyTorch/XLA environment at {TORCH_PYTHON} (set XLAINSPECT_TORCH_PYTHON to its python)")
    dump = tmp_path / "dump"
    paths = json.loads(_child(TORCH_PYTHON, _TORCH_PROFILE, str(tmp_path / "trace"), MARK, str(RUNS),
                              env={"PJRT_DEVICE": "CPU", "XLA_FLAGS": f"--xla_dump_to={dump}"}))
    assert paths, "torch_xla's profiler wrote no .xplane.pb"
    optimized = [path for path in dump.glob("*.cpu_after_optimizations.txt")
                 if re.fullmatch(r"module_\d+\.affine_tanh\.\d+", path.name.split(".cpu_after")[0])]
    assert len(optimized) == 1, sorted(path.name for path in dump.iterdir())
    hlo_text = optimized[0].read_text()
    module = parse_hlo(hlo_text, str(optimized[0]))
    module_name = module.name  # torch_xla adds ".<id>" to the name it was given
    profile = read_xplane(paths, MARK)
    ours = [event for event in profile.events if event.hlo_module == module_name]
    assert len(ours) >= RUNS, Counter(event.hlo_module for event in profile.events)
    ops = Counter(event.hlo_op for event in ours)
    instructions = {instruction.name for computation in module.computations for instruction in computation.instructions}
    assert set(ops) <= instructions, hlo_text
    assert "dot" in "".join(ops)  # the matmul ran under its own name
    assert all(count == RUNS for count in ops.values()), ops  # each instruction once per profiled run
    assert sorted(profile.marks) == [f"{MARK}{index}" for index in range(RUNS)]
    assert _ops_per_run(ours, profile.marks) == [Counter(set(ops))] * RUNS
    # The same file read by TF's own classes, where TF is installed (it never is beside torch_xla).
    if importlib.util.find_spec("tensorflow") is not None:
        expected = _tf_reading(paths)
        assert Counter(profile.events) == Counter(HloOpEvent(*event) for event in expected["events"])
        assert profile.marks == expected["marks"]


# -- damaged files: built by hand, so each byte's meaning is known ---------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: int | bytes) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _space() -> bytes:
    """An XSpace of one plane whose one line holds one ``hlo_op`` event (module by ``ref_value``) and one mark."""
    stat_metadata = b"".join(_field(5, _field(1, key) + _field(2, _field(1, key) + _field(2, name)))
                             for key, name in ((7, b"hlo_op"), (8, b"hlo_module"), (9, b"jit_f")))
    event_metadata = b"".join(_field(4, _field(1, key) + _field(2, _field(1, key) + _field(2, name)))
                              for key, name in ((1, b"fusion"), (2, MARK.encode() + b"0")))
    op = _field(1, 1) + _field(2, 3_000_000) + _field(3, 1_500_000) \
        + _field(4, _field(1, 7) + _field(5, b"fusion.1")) + _field(4, _field(1, 8) + _field(7, 9))
    mark = _field(1, 2) + _field(2, 1_000_000) + _field(3, 9_000_000)
    line = _field(3, 5_000) + _field(4, op) + _field(4, mark)
    return _field(1, _field(3, line) + stat_metadata + event_metadata)  # metadata after the lines, as is legal


def test_reads_a_hand_built_space(tmp_path: Path):
    path = tmp_path / "h.xplane.pb"
    path.write_bytes(_space())
    profile = read_xplane(str(path), MARK)
    # timestamp 5000 ns = 5 µs, offset 3e6 ps = 3 µs, duration 1.5e6 ps = 1.5 µs; the module through ref_value.
    assert profile.events == (HloOpEvent("jit_f", "fusion.1", 8.0, 1.5),)
    assert profile.marks == {f"{MARK}0": 6.0}
    assert read_xplane(str(path)).marks == {}


@pytest.mark.parametrize("cut", [1, 2, 10, -1])
def test_truncated_file_names_the_file(tmp_path: Path, cut: int):
    data = _space()
    path = tmp_path / "cut.xplane.pb"
    path.write_bytes(data[:cut])
    with pytest.raises(XPlaneError) as caught:
        read_xplane(str(path), MARK)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: not a readable XPlane profile (byte ")
    assert isinstance(caught.value, XlaInspectError) and caught.value.path == str(path)


def test_error_messages_literally(tmp_path: Path):
    empty = tmp_path / "empty.xplane.pb"
    empty.write_bytes(b"")
    with pytest.raises(XPlaneError) as caught:
        read_xplane(str(empty))
    assert str(caught.value) == (f"{empty}: not a readable XPlane profile (byte 0: the file is empty); was the "
                                 "profiler stopped before the file was written?")
    cut = tmp_path / "cut.xplane.pb"
    cut.write_bytes(_space()[:-1])
    with pytest.raises(XPlaneError) as caught:
        read_xplane(str(cut))
    assert str(caught.value).startswith(f"{cut}: not a readable XPlane profile (byte 0: field 1 claims ")
    text = tmp_path / "text.xplane.pb"
    text.write_bytes(b"HloModule jit_f\n")  # a text file under the wrong name: 'H' is field 9, wire type 0
    with pytest.raises(XPlaneError) as caught:
        read_xplane(str(text))
    assert str(caught.value).startswith(f"{text}: not a readable XPlane profile (byte ")
    missing = tmp_path / "missing.xplane.pb"
    with pytest.raises(InputError) as caught:
        read_xplane(str(missing))
    assert str(caught.value) == f"{missing}: cannot read the profile: No such file or directory"


def test_error_pickles():
    import pickle

    error = pickle.loads(pickle.dumps(XPlaneError("a.xplane.pb", 12, "wire type 7 in field 3")))
    assert (error.path, error.offset, error.message) == ("a.xplane.pb", 12, "wire type 7 in field 3")
