"""Tests for xlainspect.measure.timing: step statistics, and JAX's per-kernel times checked against the module that ran."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

import pytest
from references import reference_dumps

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import CaptureError
from xlainspect.measure.records import TimingRecord
from xlainspect.measure.spread import Spread, difference
from xlainspect.measure.timing import (
    COMMAND_BUFFERS_OFF,
    FrameworkTiming,
    KernelTime,
    TimingReport,
    command_buffer_calls,
    kernel_times,
    module_fingerprint,
    time_program,
)
from xlainspect.runners.capture import gpu_visible
from xlainspect.runners.protocol import TimeRequest, TimeResult
from xlainspect.runners.time_child import RUN_MARK, _kernel_events

REPO = Path(__file__).resolve().parents[1]

MODULE = textwrap.dedent("""\
    HloModule m
    ENTRY e {
      x = f32[4,8]{1,0} parameter(0)
      w = f32[8,2]{1,0} parameter(1)
      ROOT d = f32[4,2]{1,0} dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
    }
    """)


def test_kernel_times_per_run_share_and_rates():
    times = kernel_times({"d": [10.0, 30.0]}, runs=2, step_us=40.0, hlo_text=MODULE)
    (kernel,) = times
    assert (kernel.hlo_op, kernel.calls, kernel.total_us, kernel.share) == ("d", 1, 20.0, 0.5)
    assert kernel.flops_per_s == pytest.approx(2 * 4 * 2 * 8 / 20e-6)
    assert kernel.bytes_per_s == pytest.approx((4 * 8 * 4 + 8 * 2 * 4 + 4 * 2 * 4) / 20e-6)


def test_kernel_spread_is_over_per_run_totals_not_single_launches():
    # A kernel launched twice per run: 1+1, 2+2, 3+3, 4+4, 5+5 µs. Its per-run totals are 2, 4, 6, 8, 10; the
    # launches alone (1 to 5) would halve the spread and put the quartiles below the per-run mean of 6.
    durations = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0]
    runs = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    (kernel,) = kernel_times({"d": durations}, 5, 100.0, MODULE, {"d": runs})
    assert (kernel.calls, kernel.total_us) == (2, 6.0)
    assert kernel.spread == Spread(2.0, 3.0, 9.0, 10.0)  # statistics.quantiles' default method
    # A run in which the kernel never launched counts as 0, not as a missing run.
    (once,) = kernel_times({"d": [6.0, 6.0]}, 3, 100.0, MODULE, {"d": [0, 2]})
    assert once.spread is not None and once.spread.low == 0.0 and once.total_us == 4.0


def test_kernel_spread_is_unknown_without_run_marks_or_with_one_run():
    assert kernel_times({"d": [1.0, 3.0]}, 2, 100.0, MODULE)[0].spread is None
    assert kernel_times({"d": [1.0, 3.0]}, 2, 100.0, MODULE, {})[0].spread is None
    assert kernel_times({"d": [1.0, 3.0]}, 1, 100.0, MODULE, {"d": [0, 0]})[0].spread is None


def test_spread_quartiles_stay_within_the_runs():
    assert Spread.of([1.0]) is None
    assert Spread.of([4.0, 1.0, 3.0, 2.0, 5.0]) == Spread(1.0, 1.5, 4.5, 5.0)
    assert Spread.of([1.0, 2.0]) == Spread(1.0, 1.0, 2.0, 2.0)  # the default method alone would say 0.75 and 2.25


def test_a_difference_within_both_spreads_is_noise():
    a, b = Spread(9.0, 10.0, 12.0, 13.0), Spread(10.0, 11.0, 15.0, 16.0)  # half IQRs 1 and 2: noise 3
    assert difference(11.0, a, 14.0, b).within_spread is True  # 3, exactly the noise
    assert difference(11.0, a, 14.0, b).text("us") == "within noise (±3.0us)"
    assert difference(11.0, a, 14.5, b).within_spread is False
    assert difference(11.0, a, 14.5, b).text("us") == "+3.5us"
    assert difference(14.5, b, 11.0, a).text("ms", 2) == "-3.50ms"
    unknown = difference(11.0, None, 11.1, b)
    assert (unknown.noise, unknown.within_spread, unknown.text("us")) == (None, None, "+0.1us")


def write_trace(folder: Path, events: list[dict]) -> None:
    path = folder / "plugins" / "profile" / "run" / "perfetto_trace.json.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt", encoding="utf-8") as file:
        json.dump({"traceEvents": events}, file)


def test_profile_events_are_filed_under_the_run_they_fell_in(tmp_path):
    # What JAX's profiler writes: an annotation per run on the host thread, the module's ops on another thread.
    def op(name: str, ts: float, dur: float, module: str = "m") -> dict:
        return {"ph": "X", "name": name, "ts": ts, "dur": dur, "args": {"hlo_op": name, "hlo_module": module}}

    marks = [{"ph": "X", "name": f"{RUN_MARK}{i}", "ts": start, "dur": 40.0} for i, start in enumerate((100, 200))]
    write_trace(tmp_path, [*marks, op("a", 110, 5), op("a", 120, 5), op("b", 130, 1), op("a", 205, 7),
                           op("b", 241, 2),  # after run 1's marker ends, before any other run: still run 1
                           op("a", 210, 9, "other_module")])
    kernels, runs, busy, launches = _kernel_events(str(tmp_path), "m", 2)
    assert kernels == {"a": [5.0, 5.0, 7.0], "b": [1.0, 2.0]} and launches == {"a": 3, "b": 2}
    assert runs == {"a": [0, 0, 1], "b": [0, 1]}
    assert busy == 5 + 5 + 1 + 7 + 2
    # A run whose annotation is missing: no run is claimed, so no spread will be.
    kernels, runs, _, _ = _kernel_events(str(tmp_path), "m", 3)
    assert kernels["a"] == [5.0, 5.0, 7.0] and runs == {}


def test_an_ops_launches_that_run_at_once_count_the_time_it_ran(tmp_path):
    """cuDNN runs a grouped convolution as concurrent kernels of one HLO op: summed, the op took 126% of an H200
    step. Overlapping launches of one op merge into one span; back-to-back ones and other ops' stay apart."""
    def op(name: str, ts: float, dur: float) -> dict:
        return {"ph": "X", "name": name, "ts": ts, "dur": dur, "args": {"hlo_op": name, "hlo_module": "m"}}

    mark = {"ph": "X", "name": f"{RUN_MARK}0", "ts": 100, "dur": 100.0}
    write_trace(tmp_path, [mark, op("conv", 110, 10), op("conv", 112, 10), op("conv", 115, 3),  # at once: 110-122
                           op("conv", 122, 4),  # starts as the others end: a launch of its own
                           op("other", 111, 5)])  # another op running at the same time is not merged in
    kernels, runs, busy, launches = _kernel_events(str(tmp_path), "m", 1)
    assert kernels == {"conv": [12.0, 4.0], "other": [5.0]}
    assert runs == {"conv": [0, 0], "other": [0]}
    assert busy == 16.0
    assert launches == {"conv": 4, "other": 1}  # what was launched, for calls per step
    (conv, other) = kernel_times(kernels, 1, 20.0, "", runs, launches)
    assert (conv.hlo_op, conv.calls, conv.total_us, conv.share) == ("conv", 4, 16.0, 0.8)
    assert (other.calls, other.total_us) == (1, 5.0)


