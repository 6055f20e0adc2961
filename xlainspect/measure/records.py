"""What the measurements write for users to script against, and the only code that reads it back.

``xlainspect time --json`` is a :class:`TimingRecord`; ``memory --json`` a :class:`MemoryRecord`, with
``--max-batch`` a :class:`MaxBatchRecord` and ``--check-peak`` a list of :class:`PeakCheck`; the bench CSVs hold
:class:`BenchRow` and :class:`AblationRow`, the max-batch curve :class:`CurvePoint`. These are public formats: keys
are added, never renamed, and a key added later is optional on reading (its default says what older files mean).
Everything else is required, so an older or foreign file fails with one :class:`~xlainspect.errors.RecordError`
line naming the file and key.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from xlainspect.errors import InputError, RecordError
from xlainspect.measure.spread import Spread
from xlainspect.runners.protocol import MemoryFigures
from xlainspect.runners.reading import Cells, Fields, read_csv, read_json_file

TIMING_HINT = "not the output of 'xlainspect time --program P --json' (an older or foreign file?)"
MEMORY_HINT = "not the output of 'xlainspect memory --program P --json' (an older or foreign file?)"
BENCH_HINT = "not a CSV that 'xlainspect bench' wrote"
CURVE_HINT = "not a curve that 'xlainspect memory --max-batch' wrote"


def csv_text(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV file's text: the header, then one line per row (values by column)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# -- xlainspect time --json --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelTime:
    """Time attributed to one HLO instruction over the profiled runs, per run.

    Attributes:
        hlo_op: the instruction, as the profiler's ``hlo_op`` field names it.
        calls: launches per run.
        total_us: µs per run, all launches (the mean over the profiled runs).
        share: ``total_us`` over the median step time.
        flops_per_s, bytes_per_s: achieved rates from the census, None when it gives no FLOPs or bytes.
        spread: how the per-run totals (all launches of one run summed) varied across the profiled runs; None with
            fewer than two runs, when the profile could not tell runs apart, and in files older than it.
    """

    hlo_op: str
    calls: int
    total_us: float
    share: float
    flops_per_s: float | None = None
    bytes_per_s: float | None = None
    spread: Spread | None = None

    @property
    def mean_us(self) -> float:
        return self.total_us / self.calls if self.calls else 0.0

    def rounded(self) -> KernelTime:
        """As ``time --json`` keeps it: µs to 3 decimals, the share to 4."""
        return replace(self, total_us=round(self.total_us, 3), share=round(self.share, 4),
                       spread=None if self.spread is None else self.spread.rounded(3))

    def to_json(self) -> dict[str, Any]:
        s = self.spread
        return {"hlo_op": self.hlo_op, "calls": self.calls, "total_us": round(self.total_us, 3),
                "mean_us": round(self.mean_us, 3), "share": round(self.share, 4), "flops_per_s": self.flops_per_s,
                "bytes_per_s": self.bytes_per_s, "min_us": None if s is None else round(s.low, 3),
                "q1_us": None if s is None else round(s.q1, 3), "q3_us": None if s is None else round(s.q3, 3),
                "max_us": None if s is None else round(s.high, 3)}

    @classmethod
    def from_fields(cls, f: Fields) -> KernelTime:
        f.get("mean_us", float)  # derived from the others, but part of the format
        # The per-run spread came later: a file without it reads with the spread unknown.
        bounds = [f.get(key, float, None, nullable=True) for key in ("min_us", "q1_us", "q3_us", "max_us")]
        spread = None if None in bounds else Spread(*bounds)
        return cls(f.get("hlo_op", str), f.get("calls", int), f.get("total_us", float), f.get("share", float),
                   f.get("flops_per_s", float, nullable=True), f.get("bytes_per_s", float, nullable=True), spread)


@dataclass(frozen=True)
class TimingSummary:
    """One framework's entry in ``time --json``: step statistics (ms), compile time (s) and per-kernel times.

    Attributes:
        module: the module that ran, "" when nothing was compiled as one module.
        profiled_step_ms: mean wall time of the profiled runs, None without them (and in files older than it).
        busy_ms: per profiled run, how long at least one op of the module ran; None where the profiler gives no
            intervals (and in files older than it).
        module_fingerprint: what the module that ran computes, with its layouts, names ignored
            (:func:`xlainspect.measure.timing.module_fingerprint`): whether the times belong to a dump's kernels.
            "" when nothing was compiled as one module, and in files older than it.
    """

    framework_version: str
    compile_s: float
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    runs: int
    module: str
    kernels: tuple[KernelTime, ...]
    note: str
    profiled_step_ms: float | None = None
    busy_ms: float | None = None
    module_fingerprint: str = ""

    @property
    def spread(self) -> Spread | None:
        """The step time's spread over the timed runs; None for a single run."""
        return Spread(self.min_ms, self.q1_ms, self.q3_ms, self.max_ms) if self.runs >= 2 else None

    def to_json(self) -> dict[str, Any]:
        return {"framework_version": self.framework_version, "compile_s": self.compile_s,
                "median_ms": self.median_ms, "min_ms": self.min_ms, "max_ms": self.max_ms, "q1_ms": self.q1_ms,
                "q3_ms": self.q3_ms, "runs": self.runs, "module": self.module,
                "module_fingerprint": self.module_fingerprint,
                "profiled_step_ms": self.profiled_step_ms, "busy_ms": self.busy_ms,
                "kernels": [kernel.to_json() for kernel in self.kernels], "note": self.note}

    @classmethod
    def from_fields(cls, f: Fields) -> TimingSummary:
        return cls(f.get("framework_version", str), f.get("compile_s", float), f.get("median_ms", float),
                   f.get("min_ms", float), f.get("max_ms", float), f.get("q1_ms", float), f.get("q3_ms", float),
                   f.get("runs", int), f.get("module", str),
                   tuple(KernelTime.from_fields(k) for k in f.records("kernels")), f.get("note", str),
                   f.get("profiled_step_ms", float, None, nullable=True), f.get("busy_ms", float, None, nullable=True),
                   f.get("module_fingerprint", str, ""))


