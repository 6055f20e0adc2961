"""``xlainspect bench``: the seed's runtime experiment on this machine.

Median step time (with its quartiles, so tables can say what is noise) of the seed's six models (logistic
regression, FFNN, MNIST CNN, IMDb embedding, LSTM, CIFAR10 CNN, in the seed's order), private (DP-SGD) and not, in JAX
and TF, against batch size; each configuration in a fresh child process. Rows are appended to the CSV as they are
measured, so an interrupted sweep keeps what it measured. The DP overhead factor (private over non-private median) per framework, model and batch size
is what the seed's headline is about: with vectorization and compilation, DP-SGD costs little more than SGD.

The ablation (``--ablation``) is the seed's second table: the DP-SGD step at one batch size with vectorization
(``vmap`` / ``vectorized_map``) and compilation (``jit`` / XLA) each turned off, to show which of the two buys the
speed in each framework.

Some configurations take seconds to minutes per step on a CPU (the LSTM; the ablation's builds without ``jit`` or
``vmap``), so each configuration may be given a time budget: its child is stopped when the budget is spent, and the
configuration is timed again with one run. A row timed so says so in its ``note`` (and ``runs`` is 1); a
configuration whose one run does not fit the budget either is written as a row without figures whose ``note`` says
"not measured: too slow ...". Step time does not fall as the batch grows, so once a batch size of a series
(program, framework, build) has needed the one-run fallback, the larger ones go straight to it, and once one was not
measured, the larger ones are not tried. A configuration therefore takes at most twice the budget.

The rows are :class:`~xlainspect.measure.records.BenchRow` and :class:`~xlainspect.measure.records.AblationRow`
(re-exported here), written and read back as CSV through those classes.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xlainspect.errors import InputError
from xlainspect.measure.records import AblationRow, BenchRow
from xlainspect.measure.timing import FrameworkTiming, time_program

if TYPE_CHECKING:
    from xlainspect.programs import Variant

__all__ = ["ABLATION_BATCH_SIZE", "DEFAULT_BATCH_SIZES", "MODELS", "AblationRow", "BenchRow", "ablation_slowdowns",
           "overhead_factors", "run_ablation", "run_bench"]

MODELS = ("logreg", "ffnn", "mnist", "embedding", "lstm", "cifar10")  # the seed's order, its tables' and ours
WARMUP = 2  # untimed runs before the timed ones
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256)
ABLATION_BATCH_SIZE = 128  # the seed's


def _program(model: str, private: bool) -> str:
    return f"{'dpsgd' if private else 'sgd'}_{model}"


Row = TypeVar("Row", BenchRow, AblationRow)
Measure = Callable[[], "dict[str, Any] | str"]


def _check_names(models: Sequence[str], frameworks: Sequence[str]) -> None:
    for model in models:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    from xlainspect.runners.capture import ALL_FRAMEWORKS

    for framework in frameworks:
        if framework not in ALL_FRAMEWORKS:
            raise InputError(f"unknown framework {framework!r}; choose from {', '.join(ALL_FRAMEWORKS)}")


def _sweep(path: Path, row_type: type[Row], configs: Sequence[tuple[str, dict[str, Any], Measure]], force: bool,
           progress: Callable[[int, int, str], None] | None) -> list[Row]:
    """Runs ``configs`` (what, the row's identifying cells, measure) in order, appending each row to the CSV at
    ``path`` as soon as it exists.

    A measure returns the row's figures, or a message saying why the configuration failed: that is reported, written
    as a row without figures whose note says so, and the sweep goes on.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path.parent}: cannot create the results folder: {e.strerror}") from None
    if path.exists() and not force:
        raise InputError(f"{path}: results from an earlier run are there; add --force to replace them or give --out")
    report = progress or (lambda done, total, note: None)
    rows: list[Row] = []
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=row_type.columns())
        writer.writeheader()
        file.flush()
        for done, (what, key, measure) in enumerate(configs):
            report(done, len(configs), what)
            figures = measure()
            if isinstance(figures, str):
                report(done, len(configs), f"{what} failed: {figures}")
                writer.writerow({**key, "note": f"not measured: {figures}"})
            else:
                row = row_type(**key, **figures)
                rows.append(row)
                writer.writerow(row.to_row())
                if row.note:
                    report(done, len(configs), f"{what}: {row.note}")
            file.flush()
        report(len(configs), len(configs), "done")
    return rows


class _Stopped(Exception):
    """The configuration's time budget ran out while its child ran (the child is killed on the way out)."""