def test_loop_containers_are_not_counted_twice():
    module = textwrap.dedent("""\
        HloModule m
        body {
          t = (s32[], f32[2]{0}) parameter(0)
          i = s32[] get-tuple-element(t), index=0
          v = f32[2]{0} get-tuple-element(t), index=1
          n = f32[2]{0} negate(v)
          ROOT r = (s32[], f32[2]{0}) tuple(i, n)
        }
        cond {
          t = (s32[], f32[2]{0}) parameter(0)
          i = s32[] get-tuple-element(t), index=0
          k = s32[] constant(3)
          ROOT lt = pred[] compare(i, k), direction=LT
        }
        ENTRY e {
          p = (s32[], f32[2]{0}) parameter(0)
          ROOT w = (s32[], f32[2]{0}) while(p), condition=cond, body=body
        }
        """)
    times = kernel_times({"w": [100.0], "n": [20.0, 20.0, 20.0], "lt": [5.0, 5.0, 5.0]}, 1, 100.0, module)
    assert {(k.hlo_op, k.calls, k.total_us) for k in times} == {("n", 3, 60.0), ("lt", 3, 15.0)}


def test_statistics():
    timing = FrameworkTiming("jax", "0", 1.0, (4.0, 1.0, 3.0, 2.0, 5.0))
    data = timing.to_json()
    assert (data["median_ms"], data["min_ms"], data["max_ms"], data["runs"]) == (3.0, 1.0, 5.0, 5)
    assert timing.iqr_ms == (1.5, 4.5)
    assert set(data) >= {"compile_s", "median_ms", "min_ms", "max_ms", "runs", "kernels"}


