"""Tests for xlainspect bench: rows as measured, overhead factors, plots, no lost results."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.measure.bench import (
    MODELS,
    AblationRow,
    BenchRow,
    ablation_slowdowns,
    overhead_factors,
    run_ablation,
    run_bench,
)
from xlainspect.measure.records import csv_text
from xlainspect.measure.spread import Spread
from xlainspect.measure.timing import FrameworkTiming, TimingReport
from xlainspect.output.format import ablation_text, bench_text, unmeasured_text
from xlainspect.output.plots import figure_panels, plot_ablation, plot_bench, pyplot

REPO = Path(__file__).resolve().parents[1]


def row(model, private, framework, batch, median):
    return BenchRow(model, private, framework, batch, median, median, median, 0.1, 3)


def test_overhead_factors():
    rows = [row("ffnn", False, "jax", 16, 2.0), row("ffnn", True, "jax", 16, 5.0), row("ffnn", True, "tf", 16, 9.0)]
    assert overhead_factors(rows) == {("ffnn", "jax", 16): 2.5}  # tf has no non-private row to divide by


def test_plot_files(tmp_path):
    rows = [row("ffnn", p, f, b, b * (2 if p else 1) * (1.5 if f == "tf" else 1)) for p in (False, True)
            for f in ("jax", "tf") for b in (16, 32)]
    paths = plot_bench(rows, tmp_path)
    assert [p.name for p in paths] == ["bench.png", "bench.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()


def tf_fails_jax_runs(program, frameworks, batch, **settings):
    """Stands in for the timing child: TF fails; JAX's runs of 4, 1, 3, 2 and 5 ms have median 3, min 1, max 5."""
    (framework,) = frameworks
    if framework == "tf":
        return TimingReport(program, batch, {}, (("tf", "tf: timing failed"),))
    return TimingReport(program, batch, {framework: FrameworkTiming(
        framework, "0", 0.123456, (4.0, 1.0, 3.0, 2.0, 5.0))})


def test_rows_carry_each_statistic_in_its_column(tmp_path, monkeypatch):
    monkeypatch.setattr("xlainspect.measure.bench.time_program", tf_fails_jax_runs)
    notes = []
    rows = run_bench(tmp_path, ["ffnn"], ["jax", "tf"], [16], progress=lambda done, total, note: notes.append(note))
    assert rows == [BenchRow("ffnn", False, "jax", 16, 3.0, 1.0, 5.0, 0.1235, 5, 1.5, 4.5),
                    BenchRow("ffnn", True, "jax", 16, 3.0, 1.0, 5.0, 0.1235, 5, 1.5, 4.5)]
    assert "dpsgd_ffnn tf batch 16 failed: tf: timing failed" in notes  # the sweep goes on without the row
    assert BenchRow.read(tmp_path / "bench.csv") == rows
    # ... and the CSV keeps the failures as rows without figures, their note saying why.
    assert [(r["private"], r["framework"], r["median_ms"], r["note"]) for r in BenchRow.unmeasured(
        tmp_path / "bench.csv")] == [("False", "tf", "", "not measured: tf: timing failed"),
                                     ("True", "tf", "", "not measured: tf: timing failed")]
    builds = run_ablation(tmp_path, ["mnist"], ["jax"], batch_size=8)
    assert [(r.build, r.median_ms, r.min_ms, r.max_ms, r.runs, r.q1_ms, r.q3_ms) for r in builds] == [
        (build, 3.0, 1.0, 5.0, 5, 1.5, 4.5) for build in ("full", "novec", "nocompile", "novec-nocompile")]
    assert AblationRow.read(tmp_path / "ablation.csv") == builds


@pytest.mark.slow
@pytest.mark.requires_jax
def test_sweep_rows_and_interruption(tmp_path):
    rows = run_bench(tmp_path, ["ffnn"], ["jax"], [16], repeats=2)
    assert [(r.model, r.private, r.framework, r.batch_size, r.runs) for r in rows] == [
        ("ffnn", False, "jax", 16, 2), ("ffnn", True, "jax", 16, 2)]
    assert BenchRow.read(tmp_path / "bench.csv") == rows
    with pytest.raises(InputError) as info:
        run_bench(tmp_path, ["ffnn"], ["jax"], [16], repeats=2)
    assert str(info.value) == (f"{tmp_path / 'bench.csv'}: results from an earlier run are there; add --force to "
                               "replace them or give --out")

    def interrupt_after_first(done, total, note):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(tmp_path, ["ffnn"], ["jax"], [16], repeats=2, force=True, progress=interrupt_after_first)
    kept = BenchRow.read(tmp_path / "bench.csv")  # the row measured before the interruption is kept
    assert [(r.model, r.private, r.framework, r.batch_size, r.runs) for r in kept] == [("ffnn", False, "jax", 16, 2)]


