"""The records that cross a process or a file: their keys and types, the round trip, and the line an odd file gets.

``time --json``, ``memory --json``, the bench and curve CSVs and the dump manifest are formats users script against,
so their key sets and value types are pinned here literally: a renamed or retyped key fails a test, an added one
must be added here too. Every record must survive ``to_json``/``from_json``; a file missing any required key must
fail with one line naming the file and the key, and a key added after the first version must read as its default.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from xlainspect.errors import InputError, RecordError
from xlainspect.measure.records import (
    CURVE_COLUMNS,
    AblationRow,
    BenchRow,
    CurvePoint,
    FrameworkMemory,
    KernelTime,
    MaxBatch,
    MaxBatchRecord,
    MemoryRecord,
    OwnedBuffer,
    PeakCheck,
    TimingRecord,
    csv_text,
)
from xlainspect.measure.spread import Spread
from xlainspect.measure.timing import FrameworkTiming, TimingReport
from xlainspect.runners.children import read_request, run_child
from xlainspect.runners.manifest import DumpManifest
from xlainspect.runners.protocol import (
    BisectResult,
    CompiledMemory,
    CompileRequest,
    CompileResult,
    ExportResult,
    MeasuredStep,
    MemoryFigures,
    MemoryRequest,
    TimeRequest,
    TimeResult,
)

REPO = Path(__file__).resolve().parents[1]
TIMING_HINT = "not the output of 'xlainspect time --program P --json' (an older or foreign file?)"


# -- the formats, literally --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """An object whose keys are names (frameworks), each value of one schema."""

    schema: Any


KERNEL_SPREAD = ("min_us", "q1_us", "q3_us", "max_us")
KERNEL = {"hlo_op": str, "calls": int, "total_us": float, "mean_us": float, "share": float,
          "flops_per_s": (float, None), "bytes_per_s": (float, None), **{key: (float, None) for key in KERNEL_SPREAD}}
SUMMARY = {"framework_version": str, "compile_s": float, "median_ms": float, "min_ms": float, "max_ms": float,
           "q1_ms": float, "q3_ms": float, "runs": int, "module": str, "module_fingerprint": str,
           "profiled_step_ms": (float, None), "busy_ms": (float, None), "kernels": [KERNEL], "note": str}
TIMING = {"program": str, "batch_size": (int, None), "variant": str, "backend": str, "frameworks": Named(SUMMARY),
          "failures": [{"framework": str, "message": str}]}
FIGURES = {"batch_size": (int, None), "argument": int, "output": int, "alias": int, "temp": int,
           "generated_code": int}
MEMORY = {"program": str, "failures": [str], "frameworks": Named({
    "framework": str, "route": str, "device": str, "module": str, "figures": FIGURES, "peak": int,
    "per_example_bytes": (int, None), "library_fusions": int,
    "largest": [{"instruction": str, "shape": str, "size": int, "op_name": str, "per_example_gradient": bool}]})}
MAX_BATCH = {"program": str, "limit": int, "failures": [str], "frameworks": Named({
    "max_batch": int, "exact": bool, "capped": bool, "resolution": (int, None), "route": str,
    "curve": [{**FIGURES, "peak": int}]})}
PEAK_CHECK = {"framework": str, "batch_size": int, "predicted": int, "measured": int, "error": float}
MANIFEST = {"program": str, "description": str, "parameters": dict, "shapes": dict, "framework": str,
            "framework_version": str, "xla_version": str, "compiler": str, "backend": str, "backend_folder": str,
            "deviceless": bool, "target": (str, None), "device": str, "host_cpu": str, "xla_flags": str,
            "module_name": str, "original_files": {"before_optimizations": str, "after_optimizations": str},
            "compile_and_first_run_s": float, "child_process_s": float, "created_utc": str,
            "xlainspect_version": str, "python": str, "platform": str, "regenerate": str}
BENCH_COLUMNS = ("model", "private", "framework", "batch_size", "median_ms", "min_ms", "max_ms", "compile_s", "runs",
                 "q1_ms", "q3_ms", "note")
ABLATION_COLUMNS = ("model", "framework", "build", "label", "batch_size", "median_ms", "min_ms", "max_ms",
                    "compile_s", "runs", "q1_ms", "q3_ms", "note")

# Keys that came after a format's first version: a file without them still reads, as the default says.
OPTIONAL = {
    "timing": {"variant", "backend", "frameworks.*.profiled_step_ms", "frameworks.*.busy_ms",
               "frameworks.*.module_fingerprint",
               *(f"frameworks.*.kernels[{i}].{key}" for i in range(2) for key in KERNEL_SPREAD)},
    "max_batch": {"frameworks.*.capped", "frameworks.*.resolution"},
    "manifest": {"compiler", "backend_folder", "deviceless", "target", "pass_dump_files", "source_paths"},
}


def mismatches(value: Any, schema: Any, where: str = "") -> list[str]:
    """Where ``value`` departs from ``schema``: missing or extra keys, values of another type."""
    if isinstance(schema, Named):
        if not isinstance(value, dict) or not value:
            return [f"{where}: {value!r} is not a non-empty object"]
        return [m for name, item in value.items() for m in mismatches(item, schema.schema, f"{where}.{name}")]
    if isinstance(schema, dict) and schema is not dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        problems = [f"{where}: keys {sorted(set(value) ^ set(schema))} differ"] if set(value) != set(schema) else []
        return problems + [m for key in schema.keys() & value.keys()
                           for m in mismatches(value[key], schema[key], f"{where}.{key}")]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [m for i, item in enumerate(value) for m in mismatches(item, schema[0], f"{where}[{i}]")]
    kinds = schema if isinstance(schema, tuple) else (schema,)
    for kind in kinds:
        if (value is None and kind is None) or (kind is not None and type(value) is kind):
            return []
    return [f"{where}: {value!r} is not {kinds}"]


def test_the_schema_check_itself_catches_a_renamed_key_and_a_retyped_value():
    good = {"hlo_op": "d", "calls": 1, "total_us": 2.0, "mean_us": 2.0, "share": 0.5, "flops_per_s": None,
            "bytes_per_s": 1.0, "min_us": 1.0, "q1_us": 1.5, "q3_us": 2.5, "max_us": None}
    assert mismatches(good, KERNEL) == []
    renamed = {("op" if key == "hlo_op" else key): value for key, value in good.items()}
    assert mismatches(renamed, KERNEL) == [": keys ['hlo_op', 'op'] differ"]
    assert mismatches({**good, "calls": 1.0}, KERNEL) == [".calls: 1.0 is not (<class 'int'>,)"]
    assert mismatches({**good, "calls": True}, KERNEL) == [".calls: True is not (<class 'int'>,)"]


# -- samples -----------------------------------------------------------------------------------------------------


def timing_report() -> TimingReport:
    jax = FrameworkTiming("jax", "0.10.2", 0.51234567, (4.0, 1.0, 3.0, 2.0, 5.0),
                          (KernelTime("fusion.1", 2, 12.345678, 0.25, 3.5e9, 1.25e10, Spread(10.0, 11.0, 13.5, 15.0)),
                           KernelTime("custom-call.3", 1, 1.0, 0.02)),
                          "jit_step", "", "HloModule jit_step", 5.123456, 4.5, "0123456789abcdef")
    tf = FrameworkTiming("tf", "2.21.0", 1.0, (7.0, 8.0), (), "", "no module to profile")
    return TimingReport("dpsgd_ffnn", 32, {"jax": jax, "tf": tf}, (("tf", "tf: timing failed"),), "novec")


def figures(batch: int | None = 64, temp: int = 1000) -> MemoryFigures:
    return MemoryFigures(batch, 400, 64, 16, temp, 8)


def memory_record() -> MemoryRecord:
    jax = FrameworkMemory("jax", "JAX, on this machine's CPU", "cpu", "jit_step", figures(),
                          (OwnedBuffer("fusion.1{1}", "f32[64,104,50]", 1331200, "jit(step)/mul", True),), 1331200)
    tf = FrameworkMemory("tf", "TF front end, JAX's XLA, on this machine's CPU", "cpu", "a_inference_step",
                         figures(None), (), None)
    return MemoryRecord("dpsgd_ffnn", (jax, tf), ("tf: failed once",))


def max_batch_record(capped: bool = False) -> MaxBatchRecord:
    curve = (figures(16, 100), figures(32, 300))
    return MaxBatchRecord("dpsgd_ffnn", 1000, (MaxBatch("jax", "JAX, on this machine's CPU", 1000, 16, True, curve,
                                                        capped, resolution=128),), ("tf: no",))


def manifest() -> DumpManifest:
    return DumpManifest.read(REPO / "dumps/cpu/dpsgd_ffnn/tf/manifest.json")


# -- the formats -------------------------------------------------------------------------------------------------


def test_time_json_keys_and_types():
    data = json.loads(json.dumps(timing_report().to_json()))
    assert mismatches(data, TIMING) == []
    # Statistics of the runs, not the runs; rounded for people, not for precision.
    jax = data["frameworks"]["jax"]
    assert (jax["median_ms"], jax["min_ms"], jax["max_ms"], jax["q1_ms"], jax["q3_ms"], jax["runs"]) == (
        3.0, 1.0, 5.0, 1.5, 4.5, 5)
    assert (jax["compile_s"], jax["profiled_step_ms"], jax["kernels"][0]["total_us"],
            jax["kernels"][0]["mean_us"]) == (0.5123, 5.1235, 12.346, 6.173)


def test_memory_json_keys_and_types():
    assert mismatches(json.loads(json.dumps(memory_record().to_json())), MEMORY) == []
    assert memory_record().to_json()["frameworks"]["jax"]["peak"] == 400 + 64 - 16 + 1000


def test_max_batch_json_keys_and_types():
    data = json.loads(json.dumps(max_batch_record().to_json()))
    assert mismatches(data, MAX_BATCH) == []
    assert [point["peak"] for point in data["frameworks"]["jax"]["curve"]] == [548, 748]


def test_peak_check_json_keys_and_types():
    data = json.loads(json.dumps(PeakCheck("jax", 256, 1000, 1100).to_json()))
    assert mismatches(data, PEAK_CHECK) == []
    assert data["error"] == 0.1


@pytest.mark.parametrize("path", sorted((REPO / "dumps").rglob("manifest.json")), ids=lambda p: str(p.parent))
def test_committed_manifests_keep_their_keys_and_read_back_unchanged(path):
    data = json.loads(path.read_text())
    # Committed dumps name no machine: their source paths were made relative, and the manifest says to what.
    assert mismatches(data.pop("source_paths"), {"relative_to": str, "rewritten": int}) == []
    # Only dumps made under another interpreter (--python; the jax 0.10.2 references) name it, relative to the repo.
    interpreter = data.pop("interpreter", None)
    assert (interpreter is not None) == ("jax-0.10.2" in path.parts)
    assert interpreter is None or (interpreter == ".venv-jax0.10/bin/python" and "--python " + interpreter in
                                   data["regenerate"])
    assert mismatches(data, MANIFEST) == []
    assert DumpManifest.read(path).to_json() == json.loads(path.read_text())


def test_manifest_keys_and_types_with_pass_dumps():
    data = manifest().with_pass_dump_files(12).to_json()
    assert mismatches({k: v for k, v in data.items() if k not in ("pass_dump_files", "source_paths")}, MANIFEST) == []
    assert data["pass_dump_files"] == 12
    assert "pass_dump_files" not in manifest().to_json()  # only when pass dumps were kept


def test_csv_columns():
    assert BenchRow.columns() == BENCH_COLUMNS
    assert AblationRow.columns() == ABLATION_COLUMNS
    assert CURVE_COLUMNS == ("framework", "batch_size", "argument", "output", "alias", "temp", "peak", "fits",
                             "generated_code")


def test_committed_csvs_read_back():
    # The figures the docs show were written by earlier versions: they must stay readable.
    docs = REPO / "docs"
    bench = [row for path in docs.rglob("bench-*.csv") for row in BenchRow.read(path)]
    ablation = [row for path in docs.rglob("ablation-*.csv") for row in AblationRow.read(path)]
    curves = [point for path in (docs / "memory").rglob("*.csv") for point in CurvePoint.read(path)]
    assert bench and ablation and curves
    assert {row.private for row in bench} == {False, True}
    assert {row.build for row in ablation} == {"full", "novec", "nocompile", "novec-nocompile"}
    assert all(point.figures.generated_code == 0 for point in curves)  # written before that column


# -- round trips -------------------------------------------------------------------------------------------------


def test_time_json_round_trip():
    report = timing_report()
    data = json.loads(json.dumps(report.to_json()))
    record = TimingRecord.from_json(data, "time.json")
    assert record == report.record()
    assert record.to_json() == data
    assert record.kernel_times("jax") == {"fusion.1": 12.346, "custom-call.3": 1.0}


def test_memory_records_round_trip():
    for record, read in ((memory_record(), MemoryRecord.from_json), (max_batch_record(), MaxBatchRecord.from_json),
                         (max_batch_record(capped=True), MaxBatchRecord.from_json)):
        data = json.loads(json.dumps(record.to_json()))
        assert read(data, "memory.json") == record
    check = PeakCheck("jax", 256, 1000, 1100)
    assert PeakCheck.from_json(check.to_json(), "checks.json") == check


def test_manifest_round_trip():
    written = manifest().with_pass_dump_files(3)
    assert DumpManifest.from_json(json.loads(json.dumps(written.to_json())), "manifest.json") == written


def test_csv_rows_round_trip(tmp_path):
    rows = [BenchRow("ffnn", False, "jax", 16, 0.0881, 0.0526, 1.172, 0.3184, 10),
            BenchRow("mnist", True, "tf", 256, 12.5, 11.0, 20.25, 3.0, 10)]
    path = tmp_path / "bench.csv"
    path.write_text(csv_text(BenchRow.columns(), (row.to_row() for row in rows)))
    assert BenchRow.read(path) == rows
    builds = [AblationRow("mnist", "jax", "novec", "jit, no vmap", 128, 9.5, 7.8, 12.9, 13.4, 10)]
    path.write_text(csv_text(AblationRow.columns(), (row.to_row() for row in builds)))
    assert AblationRow.read(path) == builds  # the label's comma is quoted, not a column
    points = [CurvePoint("jax", figures(16, 100), True), CurvePoint("tf", figures(32, 2000), False)]
    path.write_text(csv_text(CURVE_COLUMNS, (point.to_row() for point in points)))
    assert CurvePoint.read(path) == points


CHILD_MESSAGES = [
    CompileRequest("dpsgd_ffnn", "jax"),
    CompileRequest("dpsgd_ffnn", "tf", 64, "float64", 3, "/tmp/tf.pb", None, "step", None),
    CompileRequest("matvec", "jax", None, "float32", 0, None, "/tmp/tf.pb", "matvec", "gpu_device_info {}"),
    TimeRequest("dpsgd_mnist", "jax", 32, 20, 3),
    TimeRequest("dpsgd_mnist", "tf", None, 1, 0, 5, "gpu", False, False, "float32", "/tmp/x.pb", None),
    MemoryRequest("dpsgd_ffnn", "jax"),
    MemoryRequest("dpsgd_ffnn", "tf", "analyse", 1024, "gpu_device_info {}", False, "/tmp/dump"),
    MemoryRequest("dpsgd_ffnn", "jax", "bisect", None, None, True, None, 2**34, 16, 12),
    MemoryRequest("dpsgd_lstm", "tf", "bisect", None, None, False, None, 2**34, 16, resolution=128),
    MemoryRequest("dpsgd_ffnn", "jax", "measure", 256),
    CompileResult("0.10.2", "jaxlib 0.10.2", "cpu", 0.25, "linear_grad", "AMD EPYC", "3.11.7", "Linux"),
    ExportResult("2.21.0", 12345, "dpsgd_ffnn_step"),
    TimeResult("0.10.2", 0.5, (0.002, 0.003)),
    TimeResult("jaxlib 0.10.2 running TF's HLO", 0.5, (0.002,), "m", "HloModule m", {"d": (1.5, 2.5)}, 2,
               (0.004, 0.005), 1.25, "a note", 1e-7, {"d": (0, 1)}),
    CompiledMemory(figures(), "jit_step", "jaxlib 0.10.2", "cpu", "BufferAssignment:", "HloModule jit_step"),
    BisectResult(16, 17, (figures(16), figures(17, 2000)), True, False, "jaxlib 0.10.2", "cpu"),
    BisectResult(20648881, None, (figures(16),), False, True, "jaxlib 0.10.2", "H100"),
    MeasuredStep(256, 10_000_000, 300_000_000, figures(256), "jaxlib 0.10.2", "cpu"),
    MeasuredStep(256, 10_000_000, 300_000_000, None, "jaxlib 0.10.2", "cpu"),
]


@pytest.mark.parametrize("message", CHILD_MESSAGES, ids=lambda m: type(m).__name__)
def test_child_messages_round_trip(message):
    assert type(message).from_json(json.loads(json.dumps(message.to_json())), "child") == message


# -- files that are not what xlainspect writes -------------------------------------------------------------------


def key_paths(data: Any, where: str = "") -> list[tuple[str, list[str | int]]]:
    """Every key of every object in ``data``: (``a.b[0].c``, the path to it)."""
    found: list[tuple[str, list[str | int]]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{where}.{key}" if where else key
            found.append((dotted, [key]))
            found += [(inner, [key, *path]) for inner, path in key_paths(value, dotted)]
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += [(inner, [i, *path]) for inner, path in key_paths(value, f"{where}[{i}]")]
    return found


def without(data: Any, path: list[str | int]) -> Any:
    data = copy.deepcopy(data)
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    return data


FILE_FORMATS = {
    "timing": (lambda: timing_report().to_json(), TimingRecord.from_json),
    "memory": (lambda: memory_record().to_json(), MemoryRecord.from_json),
    "max_batch": (lambda: max_batch_record().to_json(), MaxBatchRecord.from_json),
    "peak_check": (lambda: PeakCheck("jax", 256, 1000, 1100).to_json(), PeakCheck.from_json),
    "manifest": (lambda: manifest().with_pass_dump_files(3).to_json(), DumpManifest.from_json),
}
# Free-form objects: any key may be there or not (the program's hyperparameters, its inputs).
FREE_FORM = ("parameters.", "shapes.")


@pytest.mark.parametrize("name", FILE_FORMATS)
def test_a_file_missing_any_key_fails_with_one_line_naming_it(name):
    sample, read = FILE_FORMATS[name]
    data = json.loads(json.dumps(sample()))
    checked = 0
    for dotted, path in key_paths(data):
        if dotted.startswith(FREE_FORM) or re.fullmatch(r"frameworks\.\w+", dotted):  # any framework may be absent
            continue
        if re.sub(r"^frameworks\.\w+\.", "frameworks.*.", dotted) in OPTIONAL.get(name, ()):
            read(without(data, path), "f.json")
            continue
        with pytest.raises(RecordError) as info:
            read(without(data, path), "f.json")
        assert info.value.key == dotted
        assert str(info.value).startswith(f"f.json: '{dotted}' is missing; ") and "\n" not in str(info.value)
        checked += 1
    assert checked >= 5


def test_time_json_errors_literally(tmp_path):
    data = timing_report().to_json()
    del data["frameworks"]["jax"]["kernels"][0]["total_us"]
    with pytest.raises(RecordError) as info:
        TimingRecord.from_json(data, "time.json")
    assert str(info.value) == f"time.json: 'frameworks.jax.kernels[0].total_us' is missing; {TIMING_HINT}"
    data = timing_report().to_json()
    data["frameworks"]["jax"]["runs"] = "5"
    with pytest.raises(RecordError) as info:
        TimingRecord.from_json(data, "time.json")
    assert str(info.value) == f"time.json: 'frameworks.jax.runs' is a string, expected an integer; {TIMING_HINT}"
    path = tmp_path / "time.json"
    path.write_text("[]")
    with pytest.raises(RecordError) as info:
        TimingRecord.read(path)
    assert str(info.value) == f"{path}: it holds a list, not a JSON object; {TIMING_HINT}"
    path.write_text("{")
    with pytest.raises(RecordError, match=r"time.json: not JSON \(Expecting property name"):
        TimingRecord.read(path)
    with pytest.raises(InputError, match=r"missing.json: cannot read: No such file or directory"):
        TimingRecord.read(tmp_path / "missing.json")


def test_a_file_from_the_first_timing_version_still_reads():
    data = timing_report().to_json()
    del data["variant"], data["backend"]
    for summary in data["frameworks"].values():
        del summary["profiled_step_ms"], summary["busy_ms"], summary["module_fingerprint"]
        for kernel in summary["kernels"]:
            for key in KERNEL_SPREAD:
                del kernel[key]
    record = TimingRecord.from_json(data, "old.json")
    assert record.variant == "full" and record.frameworks["jax"].busy_ms is None
    assert record.backend == "" and record.frameworks["jax"].module_fingerprint == ""  # unknown: not checked
    assert record.frameworks["jax"].kernels[0].spread is None


def test_a_manifest_from_before_gpu_dumps_reads_with_what_it_meant():
    data = manifest().to_json()
    for key in ("compiler", "backend_folder", "deviceless", "target"):
        del data[key]
    old = DumpManifest.from_json(data, "manifest.json")
    assert (old.compiler, old.backend_folder, old.deviceless, old.target) == ("", "cpu", False, None)
    assert old.compiled_by == old.xla_version  # what the report shows for it
    data["parameters"]["batch_size"] = [64]
    with pytest.raises(RecordError) as info:
        DumpManifest.from_json(data, "manifest.json")
    assert str(info.value) == ("manifest.json: 'parameters.batch_size' is a list, expected a string, a number, "
                               "true/false or null; not a manifest that 'xlainspect dump' wrote (an older or foreign "
                               "file?)")


def test_csv_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text("model,private,framework,batch_size,median_ms,min_ms,max_ms,compile_s,runs\n"
                    "ffnn,False,jax,16,0.1,0.1,0.2,0.3,10\n"
                    "ffnn,True,jax,16,0.5,0.4,0.6,0.3,ten\n")
    with pytest.raises(RecordError) as info:
        BenchRow.read(path)
    assert str(info.value) == f"{path}:3: column 'runs' holds 'ten', expected an integer; not a CSV that " \
                              "'xlainspect bench' wrote"
    path.write_text("model,framework,batch_size\nffnn,jax,16\n")
    with pytest.raises(RecordError) as info:
        BenchRow.read(path)
    assert str(info.value) == f"{path}: no column 'private' in the header; not a CSV that 'xlainspect bench' wrote"
    path.write_text("framework,batch_size,argument,output,alias,temp,peak,fits\njax,16,400,64,16,100,549,1\n")
    with pytest.raises(RecordError) as info:
        CurvePoint.read(path)
    assert str(info.value) == (f"{path}:2: peak 549 is not argument + output - alias + temp (548); not a curve "
                               "that 'xlainspect memory --max-batch' wrote")


# -- what the commands print reads back --------------------------------------------------------------------------


def test_what_the_cli_prints_reads_back_through_the_records():
    from xlainspect.output.format import max_batch_json, memory_json, peak_check_json, timing_json

    report = timing_report()
    assert TimingRecord.from_json(json.loads(timing_json(report)), "stdout") == report.record()
    memory = memory_record()
    assert MemoryRecord.from_json(json.loads(memory_json(memory.program, memory.frameworks, memory.failures)),
                                  "stdout") == memory
    largest = max_batch_record()
    assert MaxBatchRecord.from_json(json.loads(max_batch_json(largest.program, largest.limit, largest.frameworks,
                                                              largest.failures)), "stdout") == largest
    checks = [PeakCheck("jax", 256, 1000, 1100), PeakCheck("jax", 1024, 4000, 4100)]
    assert [PeakCheck.from_json(item, "stdout") for item in json.loads(peak_check_json(checks))] == checks


# -- the child protocol ------------------------------------------------------------------------------------------


def test_a_child_given_an_odd_request_says_so():
    with pytest.raises(RecordError) as info:
        read_request(TimeRequest, [json.dumps({"program": "matvec", "framework": "jax", "warmup": 1,
                                               "variant": {"vectorize": True, "compiled": True}})])
    assert str(info.value) == ("xlainspect.runners.time_child: 'repeats' is missing; the child process and this "
                               "xlainspect disagree on the protocol (a stale install? run 'make install')")
    with pytest.raises(RecordError, match=r"'mode' is 'guess', expected one of analyse, bisect, measure"):
        read_request(MemoryRequest, [json.dumps({"program": "matvec", "framework": "jax", "mode": "guess"})])
    with pytest.raises(RecordError, match=r"'limit' is missing"):  # a bisection needs its limit
        read_request(MemoryRequest, [json.dumps({"program": "matvec", "framework": "jax", "mode": "bisect"})])


@dataclass(frozen=True)
class _FakeRequest:
    child: ClassVar[str] = "xlainspect_fake_child"
    program: str = "matvec"
    framework: str = "jax"

    def to_json(self) -> dict[str, Any]:
        return {"program": self.program}


def test_the_parent_reads_a_childs_result_as_the_class_it_expects(tmp_path, monkeypatch):
    (tmp_path / "xlainspect_fake_child.py").write_text(textwrap.dedent("""\
        import json, sys
        request = json.loads(sys.argv[1])
        print("RESULT " + json.dumps({"framework_version": "1", "bytes": 7, "function_name": request["program"]}))
        """))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert run_child(_FakeRequest(), ExportResult, lambda line: None, "exporting") == ExportResult("1", 7, "matvec")
    with pytest.raises(RecordError) as info:
        run_child(_FakeRequest(), CompileResult, lambda line: None, "compiling")
    assert str(info.value) == ("xlainspect_fake_child: 'xla_version' is missing; the child process and this "
                               "xlainspect disagree on the protocol (a stale install? run 'make install')")