def child_result(module_name: str, hlo_text: str, runs_s: list[float], kernels: dict[str, list[float]],
                 profiled_runs: int = 1, **extra) -> TimeResult:
    """What a stand-in timing child hands back, as ``xlainspect.runners.time_child`` would."""
    return TimeResult("0", 1.0, tuple(runs_s), module_name, hlo_text,
                      {op: tuple(durations) for op, durations in kernels.items()}, profiled_runs, **extra)


def test_profiled_step_is_the_mean_of_the_runs_the_busy_time_averages(monkeypatch):
    # One slow profiled run (as on a loaded CI machine) must not put the per-run mean busy time above the step it is
    # compared with: 2 ms + 2 ms + 11 ms of wall time, 4 ms busy per run on average, is a 5 ms mean step (the
    # median would be 2 ms).
    def fake_child(request, result_type, *args, **kwargs):
        assert (type(request), result_type) == (TimeRequest, TimeResult)
        return child_result("m", MODULE, [0.002] * 5, {"d": [3000.0, 3000.0, 6000.0]}, profiled_runs=3,
                            profiled_runs_s=(0.002, 0.002, 0.011), busy_us_per_run=4000.0)

    monkeypatch.setattr("xlainspect.measure.timing.run_child", fake_child)
    timing = time_program("matvec", ("jax",), repeats=5, profile_runs=3).frameworks["jax"]
    assert timing.profiled_step_ms == pytest.approx(5.0)
    assert timing.busy_ms == pytest.approx(4.0)  # the child's µs per run, in ms
    assert timing.to_json()["profiled_step_ms"] == pytest.approx(5.0)
    assert [(k.hlo_op, k.calls, k.total_us) for k in timing.kernels] == [("d", 1, 4000.0)]


