"""``xlainspect bench``: the seed's runtime experiment on this machine.

Median step time of the FFNN and MNIST programs, private (DP-SGD) and not, in JAX and TF, against batch size; each
configuration in a fresh child process. Rows are appended to the CSV as they are measured, so an interrupted sweep
keeps what it measured. The DP overhead factor (private over non-private median) per framework, model and batch size
is what the seed's headline is about: with vectorization and compilation, DP-SGD costs little more than SGD.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.timing import time_program

MODELS = ("ffnn", "mnist")
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class BenchRow:
    """One measured configuration."""

    model: str
    private: bool
    framework: str
    batch_size: int
    median_ms: float
    min_ms: float
    max_ms: float
    compile_s: float
    runs: int


def _program(model: str, private: bool) -> str:
    return f"{'dpsgd' if private else 'sgd'}_{model}"


def run_bench(out_dir: str | os.PathLike[str], models: Sequence[str] = MODELS, frameworks: Sequence[str] = ("jax", "tf"),
              batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 10, force: bool = False,
              progress: Callable[[int, int, str], None] | None = None) -> list[BenchRow]:
    """Measures every configuration, appending each row to ``out_dir/bench.csv`` as soon as it is measured.

    Args:
        progress: called with (configurations done, total, what runs next or what failed).

    Raises:
        InputError: an unknown model or framework, results already there without ``force``, or a folder that
            cannot be written.
    """
    for model in models:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    for framework in frameworks:
        if framework not in ("jax", "tf"):
            raise InputError(f"unknown framework {framework!r}; choose jax or tf")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the results folder: {e.strerror}") from None
    path = out / "bench.csv"
    if path.exists() and not force:
        raise InputError(f"{path}: results from an earlier run are there; add --force to replace them or give --out")
    configs = [(m, p, f, b) for m in models for p in (False, True) for b in batch_sizes for f in frameworks]
    report = progress or (lambda done, total, note: None)
    rows: list[BenchRow] = []
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=[f.name for f in fields(BenchRow)])
        writer.writeheader()
        file.flush()
        for done, (model, private, framework, batch) in enumerate(configs):
            program = _program(model, private)
            report(done, len(configs), f"{program} {framework} batch {batch}")
            timing = time_program(program, (framework,), batch, repeats=repeats, warmup=2, profile_runs=0)
            if timing.failures:
                report(done, len(configs), f"{program} {framework} batch {batch} failed: {timing.failures[0][1]}")
                continue
            result = timing.frameworks[framework]
            row = BenchRow(model, private, framework, batch, round(result.median_ms, 4), round(min(result.runs_ms), 4),
                           round(max(result.runs_ms), 4), round(result.compile_s, 4), len(result.runs_ms))
            rows.append(row)
            writer.writerow(asdict(row))
            file.flush()
        report(len(configs), len(configs), "done")
    return rows


def overhead_factors(rows: Sequence[BenchRow]) -> dict[tuple[str, str, int], float]:
    """DP overhead: private over non-private median step time, by (model, framework, batch size)."""
    medians = {(r.model, r.framework, r.batch_size, r.private): r.median_ms for r in rows}
    return {(m, f, b): medians[(m, f, b, True)] / medians[(m, f, b, False)]
            for (m, f, b, private) in medians if private and (m, f, b, False) in medians}


def plot_bench(rows: Sequence[BenchRow], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Median step time against batch size, one panel per model, writes ``bench.png`` and ``bench.svg``.

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise FrameworkUnavailable("plots need matplotlib; install it with pip install 'xlainspect[plot]'") from e
    models = sorted({row.model for row in rows})
    figure, axes = plt.subplots(1, max(len(models), 1), figsize=(6 * max(len(models), 1), 4.5), squeeze=False)
    for axis, model in zip(axes[0], models):
        for framework in sorted({row.framework for row in rows}):
            for private in (False, True):
                points = sorted((r.batch_size, r.median_ms) for r in rows
                                if r.model == model and r.framework == framework and r.private == private)
                if points:
                    axis.plot(*zip(*points), marker="o", linestyle="-" if private else "--",
                              label=f"{framework} {'DP-SGD' if private else 'SGD'}")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel("median step time (ms)")
        axis.set_title(f"{model.upper()}: one training step")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    paths = [Path(out_dir) / "bench.png", Path(out_dir) / "bench.svg"]
    for path in paths:
        figure.savefig(path)
    plt.close(figure)
    return paths