@dataclass(frozen=True)
class TimingRecord:
    """What ``xlainspect time --json`` prints: every framework's summary of one program, and the failures.

    Attributes:
        batch_size: None for a program without a batch.
        variant: the ablation build (:attr:`xlainspect.programs.Variant.slug`); files older than it read as
            ``full``.
        failures: (framework, one-line message) of each framework that could not be timed.
        backend: ``cpu`` or ``gpu``, where it ran; "" (unknown) in files older than it.
    """

    program: str
    batch_size: int | None
    frameworks: Mapping[str, TimingSummary]
    failures: tuple[tuple[str, str], ...] = ()
    variant: str = "full"
    backend: str = ""
    source: str = field(default="", compare=False)  # the file it was read from, for messages

    def to_json(self) -> dict[str, Any]:
        return {"program": self.program, "batch_size": self.batch_size, "variant": self.variant,
                "backend": self.backend,
                "frameworks": {name: summary.to_json() for name, summary in self.frameworks.items()},
                "failures": [{"framework": f, "message": m} for f, m in self.failures]}

    @classmethod
    def from_json(cls, data: Any, source: str) -> TimingRecord:
        f = Fields(data, source, TIMING_HINT)
        program, batch_size = f.get("program", str), f.get("batch_size", int, nullable=True)
        variant = f.get("variant", str, "full")
        backend = f.get("backend", str, "")
        frameworks = {name: TimingSummary.from_fields(x) for name, x in f.named_records("frameworks").items()}
        failures = tuple((x.get("framework", str), x.get("message", str)) for x in f.records("failures"))
        return cls(program, batch_size, frameworks, failures, variant, backend, source=source)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TimingRecord:
        """The record in ``path``.

        Raises:
            InputError: the file cannot be read.
            RecordError: it is not ``time --json`` output (the line names the key).
        """
        return cls.from_json(read_json_file(path, TIMING_HINT), str(path))

    def kernel_times(self, framework: str) -> dict[str, float]:
        """Per-step time (µs) by HLO instruction name for ``framework``.

        Raises:
            InputError: ``framework`` was not timed, or was timed without per-kernel times.
        """
        return {name: kernel.total_us for name, kernel in self.kernels(framework).items()}

    def kernels(self, framework: str) -> dict[str, KernelTime]:
        """Per-kernel times with their spread, by HLO instruction name, for ``framework``.

        Raises:
            InputError: ``framework`` was not timed, or was timed without per-kernel times.
        """
        return {kernel.hlo_op: kernel for kernel in self.timed(framework).kernels}

    def timed(self, framework: str) -> TimingSummary:
        """``framework``'s summary, which must hold per-kernel times.

        Raises:
            InputError: ``framework`` was not timed, or was timed without per-kernel times.
        """
        summary = self.frameworks.get(framework)
        if summary is None:
            timed = ", ".join(self.frameworks) or "none"
            raise InputError(f"{self.source}: no per-kernel times for {framework!r} (it timed {timed}); give the "
                             "output of 'xlainspect time --program P --json' (A and B must be framework names)")
        if not summary.kernels:
            raise InputError(f"{self.source}: no per-kernel times for {framework!r}; time with --profile-runs "
                             "above 0")
        return summary

    def framework_that_ran(self, module_name: str) -> str:
        """The framework whose timed module is ``module_name``.

        Raises:
            InputError: no framework in the record ran ``module_name``.
        """
        for framework, summary in self.frameworks.items():
            if summary.module == module_name:
                return framework
        listed = ", ".join(f"{f}: {s.module or 'none'}" for f, s in self.frameworks.items()) or "none"
        raise InputError(f"{self.source}: no framework there ran module {module_name} (it timed {listed}); time "
                         "the same program and batch size that the dump holds")