def ablation_row(framework, build, median):
    return AblationRow("mnist", framework, build, build, 128, median, median, median, 0.1, 3)


def test_ablation_slowdowns_are_relative_to_the_full_build_of_the_same_framework():
    rows = [ablation_row("jax", "full", 2.0), ablation_row("jax", "novec", 30.0), ablation_row("tf", "novec", 8.0)]
    assert ablation_slowdowns(rows) == {("mnist", "jax", "full"): 1.0, ("mnist", "jax", "novec"): 15.0}


def test_ablation_plot_files(tmp_path):
    rows = [ablation_row(f, b, m) for f in ("jax", "tf") for b, m in (("full", 1.0), ("nocompile", 40.0))]
    paths = plot_ablation(rows, tmp_path)
    assert [p.name for p in paths] == ["ablation.png", "ablation.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "jax: nocompile" in paths[1].read_text()  # bar labels are kept as SVG text


@pytest.mark.slow
@pytest.mark.requires_jax
def test_ablation_times_every_build_and_keeps_the_csv(tmp_path):
    rows = run_ablation(tmp_path, ["ffnn"], ["jax"], batch_size=4, repeats=2)
    assert [(r.build, r.label) for r in rows] == [("full", "jit, vmap"), ("novec", "jit, no vmap"),
                                                  ("nocompile", "no jit, vmap"), ("novec-nocompile", "no jit, no vmap")]
    assert all(r.batch_size == 4 and r.runs == 2 for r in rows)
    assert AblationRow.read(tmp_path / "ablation.csv") == rows
    # Op-by-op dispatch of a Python loop of gradients cannot beat one compiled, vectorized step.
    slowdowns = ablation_slowdowns(rows)
    assert slowdowns[("ffnn", "jax", "novec-nocompile")] > 1.0
    with pytest.raises(InputError, match="add --force"):
        run_ablation(tmp_path, ["ffnn"], ["jax"], batch_size=4, repeats=2)


def spread_row(private: bool, framework: str, median: float, half_iqr: float | None) -> BenchRow:
    quartiles = (None, None) if half_iqr is None else (median - half_iqr, median + half_iqr)
    return BenchRow("ffnn", private, framework, 16, median, median / 2, median * 2, 0.1, 10, *quartiles)


def test_bench_table_prints_the_spread_and_calls_a_factor_within_it_noise():
    # jax: 2.0 ± 0.1 against 5.0 ± 0.2, a real overhead. tf: 4.0 ± 0.5 against 4.6 ± 0.2, 0.6 apart within 0.7.
    rows = [spread_row(False, "jax", 2.0, 0.1), spread_row(True, "jax", 5.0, 0.2),
            spread_row(False, "tf", 4.0, 0.5), spread_row(True, "tf", 4.6, 0.2)]
    lines = bench_text(rows, overhead_factors(rows)).splitlines()
    assert lines[0] == "  model  framework   batch    SGD ms       ±  DP-SGD ms       ±        DP/SGD"
    assert lines[1] == "  ffnn   jax            16     2.000  ±0.100      5.000  ±0.200         2.50x"
    assert lines[2] == "  ffnn   tf             16     4.000  ±0.500      4.600  ±0.200  within noise"
    assert lines[3] == "  ± is half the interquartile range of the timed runs"
    # Rows from before the quartiles were kept: no spread, so the factor is printed as measured.
    old = [spread_row(False, "tf", 4.0, None), spread_row(True, "tf", 4.6, None)]
    assert bench_text(old, overhead_factors(old)).splitlines()[1] == (
        "  ffnn   tf             16     4.000              4.600                 1.15x")


def test_ablation_table_prints_the_spread_and_calls_a_slowdown_within_it_noise():
    def build(name: str, median: float, half_iqr: float) -> AblationRow:
        return AblationRow("mnist", "tf", name, name, 128, median, median, median, 0.1, 10, median - half_iqr,
                           median + half_iqr)

    rows = [build("full", 10.0, 1.0), build("nocompile", 11.0, 0.5), build("novec", 30.0, 2.0),
            build("novec-nocompile", 0.38, 0.01), build("other", 2.0, 0.1)]
    lines = ablation_text(rows, ablation_slowdowns(rows)).splitlines()
    assert [line.split()[-1] for line in lines[1:6]] == ["1.0x", "noise", "3.0x", "0.038x", "0.2x"]
    assert "  10.000   ±1.000" in lines[1] and lines[2].endswith("within noise")


def test_a_bench_csv_from_before_the_quartiles_still_reads(tmp_path):
    path = tmp_path / "bench.csv"
    path.write_text("model,private,framework,batch_size,median_ms,min_ms,max_ms,compile_s,runs\n"
                    "ffnn,False,jax,16,0.1,0.1,0.2,0.3,10\n")
    (old,) = BenchRow.read(path)
    assert (old.q1_ms, old.q3_ms, old.spread, old.note) == (None, None, None, "")
    assert BenchRow.unmeasured(path) == []
    new = BenchRow("ffnn", False, "jax", 16, 0.1, 0.05, 0.2, 0.3, 10, 0.08, 0.12)
    path.write_text(csv_text(BenchRow.columns(), [new.to_row()]))
    (read,) = BenchRow.read(path)
    assert read == new and read.spread == Spread(0.05, 0.08, 0.12, 0.2)


def test_the_six_models_in_the_seeds_order_each_a_private_and_a_plain_program():
    from xlainspect.programs import choose_program

    assert MODELS == ("logreg", "ffnn", "mnist", "embedding", "lstm", "cifar10")
    assert all(choose_program(f"dpsgd_{m}").has_per_example_gradients for m in MODELS)
    assert not any(choose_program(f"sgd_{m}").has_per_example_gradients for m in MODELS)


# Seconds per step of the stand-in child below, by (program, batch size): DP-SGD grows slow, SGD stays fast.
STEP_S = {("dpsgd_ffnn", 1): 0.02, ("dpsgd_ffnn", 4): 0.12, ("dpsgd_ffnn", 8): 0.2, ("dpsgd_ffnn", 64): 1.0}


def stand_in_child(calls):
    """A time_program that takes (warm-up + repeats) steps of STEP_S seconds, reporting progress as children do."""

    def fake_time_program(program, frameworks, batch, repeats, warmup, progress, **settings):
        (framework,) = frameworks
        calls.append((program, batch, repeats, warmup))
        step = STEP_S.get((program, batch), 0.01)
        end = time.perf_counter() + step * (repeats + warmup)
        while time.perf_counter() < end:
            progress(f"{framework}: timing {program} in a child process")
            time.sleep(0.01)
        return TimingReport(program, batch, {framework: FrameworkTiming(framework, "0", 0.5,
                                                                        (step * 1e3,) * repeats)})

    return fake_time_program


def test_a_configuration_past_its_budget_is_timed_once_and_says_so(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("xlainspect.measure.bench.time_program", stand_in_child(calls))
    rows = run_bench(tmp_path, ["ffnn"], ["jax"], [8, 1, 64, 4, 128], repeats=4, budget_s=0.6)
    # Batch 1 fits its 4 runs and 2 warm-ups (0.12 s); batch 4 does not (0.72 s), so it is stopped and timed once;
    # batch 8 goes straight to one run; batch 64's one run (2 s) does not fit either, so 128 is not tried.
    # SGD fits everywhere.
    assert [c for c in calls if c[0] == "dpsgd_ffnn"] == [("dpsgd_ffnn", 1, 4, 2), ("dpsgd_ffnn", 4, 4, 2),
                                                          ("dpsgd_ffnn", 4, 1, 1), ("dpsgd_ffnn", 8, 1, 1),
                                                          ("dpsgd_ffnn", 64, 1, 1)]
    assert [(r.private, r.batch_size, r.runs, r.median_ms, r.note) for r in rows] == [
        (False, 1, 4, 10.0, ""), (False, 4, 4, 10.0, ""), (False, 8, 4, 10.0, ""), (False, 64, 4, 10.0, ""),
        (False, 128, 4, 10.0, ""), (True, 1, 4, 20.0, ""),
        (True, 4, 1, 120.0, "1 run: 4 runs did not finish within the 0.6 s budget"),
        (True, 8, 1, 200.0, "1 run: a smaller batch did not fit 4 runs in the 0.6 s budget")]
    assert BenchRow.read(tmp_path / "bench.csv") == rows
    assert [(r["private"], r["batch_size"], r["runs"], r["note"]) for r in BenchRow.unmeasured(
        tmp_path / "bench.csv")] == [
        ("True", "64", "", "not measured: too slow: one run did not finish within the 0.6 s budget either (a "
                           "smaller batch did not fit 4 runs in the 0.6 s budget)"),
        ("True", "128", "", "not measured: too slow: not tried, a smaller batch's one run did not finish within the "
                            "0.6 s budget")]


def test_one_repeat_past_the_budget_is_not_tried_twice(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("xlainspect.measure.bench.time_program", stand_in_child(calls))
    assert [r.private for r in run_bench(tmp_path, ["ffnn"], ["jax"], [64, 128], repeats=1, budget_s=0.6)] == [
        False, False]
    assert [c for c in calls if c[0] == "dpsgd_ffnn"] == [("dpsgd_ffnn", 64, 1, 2)]
    assert [r["note"] for r in BenchRow.unmeasured(tmp_path / "bench.csv")] == [
        "not measured: too slow: one run did not finish within the 0.6 s budget",
        "not measured: too slow: not tried, a smaller batch's one run did not finish within the 0.6 s budget"]


def test_without_a_budget_every_configuration_gets_all_its_runs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("xlainspect.measure.bench.time_program", stand_in_child(calls))
    rows = run_ablation(tmp_path, ["ffnn"], ["jax"], batch_size=4, repeats=4)
    assert [(r.build, r.runs, r.note) for r in rows] == [(b, 4, "") for b in ("full", "novec", "nocompile",
                                                                             "novec-nocompile")]
    assert calls == [("dpsgd_ffnn", 4, 4, 2)] * 4


def test_the_bench_command_passes_its_budget_and_prints_what_it_cut(capsys, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("xlainspect.measure.bench.time_program", stand_in_child(calls))
    monkeypatch.setitem(STEP_S, ("dpsgd_ffnn", 4), 0.3)  # 6 steps take 1.8 s, past the 1 s budget; 2 take 0.6 s
    status = main(["bench", "--models", "ffnn", "--frameworks", "jax", "--batch-sizes", "4,64", "--repeats", "4",
                   "--budget-s", "1", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 0
    assert "dpsgd_ffnn jax batch 4: 1 run: 4 runs did not finish within the 1 s budget" in captured.err
    assert [(r.private, r.batch_size, r.runs, r.note) for r in BenchRow.read(tmp_path / "bench.csv")] == [
        (False, 4, 4, ""), (False, 64, 4, ""), (True, 4, 1, "1 run: 4 runs did not finish within the 1 s budget")]
    lines = captured.out.splitlines()
    assert [line.rstrip() for line in lines[1:4]] == [
                          "  ffnn   jax             4    10.000  ±0.000    300.000   1 run        30.00x",
                          "  ffnn   jax            64    10.000  ±0.000",
                          "  ± is half the interquartile range of the timed runs; 1 run: timed once, its repeats did "
                          "not fit the time budget"]
    assert lines[4] == ("  dpsgd_ffnn jax batch 64: not measured: too slow: one run did not finish within the 1 s "
                        "budget either (a smaller batch did not fit 4 runs in the 1 s budget)")


def test_unmeasured_lines_name_the_program_and_the_build():
    assert unmeasured_text([
        {"model": "lstm", "private": "False", "framework": "tf", "batch_size": "256", "note": "not measured: a"},
        {"model": "lstm", "framework": "jax", "build": "novec", "label": "jit, no vmap", "batch_size": "128",
         "note": "not measured: b"}]).splitlines() == ["  sgd_lstm tf batch 256: not measured: a",
                                                       "  dpsgd_lstm jax (jit, no vmap) batch 128: not measured: b"]


def test_six_models_are_drawn_three_a_line_in_the_rows_order(tmp_path):
    rows = [row(m, False, "jax", 16, 1.0) for m in MODELS]
    figure, panels = figure_panels(rows, 6.0)
    assert [model for _, model in panels] == list(MODELS)
    assert [(axis.get_subplotspec().rowspan.start, axis.get_subplotspec().colspan.start) for axis, _ in panels] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert tuple(figure.get_size_inches()) == (18.0, 9.0)
    pyplot().close(figure)
    figure, panels = figure_panels(rows[:4], 6.0)  # four: two lines, the last two panels hidden
    assert [axis.get_visible() for axis in figure.axes] == [True] * 4 + [False] * 2
    pyplot().close(figure)


def test_plots_mark_configurations_timed_once(tmp_path):
    once = BenchRow("lstm", True, "jax", 128, 900.0, 900.0, 900.0, 1.0, 1, 900.0, 900.0, "1 run: ...")
    rows = [row("lstm", True, "jax", 16, 100.0), row("lstm", False, "jax", 16, 50.0)]
    plot_bench(rows, tmp_path)
    assert "timed once" not in (tmp_path / "bench.svg").read_text()
    plot_bench(rows + [once, replace(once, private=False)], tmp_path)
    assert (tmp_path / "bench.svg").read_text().count("hollow: timed once (budget)") == 1  # one legend entry
    builds = [ablation_row("jax", "full", 2.0),
              AblationRow("mnist", "jax", "novec", "jit, no vmap", 128, 90.0, 90.0, 90.0, 1.0, 1, 90.0, 90.0)]
    plot_ablation(builds, tmp_path)
    text = (tmp_path / "ablation.svg").read_text()
    assert "90 (1 run)" in text and "2 (1 run)" not in text


def test_bench_table_keeps_the_models_in_the_sweeps_order_not_the_alphabets():
    rows = [row(m, p, "jax", 16, 1.0) for m in ("mnist", "embedding") for p in (False, True)]
    assert [line.split()[0] for line in bench_text(rows, overhead_factors(rows)).splitlines()[1:3]] == [
        "mnist", "embedding"]


def test_plots_name_what_was_not_measured_under_the_model_it_belongs_to(tmp_path):
    rows = [row(m, True, "jax", 16, 1.0) for m in ("lstm", "ffnn")]
    plot_bench(rows, tmp_path)
    assert "not measured" not in (tmp_path / "bench.svg").read_text()
    plot_bench(rows, tmp_path, [{"model": "lstm", "private": "True", "framework": "tf", "batch_size": "256"}])
    text = (tmp_path / "bench.svg").read_text()
    assert "LSTM: one training step" in text and "not measured (too slow): DP-SGD tf 256" in text
    assert text.count("not measured") == 1  # under the LSTM's panel only
    builds = [ablation_row("jax", "full", 2.0)]
    plot_ablation(builds, tmp_path, [{"model": "mnist", "framework": "tf", "label": "novec"}])
    assert "not measured (too slow): tf: novec" in (tmp_path / "ablation.svg").read_text()


def test_bench_table_columns_grow_for_wide_figures():
    """JAX's DP-SGD embedding step measured 3504.897 ms ± 512.240 on this CPU: its cells must stay apart."""
    rows = [spread_row(False, "jax", 0.642, 0.17), spread_row(True, "jax", 3504.897, 512.24)]
    header, line = bench_text(rows, overhead_factors(rows)).splitlines()[:2]
    assert line.split() == ["ffnn", "jax", "16", "0.642", "±0.170", "3504.897", "±512.240", "5459.34x"]
    # Each cell ends where its header does: right-aligned in the same column.
    for title, cell in (("DP-SGD ms", "3504.897"), ("DP/SGD", "5459.34x")):
        assert header.index(title) + len(title) == line.index(cell) + len(cell)


def test_bench_of_a_users_program_lists_what_was_not_measured(tmp_path, monkeypatch, capsys):
    """`bench --program` says under its table which configurations failed, as the model sweep does."""
    monkeypatch.setattr("xlainspect.measure.bench.time_program", tf_fails_jax_runs)
    step = REPO / "docs" / "examples" / "regression.py"
    assert main(["bench", "--program", f"{step}:step", "--batch-sizes", "8", "--repeats", "5",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not measured: tf: timing failed" in out
    assert out.index("not measured") > out.index("DP/SGD")  # after the table
