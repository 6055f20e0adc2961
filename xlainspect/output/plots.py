"""The figures: step time against batch size, the ablation bars, peak memory against batch size.

Matplotlib is loaded only when a figure is drawn; each is saved as PNG and SVG side by side.

matplotlib is an extra (``[plot]``); a command that draws says so plainly when it is missing, and the headless Agg
backend is chosen before pyplot loads, so drawing works on machines without a screen.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlainspect.errors import FrameworkUnavailable

if TYPE_CHECKING:
    from xlainspect.measure.records import AblationRow, BenchRow, MaxBatch


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend.

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise FrameworkUnavailable("plots need matplotlib; install it with pip install 'xlainspect[plot]'") from e
    return plt


def save_figure(figure: Any, base: Path) -> list[Path]:
    """Writes ``base.png`` and ``base.svg``, then frees the figure."""
    figure.tight_layout()
    paths = [base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")]
    for path in paths:
        figure.savefig(path)
    pyplot().close(figure)
    return paths


def plot_bench(rows: Sequence[BenchRow], out_dir: str | os.PathLike[str],
               unmeasured: Sequence[Mapping[str, str]] = ()) -> list[Path]:
    """Median step time against batch size, one panel per model, writes ``bench.png`` and ``bench.svg``.

    Error bars span each configuration's interquartile range (none for rows written before it was kept).

    Args:
        unmeasured: the cells of the configurations that were not measured (``BenchRow.unmeasured``), named under
            their model's panel title so that no gap in a curve goes unexplained.

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    figure, panels = figure_panels(rows, 6.0)
    for axis, model in panels:
        single = False
        for framework in sorted({row.framework for row in rows}):
            for private in (False, True):
                chosen = sorted((r for r in rows if r.model == model and r.framework == framework
                                 and r.private == private), key=lambda r: r.batch_size)
                if not chosen:
                    continue
                below = [r.median_ms - r.spread.q1 if r.spread is not None else 0.0 for r in chosen]
                above = [r.spread.q3 - r.median_ms if r.spread is not None else 0.0 for r in chosen]
                drawn = axis.errorbar([r.batch_size for r in chosen], [r.median_ms for r in chosen],
                                      yerr=[[max(b, 0.0) for b in below], [max(a, 0.0) for a in above]],
                                      marker="o", capsize=3, linestyle="-" if private else "--",
                                      label=f"{framework} {'DP-SGD' if private else 'SGD'}")
                once = [r for r in chosen if r.runs == 1]
                if once:  # timed once within the budget: a hollow marker, so no one reads it as a median
                    axis.plot([r.batch_size for r in once], [r.median_ms for r in once], marker="o", linestyle="",
                              markerfacecolor="white", color=drawn.lines[0].get_color(), zorder=3,
                              label="_" if single else "hollow: timed once (budget)")
                    single = True
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel("median step time (ms), bars: IQR")
        gone = [f"{'DP-SGD' if c['private'] == 'True' else 'SGD'} {c['framework']} {c['batch_size']}"
                for c in unmeasured if c["model"] == model]
        axis.set_title(f"{model.upper()}: one training step" + _not_measured(gone))
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    return save_figure(figure, Path(out_dir) / "bench")


def plot_ablation(rows: Sequence[AblationRow], out_dir: str | os.PathLike[str],
                  unmeasured: Sequence[Mapping[str, str]] = ()) -> list[Path]:
    """Median step time of every build, one bar per build (its whiskers the IQR), one panel per model; writes
    ``ablation.png``/``.svg``.

    Args:
        unmeasured: as :func:`plot_bench` (``AblationRow.unmeasured``).

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    figure, panels = figure_panels(rows, 6.5)
    for axis, model in panels:
        bars = [r for r in rows if r.model == model]
        labels = [f"{r.framework}: {r.label}" for r in bars]
        below = [max(r.median_ms - r.spread.q1, 0.0) if r.spread is not None else 0.0 for r in bars]
        above = [max(r.spread.q3 - r.median_ms, 0.0) if r.spread is not None else 0.0 for r in bars]
        drawn = axis.barh(range(len(bars)), [r.median_ms for r in bars], xerr=[below, above], capsize=3,
                          color=["tab:blue" if r.framework == "jax" else "tab:orange" for r in bars])
        for bar, r in zip(drawn, bars):
            if r.runs == 1:  # timed once within the budget: hatched, and its label says so
                bar.set_hatch("//")
        axis.set_yticks(range(len(bars)), labels)
        axis.invert_yaxis()
        axis.set_xscale("log")
        axis.set_xlabel("median step time (ms, log scale)")
        batch = bars[0].batch_size if bars else ""
        gone = [f"{c['framework']}: {c['label']}" for c in unmeasured if c["model"] == model]
        axis.set_title(f"{model.upper()} DP-SGD step, batch {batch}" + _not_measured(gone))
        if bars:  # room on the right for the figures written after each bar
            axis.set_xlim(right=max(r.median_ms + a for r, a in zip(bars, above)) * 8)
        axis.grid(True, axis="x", which="both", alpha=0.3)
        for y, (r, a) in enumerate(zip(bars, above)):  # right of the whisker, not on it
            axis.annotate(f" {r.median_ms:.3g}" + (" (1 run)" if r.runs == 1 else ""), (r.median_ms + a, y),
                          va="center", fontsize=8)
    return save_figure(figure, Path(out_dir) / "ablation")


PANELS_PER_LINE = 3  # six models on two lines stay readable on a page; one line of six did not


def _not_measured(configurations: Sequence[str]) -> str:
    """A second title line naming what a panel lacks, "" when it lacks nothing."""
    return "\n" + textwrap.fill(f"not measured (too slow): {', '.join(configurations)}", 48) if configurations else ""


def figure_panels(rows: Sequence[BenchRow | AblationRow], width: float,
                  height: float = 4.5) -> tuple[Any, list[tuple[Any, str]]]:
    """A figure and one (axis, model) panel per model, in the rows' order, at most :data:`PANELS_PER_LINE` a line;
    panels left over on the last line are hidden."""
    models = list(dict.fromkeys(row.model for row in rows))
    columns = min(max(len(models), 1), PANELS_PER_LINE)
    lines = -(-max(len(models), 1) // columns)
    figure, axes = pyplot().subplots(lines, columns, figsize=(width * columns, height * lines), squeeze=False)
    flat = [axis for line in axes for axis in line]
    for axis in flat[len(models):]:
        axis.set_visible(False)
    return figure, list(zip(flat, models))


def plot_curve(results: Sequence[MaxBatch], path: str | os.PathLike[str], title: str) -> list[Path]:
    """Peak bytes against batch size per framework, the limit and each largest batch marked (PNG and SVG).

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    if not results:
        return []
    figure, axis = pyplot().subplots(figsize=(7.0, 4.5))
    for result in results:
        points = sorted((p.batch_size, p.peak / 2**30) for p in result.curve)
        axis.plot(*zip(*points), marker="o", label=f"{result.framework}: largest batch {result.max_batch:,}")
    axis.axhline(results[0].limit / 2**30, color="grey", linestyle="--", label="device memory")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch size")
    axis.set_ylabel("compile-time peak (GiB)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    return save_figure(figure, Path(path))