def _time_once(program: str, framework: str, batch: int, repeats: int, warmup: int, budget_s: float | None,
               variant: dict[str, bool]) -> FrameworkTiming | str:
    """One child's timing, or its failure; raises :class:`_Stopped` when it runs past ``budget_s`` seconds."""
    started = time.perf_counter()

    def watch(line: str) -> None:  # time_program's children call this every two seconds while they run
        if budget_s is not None and time.perf_counter() - started > budget_s:
            raise _Stopped

    timing = time_program(program, (framework,), batch, repeats=repeats, warmup=warmup, profile_runs=0,
                          progress=watch, **variant)
    return timing.failures[0][1] if timing.failures else timing.frameworks[framework]


def _measure(program: str, framework: str, batch: int, repeats: int, budget_s: float | None,
             slow: dict[str, str], **variant: bool) -> dict[str, Any] | str:
    """A configuration's figures within its budget: all ``repeats`` runs, else one run (saying why), else why not.

    Args:
        slow: by series (program, framework, build), what a smaller batch of it ran into ("1 run" or "too slow");
            updated.
    """
    series = f"{program} {framework} {variant}"
    from xlainspect.programs import PROGRAMS

    if program in PROGRAMS and (why_not := PROGRAMS[program].unavailable(framework)):
        return f"not available: {why_not}"
    if slow.get(series) == "too slow":
        return f"too slow: not tried, a smaller batch's one run did not finish within the {budget_s:g} s budget"
    why = f"a smaller batch did not fit {repeats} runs in the {budget_s or 0:g} s budget"  # for a "1 run" series
    if series not in slow:
        try:
            result = _time_once(program, framework, batch, repeats, WARMUP, budget_s, variant)
            return result if isinstance(result, str) else _figures(result, "")
        except _Stopped:
            slow[series] = "1 run" if repeats > 1 else "too slow"
            if repeats == 1:
                return f"too slow: one run did not finish within the {budget_s:g} s budget"
            why = f"{repeats} runs did not finish within the {budget_s:g} s budget"
    try:
        result = _time_once(program, framework, batch, 1, 1, budget_s, variant)
    except _Stopped:
        slow[series] = "too slow"
        return f"too slow: one run did not finish within the {budget_s:g} s budget either ({why})"
    return result if isinstance(result, str) else _figures(result, f"1 run: {why}")


def _figures(result: FrameworkTiming, note: str) -> dict[str, Any]:
    q1, q3 = result.iqr_ms
    return {"median_ms": round(result.median_ms, 4), "min_ms": round(min(result.runs_ms), 4),
            "max_ms": round(max(result.runs_ms), 4), "compile_s": round(result.compile_s, 4),
            "runs": len(result.runs_ms), "q1_ms": round(q1, 4), "q3_ms": round(q3, 4), "note": note}


def run_bench(out_dir: str | os.PathLike[str], models: Sequence[str] = MODELS, frameworks: Sequence[str] = ("jax", "tf"),
              batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 10, force: bool = False,
              progress: Callable[[int, int, str], None] | None = None,
              budget_s: float | None = None) -> list[BenchRow]:
    """Measures every configuration, appending each row to ``out_dir/bench.csv`` as soon as it is measured.

    Args:
        progress: called with (configurations done, total, what runs next or what failed).
        budget_s: seconds one configuration's child may run (start, compile, warm-up, timed runs) before the
            one-run fallback (see the module's docstring); None for no limit.

    Returns:
        The measured rows; configurations that failed are in the CSV only, as rows without figures.

    Raises:
        InputError: an unknown model or framework, results already there without ``force``, or a folder that
            cannot be written.
    """
    _check_names(models, frameworks)
    slow: dict[str, str] = {}

    def config(model: str, private: bool, framework: str, batch: int) -> tuple[str, dict[str, Any], Measure]:
        program = _program(model, private)
        key = {"model": model, "private": private, "framework": framework, "batch_size": batch}
        return (f"{program} {framework} batch {batch}", key,
                lambda: _measure(program, framework, batch, repeats, budget_s, slow))

    configs = [config(m, p, f, b) for m in models for p in (False, True) for b in sorted(batch_sizes)
               for f in frameworks]
    return _sweep(Path(out_dir) / "bench.csv", BenchRow, configs, force, progress)


