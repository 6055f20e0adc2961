"""``xlainspect bench``: the seed's runtime experiment on this machine.

Median step time (with its quartiles, so tables can say what is noise) of the FFNN and MNIST programs, private (DP-SGD) and not, in JAX and TF, against batch size; each
configuration in a fresh child process. Rows are appended to the CSV as they are measured, so an interrupted sweep
keeps what it measured. The DP overhead factor (private over non-private median) per framework, model and batch size
is what the seed's headline is about: with vectorization and compilation, DP-SGD costs little more than SGD.

The ablation (``--ablation``) is the seed's second table: the DP-SGD step at one batch size with vectorization
(``vmap`` / ``vectorized_map``) and compilation (``jit`` / XLA) each turned off, to show which of the two buys the
speed in each framework.

The rows are :class:`~xlainspect.measure.records.BenchRow` and :class:`~xlainspect.measure.records.AblationRow`
(re-exported here), written and read back as CSV through those classes.
"""

from __future__ import annotations

import csv
import os
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

MODELS = ("ffnn", "mnist")
DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256)
ABLATION_BATCH_SIZE = 128  # the seed's


def _program(model: str, private: bool) -> str:
    return f"{'dpsgd' if private else 'sgd'}_{model}"


Row = TypeVar("Row", BenchRow, AblationRow)


def _check_names(models: Sequence[str], frameworks: Sequence[str]) -> None:
    for model in models:
        if model not in MODELS:
            raise InputError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    for framework in frameworks:
        if framework not in ("jax", "tf"):
            raise InputError(f"unknown framework {framework!r}; choose jax or tf")


def _sweep(path: Path, row_type: type[Row], configs: Sequence[tuple[str, Callable[[], Row | str]]], force: bool,
           progress: Callable[[int, int, str], None] | None) -> list[Row]:
    """Runs ``configs`` (what, measure) in order, appending each row to the CSV at ``path`` as soon as it exists.

    A measure returns a row, or a message saying why the configuration failed (reported, and the sweep goes on).
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
        for done, (what, measure) in enumerate(configs):
            report(done, len(configs), what)
            row = measure()
            if isinstance(row, str):
                report(done, len(configs), f"{what} failed: {row}")
                continue
            rows.append(row)
            writer.writerow(row.to_row())
            file.flush()
        report(len(configs), len(configs), "done")
    return rows


def _measure(program: str, framework: str, batch: int, repeats: int, **variant: bool) -> FrameworkTiming | str:
    timing = time_program(program, (framework,), batch, repeats=repeats, warmup=2, profile_runs=0, **variant)
    return timing.failures[0][1] if timing.failures else timing.frameworks[framework]


def _figures(result: FrameworkTiming) -> dict[str, Any]:
    q1, q3 = result.iqr_ms
    return {"median_ms": round(result.median_ms, 4), "min_ms": round(min(result.runs_ms), 4),
            "max_ms": round(max(result.runs_ms), 4), "compile_s": round(result.compile_s, 4),
            "runs": len(result.runs_ms), "q1_ms": round(q1, 4), "q3_ms": round(q3, 4)}


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
    _check_names(models, frameworks)

    def config(model: str, private: bool, framework: str, batch: int) -> tuple[str, Callable[[], BenchRow | str]]:
        program = _program(model, private)

        def measure() -> BenchRow | str:
            result = _measure(program, framework, batch, repeats)
            return result if isinstance(result, str) else BenchRow(model, private, framework, batch,
                                                                   **_figures(result))

        return f"{program} {framework} batch {batch}", measure

    configs = [config(m, p, f, b) for m in models for p in (False, True) for b in batch_sizes for f in frameworks]
    return _sweep(Path(out_dir) / "bench.csv", BenchRow, configs, force, progress)


def run_program_bench(out_dir: str | os.PathLike[str], program: str, frameworks: Sequence[str] = ("jax", "tf"),
                      batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 10, force: bool = False,
                      progress: Callable[[int, int, str], None] | None = None) -> list[BenchRow]:
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

    def config(framework: str, batch: int) -> tuple[str, Callable[[], BenchRow | str]]:
        def measure() -> BenchRow | str:
            result = _measure(program, framework, batch, repeats)
            return result if isinstance(result, str) else BenchRow(choice.name, False, framework, batch,
                                                                   **_figures(result))

        return f"{choice.name} {framework} batch {batch}", measure

    configs = [config(f, b) for b in batch_sizes for f in frameworks]
    return _sweep(Path(out_dir) / "bench.csv", BenchRow, configs, force, progress)


def run_ablation(out_dir: str | os.PathLike[str], models: Sequence[str] = MODELS,
                 frameworks: Sequence[str] = ("jax", "tf"), batch_size: int = ABLATION_BATCH_SIZE, repeats: int = 10,
                 force: bool = False, progress: Callable[[int, int, str], None] | None = None) -> list[AblationRow]:
    """The seed's ablation: every build of :data:`xlainspect.programs.ABLATION` per model and framework, into ``ablation.csv``.

    Raises:
        InputError: as :func:`run_bench`.
    """
    from xlainspect.programs import ABLATION

    _check_names(models, frameworks)

    def config(model: str, framework: str, variant: Variant) -> tuple[str, Callable[[], AblationRow | str]]:
        program, label = _program(model, True), variant.label(framework)

        def measure() -> AblationRow | str:
            result = _measure(program, framework, batch_size, repeats, vectorize=variant.vectorize,
                              compiled=variant.compiled)
            return result if isinstance(result, str) else AblationRow(model, framework, variant.slug, label,
                                                                      batch_size, **_figures(result))

        return f"{program} {framework} ({label}) batch {batch_size}", measure

    configs = [config(m, f, v) for m in models for f in frameworks for v in ABLATION]
    return _sweep(Path(out_dir) / "ablation.csv", AblationRow, configs, force, progress)


def ablation_slowdowns(rows: Sequence[AblationRow]) -> dict[tuple[str, str, str], float]:
    """Each build's median over the full build's (vectorized and compiled), by (model, framework, build)."""
    full = {(r.model, r.framework): r.median_ms for r in rows if r.build == "full"}
    return {(r.model, r.framework, r.build): r.median_ms / full[(r.model, r.framework)]
            for r in rows if (r.model, r.framework) in full}


def overhead_factors(rows: Sequence[BenchRow]) -> dict[tuple[str, str, int], float]:
    """DP overhead: private over non-private median step time, by (model, framework, batch size)."""
    medians = {(r.model, r.framework, r.batch_size, r.private): r.median_ms for r in rows}
    return {(m, f, b): medians[(m, f, b, True)] / medians[(m, f, b, False)]
            for (m, f, b, private) in medians if private and (m, f, b, False) in medians}