# -- xlainspect memory --json ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnedBuffer:
    """A large temporary and who owns it: the HLO instruction and the framework op it came from."""

    instruction: str
    shape: str
    size: int
    op_name: str
    per_example_gradient: bool

    def to_json(self) -> dict[str, Any]:
        return {"instruction": self.instruction, "shape": self.shape, "size": self.size, "op_name": self.op_name,
                "per_example_gradient": self.per_example_gradient}

    @classmethod
    def from_fields(cls, f: Fields) -> OwnedBuffer:
        return cls(f.get("instruction", str), f.get("shape", str), f.get("size", int), f.get("op_name", str),
                   f.get("per_example_gradient", bool))


@dataclass(frozen=True)
class FrameworkMemory:
    """One framework's memory figures for a program, and how they were obtained.

    Attributes:
        route: which front end and compiler produced the figures (TF's go through JAX's XLA, said so here).
        largest: the biggest temporaries, largest first.
        per_example_bytes: bytes of temporaries shaped like a parameter with the batch added (per-example
            gradients), or None for programs without per-example gradients.
        library_fusions: XLA:CPU library fusions (YNNPACK's ``__ynn_fusion``, XNNPACK's ``__xnn_fusion``) in the
            module. The library allocates its own scratch, outside XLA's buffer assignment, so with any of them
            a real step can need more than the peak: measured, 2.4 to 2.9 times for the DP embedding steps.
    """

    framework: str
    route: str
    device: str
    module: str
    figures: MemoryFigures
    largest: tuple[OwnedBuffer, ...] = ()
    per_example_bytes: int | None = None
    library_fusions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "route": self.route, "device": self.device, "module": self.module,
                "figures": self.figures.to_json(), "largest": [b.to_json() for b in self.largest],
                "per_example_bytes": self.per_example_bytes, "library_fusions": self.library_fusions,
                "peak": self.figures.peak}

    @classmethod
    def from_fields(cls, f: Fields) -> FrameworkMemory:
        f.get("peak", int)  # derived from the figures, but part of the format
        return cls(f.get("framework", str), f.get("route", str), f.get("device", str), f.get("module", str),
                   MemoryFigures.from_fields(f.record("figures")),
                   tuple(OwnedBuffer.from_fields(b) for b in f.records("largest")),
                   f.get("per_example_bytes", int, nullable=True), f.get("library_fusions", int))


@dataclass(frozen=True)
class MemoryRecord:
    """What ``xlainspect memory --program P --json`` prints: each framework's figures, and the failures."""

    program: str
    frameworks: tuple[FrameworkMemory, ...]
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"program": self.program, "frameworks": {r.framework: r.to_json() for r in self.frameworks},
                "failures": list(self.failures)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> MemoryRecord:
        f = Fields(data, source, MEMORY_HINT)
        return cls(f.get("program", str),
                   tuple(FrameworkMemory.from_fields(x) for x in f.named_records("frameworks").values()),
                   f.items("failures", str))