def test_time_json_carries_kernel_spreads_backend_and_module_fingerprint(monkeypatch):
    def fake_child(request, result_type, *args, **kwargs):
        return child_result("m", MODULE, [0.004, 0.002, 0.003, 0.005], {"d": [1000.0, 3000.0, 2000.0, 6000.0]},
                            profiled_runs=4, kernel_runs={"d": (0, 1, 2, 3)})

    monkeypatch.setattr("xlainspect.measure.timing.run_child", fake_child)
    data = json.loads(json.dumps(time_program("matvec", ("jax",), repeats=4, profile_runs=4).to_json()))
    summary = data["frameworks"]["jax"]
    assert data["backend"] == "cpu"
    assert summary["module_fingerprint"] == module_fingerprint(parse_hlo(MODULE))
    (kernel,) = summary["kernels"]
    assert (kernel["total_us"], kernel["min_us"], kernel["q1_us"], kernel["q3_us"], kernel["max_us"]) == (
        3000.0, 1000.0, 1250.0, 5250.0, 6000.0)
    assert (summary["q1_ms"], summary["q3_ms"]) == (2.25, 4.75)
    record = TimingRecord.from_json(data, "time.json")
    assert record.frameworks["jax"].kernels[0].spread == Spread(1000.0, 1250.0, 5250.0, 6000.0)
    assert record.frameworks["jax"].spread == Spread(2.0, 2.25, 4.75, 5.0)
    # A file from before spreads, backends and fingerprints reads with them unknown.
    del data["backend"], summary["module_fingerprint"]
    for key in ("min_us", "q1_us", "q3_us", "max_us"):
        del kernel[key]
    old = TimingRecord.from_json(data, "old.json")
    assert (old.backend, old.frameworks["jax"].module_fingerprint, old.frameworks["jax"].kernels[0].spread) == (
        "", "", None)


def test_module_fingerprint_ignores_names_and_metadata_but_not_kernels():
    renamed = MODULE.replace(" d = ", " renamed = ").replace("dot(x, w)", 'dot(x, w), metadata={op_name="f/dot"}')
    assert module_fingerprint(parse_hlo(renamed)) == module_fingerprint(parse_hlo(MODULE))
    transposed = MODULE.replace("rhs_contracting_dims={0}", "rhs_contracting_dims={1}").replace("f32[8,2]",
                                                                                                 "f32[2,8]")
    assert module_fingerprint(parse_hlo(transposed)) != module_fingerprint(parse_hlo(MODULE))
    relaid = MODULE.replace("x = f32[4,8]{1,0}", "x = f32[4,8]{0,1}")
    assert module_fingerprint(parse_hlo(relaid)) != module_fingerprint(parse_hlo(MODULE))