def run_program_bench(out_dir: str | os.PathLike[str], program: str, frameworks: Sequence[str] = ("jax", "tf"),
                      batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 10, force: bool = False,
                      progress: Callable[[int, int, str], None] | None = None,
                      budget_s: float | None = None) -> list[BenchRow]:
    """The sweep on one program of any kind, e.g. a user's ``FILE.py:NAME`` whose ``NAME`` takes ``batch_size``:
    step time against batch size per framework, into ``out_dir/bench.csv`` (``model`` is the program's name,
    ``private`` False).

    Raises:
        InputError: an unknown or bad program, one without a batch dimension, or as :func:`run_bench`.
    """
    from xlainspect.programs import choose_program

    choice = choose_program(program)
    choice.require_batch("there is no batch size to sweep")
    _check_names((), frameworks)
    slow: dict[str, str] = {}

    def config(framework: str, batch: int) -> tuple[str, dict[str, Any], Measure]:
        key = {"model": choice.name, "private": False, "framework": framework, "batch_size": batch}
        return (f"{choice.name} {framework} batch {batch}", key,
                lambda: _measure(program, framework, batch, repeats, budget_s, slow))

    configs = [config(f, b) for b in sorted(batch_sizes) for f in frameworks]
    return _sweep(Path(out_dir) / "bench.csv", BenchRow, configs, force, progress)


def run_ablation(out_dir: str | os.PathLike[str], models: Sequence[str] = MODELS,
                 frameworks: Sequence[str] = ("jax", "tf"), batch_size: int = ABLATION_BATCH_SIZE, repeats: int = 10,
                 force: bool = False, progress: Callable[[int, int, str], None] | None = None,
                 budget_s: float | None = None) -> list[AblationRow]:
    """The seed's ablation: every build of :data:`xlainspect.programs.ABLATION` per model and framework, into ``ablation.csv``.

    Args:
        budget_s: as :func:`run_bench`.

    Raises:
        InputError: as :func:`run_bench`.
    """
    from xlainspect.programs import ABLATION

    _check_names(models, frameworks)
    if torch := [f for f in frameworks if f in ("torch", "torch_xla")]:
        raise InputError(f"the ablation builds are JAX's and TF's, not {' or '.join(torch)}'s: eager PyTorch is the "
                         "uncompiled build and torch_xla the compiled one, both in the sweep; leave them out of "
                         "--frameworks with --ablation")
    slow: dict[str, str] = {}

    def config(model: str, framework: str, variant: Variant) -> tuple[str, dict[str, Any], Measure]:
        program, label = _program(model, True), variant.label(framework)
        key = {"model": model, "framework": framework, "build": variant.slug, "label": label,
               "batch_size": batch_size}
        return (f"{program} {framework} ({label}) batch {batch_size}", key,
                lambda: _measure(program, framework, batch_size, repeats, budget_s, slow,
                                 vectorize=variant.vectorize, compiled=variant.compiled))

    configs = [config(m, f, v) for m in models for f in frameworks for v in ABLATION]
    return _sweep(Path(out_dir) / "ablation.csv", AblationRow, configs, force, progress)


def ablation_slowdowns(rows: Sequence[AblationRow]) -> dict[tuple[str, str, str], float]:
    """Each build's median over the full build's (vectorized and compiled), by (model, framework, build)."""
    full = {(r.model, r.framework): r.median_ms for r in rows if r.build == "full"}
    return {(r.model, r.framework, r.build): r.median_ms / full[(r.model, r.framework)]
            for r in rows if (r.model, r.framework) in full}


SEED_SPEEDUP_OVER_OPACUS = 5.0
"""The seed's headline: JAX's DP-SGD step 5x faster than Opacus' on the CNN (on a GPU)."""


def speedups(rows: Sequence[BenchRow], fast: str = "jax",
             slow: str = "torch") -> dict[tuple[str, bool, int], float]:
    """How many times faster ``fast``'s median step is than ``slow``'s, by (model, private, batch size): with the
    defaults, JAX over eager PyTorch (Opacus for DP-SGD), the seed's comparison."""
    medians = {(r.model, r.private, r.batch_size, r.framework): r.median_ms for r in rows}
    return {(m, p, b): medians[(m, p, b, slow)] / medians[(m, p, b, fast)]
            for (m, p, b, f) in medians if f == fast and (m, p, b, slow) in medians and medians[(m, p, b, f)] > 0}


def overhead_factors(rows: Sequence[BenchRow]) -> dict[tuple[str, str, int], float]:
    """DP overhead: private over non-private median step time, by (model, framework, batch size)."""
    medians = {(r.model, r.framework, r.batch_size, r.private): r.median_ms for r in rows}
    return {(m, f, b): medians[(m, f, b, True)] / medians[(m, f, b, False)]
            for (m, f, b, private) in medians if private and (m, f, b, False) in medians}