@dataclass(frozen=True)
class MaxBatch:
    """The largest batch whose compile-time peak fits a device, and the curve measured on the way.

    Attributes:
        limit: the bytes the peak had to fit.
        exact: the search closed to within ``resolution``; False when it stopped early or was capped.
        capped: the batch reached the 32-bit indexing limit and still fit: ``max_batch`` is a lower bound.
        resolution: the largest gap, in examples, between ``max_batch`` and the smallest batch known not to fit at
            which the search stopped (the seed's ``--thresh``); None for 0.1% of ``max_batch`` (at least 1).
    """

    framework: str
    route: str
    limit: int
    max_batch: int
    exact: bool
    curve: tuple[MemoryFigures, ...]
    capped: bool = False
    resolution: int | None = None

    def to_json(self) -> dict[str, Any]:
        # framework and limit are the keys around it in MaxBatchRecord
        return {"max_batch": self.max_batch, "exact": self.exact, "capped": self.capped,
                "resolution": self.resolution, "route": self.route,
                "curve": [{**point.to_json(), "peak": point.peak} for point in self.curve]}

    @classmethod
    def from_fields(cls, f: Fields, framework: str, limit: int) -> MaxBatch:
        return cls(framework, f.get("route", str), limit, f.get("max_batch", int), f.get("exact", bool),
                   tuple(_curve_point(p) for p in f.records("curve")), f.get("capped", bool, False),
                   f.optional("resolution", int))


def _curve_point(f: Fields) -> MemoryFigures:
    """A point of a ``--max-batch`` curve: the figures and their peak, which must agree."""
    figures = MemoryFigures.from_fields(f)
    peak = f.get("peak", int)
    if peak != figures.peak:
        where = f"{f.path}.peak"
        raise RecordError(f.source, where, f"{where!r} is {peak}, but argument + output - alias + temp is "
                                           f"{figures.peak}; {f.hint}")
    return figures


@dataclass(frozen=True)
class MaxBatchRecord:
    """What ``xlainspect memory --max-batch --json`` prints: each framework's largest batch and curve."""

    program: str
    limit: int
    frameworks: tuple[MaxBatch, ...]
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"program": self.program, "limit": self.limit,
                "frameworks": {r.framework: r.to_json() for r in self.frameworks}, "failures": list(self.failures)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> MaxBatchRecord:
        f = Fields(data, source, MEMORY_HINT)
        limit = f.get("limit", int)
        return cls(f.get("program", str), limit,
                   tuple(MaxBatch.from_fields(x, name, limit) for name, x in f.named_records("frameworks").items()),
                   f.items("failures", str))


@dataclass(frozen=True)
class PeakCheck:
    """A compile-time prediction against the resident memory one real step added at its peak.

    Attributes:
        predicted: temporaries + outputs - aliased: what the step allocates beyond its resident arguments.
    """

    framework: str
    batch_size: int
    predicted: int
    measured: int

    @property
    def error(self) -> float:
        """Measured over predicted, minus one: +0.10 means the step took 10% more than predicted."""
        return self.measured / self.predicted - 1.0 if self.predicted else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {"framework": self.framework, "batch_size": self.batch_size, "predicted": self.predicted,
                "measured": self.measured, "error": round(self.error, 4)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> PeakCheck:
        f = Fields(data, source, MEMORY_HINT)
        f.get("error", float)  # derived, but part of the format
        return cls(f.get("framework", str), f.get("batch_size", int), f.get("predicted", int),
                   f.get("measured", int))


# -- the max-batch curve CSV -------------------------------------------------------------------------------------

CURVE_COLUMNS = ("framework", "batch_size", "argument", "output", "alias", "temp", "peak", "fits", "generated_code")
"""``generated_code`` came last and later: curves written before it read as 0 there."""


@dataclass(frozen=True)
class CurvePoint:
    """One probe of a max-batch search, as a row of the curve CSV: its figures and whether it fit the limit."""

    framework: str
    figures: MemoryFigures
    fits: bool

    def to_row(self) -> dict[str, Any]:
        f = self.figures
        return {"framework": self.framework, "batch_size": f.batch_size, "argument": f.argument,
                "output": f.output, "alias": f.alias, "temp": f.temp, "peak": f.peak, "fits": int(self.fits),
                "generated_code": f.generated_code}

    @classmethod
    def from_row(cls, cells: Cells) -> CurvePoint:
        figures = MemoryFigures(cells.get("batch_size", int), cells.get("argument", int), cells.get("output", int),
                                cells.get("alias", int), cells.get("temp", int), cells.get("generated_code", int, 0))
        if cells.get("peak", int) != figures.peak:
            raise RecordError(cells.source, "peak", f"peak {cells.get('peak', int)} is not argument + output - "
                                                    f"alias + temp ({figures.peak}); {CURVE_HINT}")
        return cls(cells.get("framework", str), figures, cells.get("fits", bool))

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[CurvePoint]:
        """The points of the curve CSV at ``path``, in file order.

        Raises:
            InputError: the file cannot be read.
            RecordError: it is not a curve ``memory --max-batch`` wrote (the line names file, line and column).
        """
        return read_csv(path, CURVE_COLUMNS[:-1], CurvePoint.from_row, CURVE_HINT)


# -- xlainspect bench CSVs ---------------------------------------------------------------------------------------


_CELL_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "float | None": float}