@pytest.mark.requires_jax
def test_jax_kernel_times_match_the_module_that_ran():
    report = time_program("dpsgd_mnist", ("jax",), batch_size=32, repeats=5, warmup=2, profile_runs=3)
    assert report.failures == ()
    timing = report.frameworks["jax"]
    kernels = {kernel.name for kernel in census(parse_hlo(timing.module_text)).kernels}
    profiled = {kernel.hlo_op for kernel in timing.kernels}
    # Every hlo_op the profiler reported exists as a kernel of the module that ran, and every kernel ran.
    assert profiled == kernels
    # JAX's trace held each profiled run's annotation, so each kernel's time has its spread over the 3 runs, and
    # the per-run mean lies within the runs' range.
    assert [k.hlo_op for k in timing.kernels if k.spread is None] == []
    assert [k.hlo_op for k in timing.kernels if not k.spread.low * 0.999 <= k.total_us <= k.spread.high * 1.001] == []
    # No op's time is counted twice: each kernel has exactly one profiler event per launch, so its calls per run
    # are the launches per step the census counts from the module (loop trip counts included). Reading an event
    # twice (two trace files, an end marker) doubles them, on any number of cores.
    launches = {kernel.name: kernel.trips for kernel in census(parse_hlo(timing.module_text)).kernels}
    assert [(k.hlo_op, k.calls) for k in timing.kernels if k.calls != launches[k.hlo_op]] == []
    # Stated tolerance, against the step time of the same profiled runs (a machine whose load changes between the
    # steady and the profiled runs would skew any other ratio): busy time (some op of the module running) covers
    # 50% to 105% of the step; below 100% is dispatch and argument handling between ops, and it cannot exceed the
    # step beyond clock granularity. The kernels' summed time is at least the busy time; how far above depends on
    # how many thunks XLA:CPU's thread pool ran at once (seen: 78% to 258% of the step on a 2-core machine), so
    # it bounds nothing from above: the launch counts are what catch a double count.
    assert timing.profiled_step_ms is not None and timing.busy_ms is not None
    busy = timing.busy_ms / timing.profiled_step_ms
    assert 0.5 <= busy <= 1.05, busy
    summed = sum(kernel.total_us for kernel in timing.kernels) / 1e3
    assert timing.busy_ms * 0.999 <= summed, summed
    assert timing.compile_s > 0 and min(timing.runs_ms) > 0


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_time_cli_json_both_frameworks(capsys):
    status = main(["time", "--program", "linear_grad", "--repeats", "5", "--profile-runs", "2", "--json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    record = TimingRecord.from_json(data, "stdout")  # what users script against reads back, every key typed
    assert record.to_json() == data
    assert set(record.frameworks) == {"jax", "tf"} and record.failures == ()
    assert record.backend == "cpu"
    for name, timing in record.frameworks.items():
        assert timing.runs == 5, name
        # Both profilers saw the annotation around each profiled run, so every kernel has its per-run spread.
        assert [k.hlo_op for k in timing.kernels if k.spread is None] == [], name
    # The same jax compiles the same module as the committed reference dump: its kernels are the ones that ran, the
    # same kernels (the fingerprint), so diff --timing takes the file.
    for framework in ("jax", "tf"):
        root = reference_dumps("cpu") if framework == "jax" else REPO / "dumps/cpu"  # TF's own XLA: one version
        reference = read_hlo(root / f"linear_grad/{framework}/after_optimizations.txt")[0]
        assert set(record.kernel_times(framework)) == {k.name for k in census(reference).kernels}, framework
        assert record.frameworks[framework].module_fingerprint == module_fingerprint(reference), framework


def test_diff_with_timing_splits_time_between_matched_and_unmatched(tmp_path, capsys):
    dumps = REPO / "dumps/cpu/linear_grad"
    jax_kernels = {k.name for k in census(read_hlo(dumps / "jax/after_optimizations.txt")[0]).kernels}
    tf_kernels = {k.name for k in census(read_hlo(dumps / "tf/after_optimizations.txt")[0]).kernels}
    assert (jax_kernels, tf_kernels) == ({"dot.2", "broadcast_multiply_fusion", "broadcast_multiply_fusion.1"},
                                         {"dot_add_fusion", "broadcast_multiply_fusion", "subtract_multiply_fusion"})
    def timed(*kernels: tuple[str, float]) -> FrameworkTiming:
        return FrameworkTiming("x", "0", 1.0, (0.01,), tuple(KernelTime(op, 1, us, us / 10.0) for op, us in kernels))

    timing = TimingReport("linear_grad", None, {
        "jax": timed(("dot.2", 3.0), ("broadcast_multiply_fusion", 2.0), ("broadcast_multiply_fusion.1", 1.0)),
        "tf": timed(("dot_add_fusion", 4.0), ("broadcast_multiply_fusion", 2.5), ("subtract_multiply_fusion", 0.5))})
    path = tmp_path / "timing.json"
    path.write_text(json.dumps(timing.to_json()))
    args = ["diff", "jax", "tf", "--program", "linear_grad", "--dumps", str(REPO / "dumps"), "--timing", str(path)]
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted((m["a"], m["b"], m["a_us"], m["b_us"], m["delta_us"]) for m in data["matched"]) == [
        ("broadcast_multiply_fusion", "broadcast_multiply_fusion", 2.0, 2.5, 0.5),
        ("broadcast_multiply_fusion.1", "subtract_multiply_fusion", 1.0, 0.5, -0.5)]
    assert data["only_a_us"] == {"dot.2": 3.0}
    assert data["only_b_us"] == {"dot_add_fusion": 4.0}
    assert data["time_split_us"] == {"matched_a": 3.0, "matched_b": 3.0, "only_a": 3.0, "only_b": 4.0}
    assert main(args) == 0
    assert ("kernel time per step: A 6.0us, B 7.0us (B-A +1.0us): matched kernels +0.0us, kernels only in A 3.0us, "
            "only in B 4.0us") in capsys.readouterr().out
    path.write_text(json.dumps(TimingReport("linear_grad", None, {"tf": timing.frameworks["tf"]}).to_json()))
    assert main(args) == 1
    assert capsys.readouterr().err == (f"xlainspect: {path}: no per-kernel times for 'jax' (it timed tf); give the "
                                       "output of 'xlainspect time --program P --json' (A and B must be framework "
                                       "names)\n")
    path.write_text("{}")  # not what `time --json` writes: one line naming the first key it lacks
    assert main(args) == 1
    assert capsys.readouterr().err == (f"xlainspect: {path}: 'program' is missing; not the output of 'xlainspect "
                                       "time --program P --json' (an older or foreign file?)\n")


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_time_cli_uncompiled_build_has_whole_step_times_only(capsys):
    status = main(["time", "--program", "dpsgd_ffnn", "--batch-size", "4", "--no-compile", "--no-vectorize",
                   "--repeats", "3", "--json"])
    assert status == 0
    record = TimingRecord.from_json(json.loads(capsys.readouterr().out), "stdout")
    assert record.variant == "novec-nocompile"
    for name, timing in record.frameworks.items():
        assert timing.runs == 3 and timing.median_ms > 0, name
        assert timing.kernels == () and timing.module == "", name  # nothing was compiled as one module
        assert "no module to profile" in timing.note, name


def test_time_cli_refuses_to_unvectorize_a_program_without_per_example_gradients(capsys):
    assert main(["time", "--program", "sgd_mnist", "--no-vectorize"]) == 1
    assert "sgd_mnist has no per-example gradients" in capsys.readouterr().err


COMMAND_BUFFER_MODULE = textwrap.dedent("""\
    HloModule t
    %fused (p0: s32[], p1: s32[]) -> s32[] {
      %p0 = s32[] parameter(0)
      %p1 = s32[] parameter(1)
      ROOT %add = s32[] add(%p0, %p1)
    }
    %command_buffer (param: s32[], param.1: s32[]) -> s32[] {
      %param = s32[] parameter(0)
      %param.1 = s32[] parameter(1)
      ROOT %fusion.1 = s32[] fusion(%param, %param.1), kind=kLoop, calls=%fused
    }
    ENTRY %main (a: s32[], b: s32[]) -> s32[] {
      %a = s32[] parameter(0)
      %b = s32[] parameter(1)
      ROOT %call = s32[] call(%a, %b), to_apply=%command_buffer
    }
    """)


def test_command_buffer_calls_are_found_in_the_entry():
    assert command_buffer_calls(parse_hlo(COMMAND_BUFFER_MODULE)) == ("call",)
    assert command_buffer_calls(parse_hlo(MODULE)) == ()


def test_gpu_profile_is_repeated_with_command_buffers_off(monkeypatch):
    # No GPU here: stand in for the GPU children, and check what the parent asks of them and keeps.
    calls = []

    def fake_child(request, result_type, report, activity, xla_flags="", backend="cpu", python=None):
        calls.append({"flags": xla_flags, "backend": backend})
        if not xla_flags:
            return child_result("t", COMMAND_BUFFER_MODULE, [0.002, 0.002], {"call": [2000.0]})
        return child_result("t", COMMAND_BUFFER_MODULE.replace("to_apply=%command_buffer", "to_apply=%fused"),
                            [0.003], {"fusion.1": [1500.0]})

    monkeypatch.setattr("xlainspect.measure.timing.run_child", fake_child)
    monkeypatch.setattr("xlainspect.measure.timing.gpu_visible", lambda: True)  # the stand-ins play the GPU
    report = time_program("matvec", ("jax",), repeats=2, profile_runs=1, backend="gpu")
    assert calls == [{"flags": "", "backend": "gpu"}, {"flags": COMMAND_BUFFERS_OFF, "backend": "gpu"}]
    timing = report.frameworks["jax"]
    assert timing.runs_ms == (2.0, 2.0)  # step times of the default build, with command buffers
    assert [(k.hlo_op, k.total_us) for k in timing.kernels] == [("fusion.1", 1500.0)]  # kernels of the re-run
    assert COMMAND_BUFFERS_OFF in timing.note


def test_gpu_backend_without_a_gpu_says_so(capsys):
    if gpu_visible():
        pytest.skip("a GPU is visible: this test checks the message on machines without one")
    with pytest.raises(CaptureError, match=r"^--backend gpu: no NVIDIA GPU is visible on this machine"):
        time_program("matvec", ("jax", "tf"), repeats=1, profile_runs=0, backend="gpu")
    assert main(["time", "--program", "matvec", "--backend", "gpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("no NVIDIA GPU is visible") == 1 and err.count("\n") == 1  # one message, once


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_tf_hlo_timed_through_jax_runtime_is_labelled_and_attributed():
    # The child checks the outputs against the float64 reference and fails when they differ.
    report = time_program("dpsgd_ffnn", ("tf",), batch_size=8, repeats=3, profile_runs=2, tf_via_jax=True)
    assert not report.failures, report.failures
    timing = report.frameworks["tf"]
    assert timing.module_name.startswith("a_inference_dpsgd_ffnn_step")  # TF's module, not a JAX one
    assert "JAX's XLA" in timing.note and "not TF's runtime" in timing.note
    module = parse_hlo(timing.module_text)
    assert {k.hlo_op for k in timing.kernels} == {k.name for k in census(module).kernels}


DPSGD_MNIST_JAX = REPO / "dumps/cpu/dpsgd_mnist/jax/after_optimizations.txt"


@pytest.mark.parametrize("program,batch_size,backend,fingerprint,differs", [
    ("dpsgd_mnist", 16, "cpu", "", "batch size 16 against 128"),
    ("sgd_mnist", 128, "cpu", "", "program sgd_mnist against dpsgd_mnist"),
    ("dpsgd_mnist", 128, "gpu", "", "backend gpu against cpu"),
    ("dpsgd_mnist", 128, "cpu", "0123456789abcdef", ("module fingerprint 0123456789abcdef against {dumped}: other "
                                                     "kernels, from another framework version or other flags")),
])
def test_timing_from_another_configuration_is_refused(tmp_path, capsys, program, batch_size, backend, fingerprint,
                                                      differs):
    def timed(fingerprint: str = "") -> FrameworkTiming:
        return FrameworkTiming("x", "0", 1.0, (0.01,), (KernelTime("fusion", 1, 1.0, 0.1),),
                               module_fingerprint=fingerprint)

    path = tmp_path / "timing.json"
    path.write_text(json.dumps(TimingReport(program, batch_size, {"jax": timed(fingerprint), "tf": timed()},
                                            backend=backend).to_json()))
    dumps = str(REPO / "dumps")
    dumped = module_fingerprint(read_hlo(DPSGD_MNIST_JAX)[0])
    expected = (f"xlainspect: {path}: its jax times do not belong to {REPO}/dumps/cpu/dpsgd_mnist/jax/ "
                f"({differs.format(dumped=dumped)}); time the dump's program: 'xlainspect time --program "
                "dpsgd_mnist --batch-size 128 --json'\n")
    assert main(["diff", "jax", "tf", "--program", "dpsgd_mnist", "--dumps", dumps, "--timing", str(path)]) == 1
    assert capsys.readouterr().err == expected
    assert main(["report", "--program", "dpsgd_mnist", "--dumps", dumps, "--timing", str(path),
                 "-o", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "r.html").exists()
    # The same file for the dump's own configuration, and the dump's own module, is taken.
    path.write_text(json.dumps(TimingReport("dpsgd_mnist", 128, {"jax": timed(dumped), "tf": timed()}).to_json()))
    assert main(["diff", "jax", "tf", "--program", "dpsgd_mnist", "--dumps", dumps, "--timing", str(path)]) == 0


def spread_around(us: float, half_iqr: float) -> Spread:
    return Spread(us - 2 * half_iqr, us - half_iqr, us + half_iqr, us + 2 * half_iqr)


def test_diff_timing_prints_a_difference_within_the_spread_as_noise(tmp_path, capsys):
    # broadcast_multiply_fusion: 20 ± 3 against 25 ± 3, 5 apart with 6 of noise: within it. The other pair,
    # 10 ± 1 against 4 ± 1, is 6 apart with 2 of noise: a delta. Step medians 3 ms ± 0.5 against 3.2 ms ± 0.5.
    def timed(runs_ms, *kernels: tuple[str, float, float]) -> FrameworkTiming:
        return FrameworkTiming("x", "0", 1.0, runs_ms, tuple(KernelTime(op, 1, us, us / 100, None, None,
                                                                        spread_around(us, half))
                                                             for op, us, half in kernels))

    timing = TimingReport("linear_grad", None, {
        "jax": timed((2.0, 2.5, 3.0, 3.5, 4.0), ("dot.2", 30.0, 1.0), ("broadcast_multiply_fusion", 20.0, 3.0),
                     ("broadcast_multiply_fusion.1", 10.0, 1.0)),
        "tf": timed((2.2, 2.7, 3.2, 3.7, 4.2), ("dot_add_fusion", 40.0, 2.0), ("broadcast_multiply_fusion", 25.0, 3.0),
                    ("subtract_multiply_fusion", 4.0, 1.0))})
    path = tmp_path / "timing.json"
    path.write_text(json.dumps(timing.to_json()))
    args = ["diff", "jax", "tf", "--program", "linear_grad", "--dumps", str(REPO / "dumps"), "--timing", str(path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    same = next(line for line in lines if "broadcast_multiply_fusion " in line and line.startswith("  ~"))
    assert same.endswith(" 20.0±3.0us 25.0±3.0us within noise (±6.0us) broadcast x4, multiply x3, constant x2, "
                         "add, bitcast, subtract")
    other = next(line for line in lines if "subtract_multiply_fusion" in line)
    assert " 10.0±1.0us  4.0±1.0us -6.0us                broadcast x2, constant x2" in other  # columns in line
    assert other.index("broadcast x2") == same.index("broadcast x4")
    assert "  dot.2                              dot 30.0±1.0us: dot" in lines
    # Step quartiles of 2, 2.5, 3, 3.5, 4 ms are 2.25 and 3.75: ± 0.75 on each side, 1.5 together.
    assert "step time (median): A 3.000±0.750ms, B 3.200±0.750ms, B-A within noise (±1.500ms)" in lines
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    pairs = {m["a"]: (m["delta_us"], m["noise_us"], m["within_spread"]) for m in data["matched"]}
    assert pairs == {"broadcast_multiply_fusion": (5.0, 6.0, True), "broadcast_multiply_fusion.1": (-6.0, 2.0, False)}
    assert data["step_ms"] == {"a": 3.0, "b": 3.2, "delta": 0.2, "noise": 1.5, "within_spread": True}
    # A file from before spreads reads, and its deltas stay plain deltas: nothing says they are noise.
    data = json.loads(path.read_text())
    for summary in data["frameworks"].values():
        for kernel in summary["kernels"]:
            for key in ("min_us", "q1_us", "q3_us", "max_us"):
                del kernel[key]
    path.write_text(json.dumps(data))
    assert main(args + ["--json"]) == 0
    pairs = {m["a"]: (m["delta_us"], m["noise_us"], m["within_spread"])
             for m in json.loads(capsys.readouterr().out)["matched"]}
    assert pairs == {"broadcast_multiply_fusion": (5.0, None, None), "broadcast_multiply_fusion.1": (-6.0, None, None)}
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "   20.0us    25.0us +5.0us   broadcast x4" in out