class _BenchCsvRow:
    """A row of a CSV that ``xlainspect bench`` writes: its columns are the dataclass's fields, in order.

    Columns added later have defaults (what a file without them means) and come last; an empty cell there reads
    as the default too.
    """

    # Every row has these (the subclasses' dataclass fields); declared here for the spread.
    min_ms: float
    max_ms: float
    runs: int
    q1_ms: float | None
    q3_ms: float | None

    def to_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def required_columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.default is MISSING)  # type: ignore[arg-type]

    @classmethod
    def from_row(cls, cells: Cells) -> Any:
        """The row as a record; None for a configuration that was not measured (no median; its note says why)."""
        if cells.row.get("median_ms") == "":
            return None
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            kind = _CELL_TYPES[str(f.type)]
            if f.default is MISSING:
                values[f.name] = cells.get(f.name, kind)
            else:
                values[f.name] = f.default if cells.row.get(f.name) == "" else cells.get(f.name, kind, f.default)
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> list[Any]:
        """The measured rows of the CSV at ``path``, without those of configurations that were not measured
        (their figures are empty; :meth:`unmeasured` lists them).

        Raises:
            InputError: the file cannot be read.
            RecordError: it is not such a CSV (the line names file, line and column).
        """
        return [row for row in read_csv(path, cls.required_columns(), cls.from_row, BENCH_HINT) if row is not None]

    @classmethod
    def unmeasured(cls, path: str | os.PathLike[str]) -> list[dict[str, str]]:
        """The cells of each row of the CSV at ``path`` whose configuration was not measured (its ``note`` says why).

        Raises:
            InputError, RecordError: as :meth:`read`.
        """
        rows = read_csv(path, cls.required_columns(), lambda cells: cells.row, BENCH_HINT)
        return [row for row in rows if row.get("median_ms") == ""]

    @property
    def spread(self) -> Spread | None:
        """The step time's spread over the timed runs; None for one run, and in files older than the quartiles."""
        if self.q1_ms is None or self.q3_ms is None or self.runs < 2:
            return None
        return Spread(self.min_ms, self.q1_ms, self.q3_ms, self.max_ms)


@dataclass(frozen=True)
class BenchRow(_BenchCsvRow):
    """One measured configuration of the sweep: a row of ``bench.csv``.

    Attributes:
        q1_ms, q3_ms: quartiles of the step time; None in files written before them.
        note: why the row has fewer runs than asked (the time budget), "" when it has them all.
    """

    model: str
    private: bool
    framework: str
    batch_size: int
    median_ms: float
    min_ms: float
    max_ms: float
    compile_s: float
    runs: int
    q1_ms: float | None = None
    q3_ms: float | None = None
    note: str = ""


@dataclass(frozen=True)
class AblationRow(_BenchCsvRow):
    """One measured build of the ablation: a row of ``ablation.csv``.

    Attributes:
        build: :attr:`xlainspect.programs.Variant.slug`: full, novec, nocompile, novec-nocompile.
        label: as the seed names it, e.g. "jit, no vmap".
        q1_ms, q3_ms: quartiles of the step time; None in files written before them.
        note: as :attr:`BenchRow.note`.
    """

    model: str
    framework: str
    build: str
    label: str
    batch_size: int
    median_ms: float
    min_ms: float
    max_ms: float
    compile_s: float
    runs: int
    q1_ms: float | None = None
    q3_ms: float | None = None
    note: str = ""
