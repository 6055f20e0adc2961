"""What a parent sends a child process and what the child prints back.

A parent sends a child one request (:class:`CompileRequest`, :class:`TimeRequest`, :class:`MemoryRequest`) as the
child's only argument, and the child prints one result (:class:`CompileResult`, :class:`ExportResult`,
:class:`TimeResult`, :class:`CompiledMemory`, :class:`BisectResult`, :class:`MeasuredStep`). Each is a frozen
dataclass whose ``to_json`` and ``from_json`` are the only code that knows its keys, so a format change is one edit
here. They are read through :class:`~xlainspect.runners.reading.Fields`: a missing key, or one of the wrong type,
is a :class:`~xlainspect.errors.RecordError` naming the child and the key, never a ``KeyError`` further on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar

from xlainspect.errors import RecordError
from xlainspect.runners.reading import Fields

if TYPE_CHECKING:
    from xlainspect.programs import Variant

CHILD_HINT = "the child process and this xlainspect disagree on the protocol (a stale install? run 'make install')"


class Message(Protocol):
    """What crosses the process boundary: a record that writes itself as JSON and reads itself back."""

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: Any, source: str) -> Self: ...


class Request(Message, Protocol):
    """A message to a child: the child module that runs it, and the program and framework it is about."""

    child: ClassVar[str]
    program: str
    framework: str


M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Request)


def _shapes(record: Fields) -> dict[str, tuple[int, ...]]:
    """Input name -> shape, from a JSON object of lists."""
    return {name: record.items(name, int) for name in record.data}


def _some(value: Any) -> dict[str, Any]:
    """Leaves out the keys whose value is None: a request names only what it sets."""
    return {key: item for key, item in value.items() if item is not None}


# -- requests: what a parent sends ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileRequest:
    """Compile (and, on a real device, run once) one program in one framework, with XLA's dump flags set.

    Attributes:
        export_hlo: write TF's module before optimization (an ``HloModuleProto``) to this path; compile nothing.
        hlo_proto: compile this ``HloModuleProto`` with JAX's XLA instead of the program's own function.
        function_name: the program's function, recorded for picking its module among those dumped.
        target_config: a ``GpuTargetConfigProto`` text: compile deviceless for that GPU.
    """

    child: ClassVar[str] = "xlainspect.runners.compile_child"

    program: str
    framework: str
    batch_size: int | None = None
    dtype: str = "float32"
    seed: int = 0
    export_hlo: str | None = None
    hlo_proto: str | None = None
    function_name: str = ""
    target_config: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _some({"program": self.program, "framework": self.framework, "batch_size": self.batch_size,
                      "dtype": self.dtype, "seed": self.seed, "export_hlo": self.export_hlo,
                      "hlo_proto": self.hlo_proto, "function_name": self.function_name,
                      "target_config": self.target_config})

    @classmethod
    def from_json(cls, data: Any, source: str) -> CompileRequest:
        f = Fields(data, source, CHILD_HINT)
        return cls(f.get("program", str), f.get("framework", str), f.optional("batch_size", int),
                   f.get("dtype", str, "float32"), f.get("seed", int, 0), f.optional("export_hlo", str),
                   f.optional("hlo_proto", str), f.get("function_name", str, ""), f.optional("target_config", str))


@dataclass(frozen=True)
class TimeRequest:
    """Compile, then time one program in one framework; ``profile_runs`` more runs attribute time to HLO ops.

    Attributes:
        backend: ``gpu`` makes the child check that its framework sees a GPU.
        vectorize, compiled: the build to time (:class:`~xlainspect.programs.Variant`).
        export_hlo: write TF's module before optimization here and time nothing.
        hlo_proto: time this ``HloModuleProto`` compiled by JAX's XLA (TF's module, in JAX's runtime).
    """

    child: ClassVar[str] = "xlainspect.runners.time_child"

    program: str
    framework: str
    batch_size: int | None
    repeats: int
    warmup: int
    profile_runs: int = 0
    backend: str = "cpu"
    vectorize: bool = True
    compiled: bool = True
    dtype: str = "float32"
    export_hlo: str | None = None
    hlo_proto: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _some({"program": self.program, "framework": self.framework, "batch_size": self.batch_size,
                      "repeats": self.repeats, "warmup": self.warmup, "profile_runs": self.profile_runs,
                      "backend": self.backend, "dtype": self.dtype, "export_hlo": self.export_hlo,
                      "hlo_proto": self.hlo_proto, "variant": {"vectorize": self.vectorize, "compiled": self.compiled}})

    @property
    def variant(self) -> Variant:
        from xlainspect.programs import Variant  # loads numpy: only the child asks

        return Variant(self.vectorize, self.compiled)

    @classmethod
    def from_json(cls, data: Any, source: str) -> TimeRequest:
        f = Fields(data, source, CHILD_HINT)
        variant = f.record("variant")
        return cls(f.get("program", str), f.get("framework", str), f.optional("batch_size", int),
                   f.get("repeats", int), f.get("warmup", int), f.get("profile_runs", int, 0),
                   f.get("backend", str, "cpu"), variant.get("vectorize", bool), variant.get("compiled", bool),
                   f.get("dtype", str, "float32"), f.optional("export_hlo", str), f.optional("hlo_proto", str))


@dataclass(frozen=True)
class MemoryRequest:
    """Compile-time memory of one program in one framework.

    Attributes:
        mode: ``analyse`` (figures, and with ``dump_dir`` the buffer assignment), ``bisect`` (the largest batch
            whose peak fits ``limit``, from ``start``, in at most ``max_probes`` compiles) or ``measure`` (run one
            step and measure the resident memory it adds).
        resolution: ``bisect`` stops when the batch known to fit and the one known not to are at most this far
            apart (the seed's ``--thresh``); None for 0.1% of the batch that fits (at least 1).
        target_config: a ``GpuTargetConfigProto`` text: compile deviceless for that GPU.
        on_gpu: compile for this machine's GPU (else the child keeps JAX on the CPU platform).
    """

    child: ClassVar[str] = "xlainspect.runners.memory_child"
    MODES: ClassVar[tuple[str, ...]] = ("analyse", "bisect", "measure")

    program: str
    framework: str
    mode: str = "analyse"
    batch_size: int | None = None
    target_config: str | None = None
    on_gpu: bool = False
    dump_dir: str | None = None
    limit: int | None = None
    start: int | None = None
    max_probes: int = 40
    resolution: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _some({"program": self.program, "framework": self.framework, "mode": self.mode,
                      "batch_size": self.batch_size, "target_config": self.target_config, "on_gpu": self.on_gpu,
                      "dump_dir": self.dump_dir, "limit": self.limit, "start": self.start,
                      "max_probes": self.max_probes, "resolution": self.resolution})

    @classmethod
    def from_json(cls, data: Any, source: str) -> MemoryRequest:
        f = Fields(data, source, CHILD_HINT)
        mode = f.get("mode", str, "analyse")
        if mode not in cls.MODES:
            raise RecordError(source, "mode", f"'mode' is {mode!r}, expected one of {', '.join(cls.MODES)}; "
                                              f"{CHILD_HINT}")
        bisect = mode == "bisect"
        return cls(f.get("program", str), f.get("framework", str), mode, f.optional("batch_size", int),
                   f.optional("target_config", str), f.get("on_gpu", bool, False), f.optional("dump_dir", str),
                   f.get("limit", int) if bisect else None, f.get("start", int) if bisect else None,
                   f.get("max_probes", int, 40), f.optional("resolution", int) if bisect else None)


# -- results: what a child prints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileResult:
    """What a compile child reports besides the dump XLA wrote: versions, device, the first call's time, the host,
    and what only running a user's program tells: its description, batch size, input shapes, and which frameworks
    it gives a function for."""

    framework_version: str
    xla_version: str
    device: str
    first_call_s: float
    function_name: str
    host_cpu: str
    python: str
    platform: str
    description: str = ""
    batch_size: int | None = None
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    frameworks: tuple[str, ...] = ("jax", "tf")

    def to_json(self) -> dict[str, Any]:
        return {"framework_version": self.framework_version, "xla_version": self.xla_version, "device": self.device,
                "first_call_s": self.first_call_s, "function_name": self.function_name, "host_cpu": self.host_cpu,
                "python": self.python, "platform": self.platform, "description": self.description,
                "batch_size": self.batch_size, "shapes": {name: list(shape) for name, shape in self.shapes.items()},
                "frameworks": list(self.frameworks)}

    @classmethod
    def from_json(cls, data: Any, source: str) -> CompileResult:
        f = Fields(data, source, CHILD_HINT)
        return cls(f.get("framework_version", str), f.get("xla_version", str), f.get("device", str),
                   f.get("first_call_s", float), f.get("function_name", str), f.get("host_cpu", str),
                   f.get("python", str), f.get("platform", str), f.get("description", str),
                   f.optional("batch_size", int), _shapes(f.record("shapes")), f.items("frameworks", str))


@dataclass(frozen=True)
class ExportResult:
    """TF's module before optimization, written where the request said: its TF version, size and function."""

    framework_version: str
    bytes: int
    function_name: str

    def to_json(self) -> dict[str, Any]:
        return {"framework_version": self.framework_version, "bytes": self.bytes,
                "function_name": self.function_name}

    @classmethod
    def from_json(cls, data: Any, source: str) -> ExportResult:
        f = Fields(data, source, CHILD_HINT)
        return cls(f.get("framework_version", str), f.get("bytes", int), f.get("function_name", str))


@dataclass(frozen=True)
class TimeResult:
    """One framework's raw timings of a program, as the time child measured them.

    Attributes:
        runs_s: wall seconds of each steady-state run.
        module_name, hlo_text: the optimized module that ran ("" when nothing was compiled as one module).
        kernels: profiler event durations (µs) by ``hlo_op``, over ``profiled_runs`` runs.
        profiled_runs_s: wall seconds of each profiled run.
        busy_us_per_run: per profiled run, µs during which at least one op of the module ran (JAX's profiler).
        max_rel_error: TF's module run by JAX's runtime: its outputs' error against the float64 reference.
        kernel_runs: for each ``hlo_op`` in ``kernels``, the profiled run (from 0) each of its durations fell in,
            in the same order, so the parent can total each run apart; empty when the profile marked no runs.
        launches: for each ``hlo_op``, its events over the profiled runs as the profiler wrote them; ``kernels``
            merges an op's launches that ran at once into one duration, so it cannot count them. Empty: count
            ``kernels``.
        batch_size: the batch it ran at (a user's program picks its own default).
        frameworks: the frameworks the program gives a function for.
    """

    framework_version: str
    compile_s: float
    runs_s: tuple[float, ...]
    module_name: str = ""
    hlo_text: str = field(default="", repr=False)
    kernels: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    profiled_runs: int = 0
    profiled_runs_s: tuple[float, ...] = ()
    busy_us_per_run: float | None = None
    note: str = ""
    max_rel_error: float | None = None
    kernel_runs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    batch_size: int | None = None
    frameworks: tuple[str, ...] = ("jax", "tf")
    launches: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"framework_version": self.framework_version, "compile_s": self.compile_s, "launches": dict(self.launches),
                "batch_size": self.batch_size, "frameworks": list(self.frameworks),
                "runs_s": list(self.runs_s), "module_name": self.module_name, "hlo_text": self.hlo_text,
                "kernels": {op: list(durations) for op, durations in self.kernels.items()},
                "profiled_runs": self.profiled_runs, "profiled_runs_s": list(self.profiled_runs_s),
                "busy_us_per_run": self.busy_us_per_run, "note": self.note, "max_rel_error": self.max_rel_error,
                "kernel_runs": {op: list(runs) for op, runs in self.kernel_runs.items()}}

    @classmethod
    def from_json(cls, data: Any, source: str) -> TimeResult:
        f = Fields(data, source, CHILD_HINT)
        kernels = f.record("kernels")
        kernel_runs = f.record("kernel_runs")
        launches = f.record("launches")
        return cls(f.get("framework_version", str), f.get("compile_s", float), f.items("runs_s", float),
                   f.get("module_name", str), f.get("hlo_text", str),
                   {op: kernels.items(op, float) for op in kernels.data}, f.get("profiled_runs", int),
                   f.items("profiled_runs_s", float), f.get("busy_us_per_run", float, nullable=True),
                   f.get("note", str), f.get("max_rel_error", float, nullable=True),
                   {op: kernel_runs.items(op, int) for op in kernel_runs.data}, f.optional("batch_size", int),
                   f.items("frameworks", str), {op: launches.get(op, int) for op in launches.data})


@dataclass(frozen=True)
class MemoryFigures:
    """Compile-time bytes of one compiled program (XLA's ``CompiledMemoryStats``) at one batch size."""

    batch_size: int | None
    argument: int
    output: int
    alias: int
    temp: int
    generated_code: int = 0

    @property
    def peak(self) -> int:
        """Arguments + outputs - aliased bytes + temporaries: what the program holds while it runs."""
        return self.argument + self.output - self.alias + self.temp

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "argument": self.argument, "output": self.output,
                "alias": self.alias, "temp": self.temp, "generated_code": self.generated_code}

    @classmethod
    def from_json(cls, data: Any, source: str, hint: str = CHILD_HINT, path: str = "") -> MemoryFigures:
        return cls.from_fields(Fields(data, source, hint, path))

    @classmethod
    def from_fields(cls, f: Fields) -> MemoryFigures:
        return cls(f.get("batch_size", int, nullable=True), f.get("argument", int), f.get("output", int),
                   f.get("alias", int), f.get("temp", int), f.get("generated_code", int))


@dataclass(frozen=True)
class CompiledMemory:
    """A memory child's ``analyse`` answer: the figures, the module, and (with a dump folder) what explains them.

    Attributes:
        buffer_assignment: XLA's ``*-buffer-assignment.txt`` of the module, "" without a dump folder.
        module_text: the optimized module, "" without a dump folder.
    """

    figures: MemoryFigures
    module: str
    xla_version: str
    device: str
    buffer_assignment: str = field(default="", repr=False)
    module_text: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"figures": self.figures.to_json(), "module": self.module, "xla_version": self.xla_version,
                "device": self.device, "buffer_assignment": self.buffer_assignment, "module_text": self.module_text}

    @classmethod
    def from_json(cls, data: Any, source: str) -> CompiledMemory:
        f = Fields(data, source, CHILD_HINT)
        return cls(MemoryFigures.from_fields(f.record("figures")), f.get("module", str), f.get("xla_version", str),
                   f.get("device", str), f.get("buffer_assignment", str), f.get("module_text", str))


@dataclass(frozen=True)
class BisectResult:
    """A memory child's ``bisect`` answer: the largest batch that fits and every probe on the way.

    Attributes:
        upper: the smallest batch known not to fit, None when the search was capped.
        exact: the two are within the request's resolution of each other (by default 0.1%).
        capped: the batch reached the 32-bit indexing limit and still fit, so ``max_batch`` is a lower bound.
    """

    max_batch: int
    upper: int | None
    curve: tuple[MemoryFigures, ...]
    exact: bool
    capped: bool
    xla_version: str
    device: str

    def to_json(self) -> dict[str, Any]:
        return {"max_batch": self.max_batch, "upper": self.upper, "curve": [p.to_json() for p in self.curve],
                "exact": self.exact, "capped": self.capped, "xla_version": self.xla_version, "device": self.device}

    @classmethod
    def from_json(cls, data: Any, source: str) -> BisectResult:
        f = Fields(data, source, CHILD_HINT)
        return cls(f.get("max_batch", int), f.get("upper", int, nullable=True),
                   tuple(MemoryFigures.from_fields(p) for p in f.records("curve")), f.get("exact", bool),
                   f.get("capped", bool), f.get("xla_version", str), f.get("device", str))


@dataclass(frozen=True)
class MeasuredStep:
    """A memory child's ``measure`` answer: the resident memory one warm step added at its peak (bytes).

    Attributes:
        rss_before: the resident memory before the step.
        figures: XLA's compile-time figures of the step that ran; None for TF, whose compiled program JAX's API
            cannot ask.
    """

    batch_size: int | None
    measured: int
    rss_before: int
    figures: MemoryFigures | None
    xla_version: str
    device: str

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "measured": self.measured, "rss_before": self.rss_before,
                "figures": None if self.figures is None else self.figures.to_json(),
                "xla_version": self.xla_version, "device": self.device}

    @classmethod
    def from_json(cls, data: Any, source: str) -> MeasuredStep:
        f = Fields(data, source, CHILD_HINT)
        figures = None if f.get("figures", dict, nullable=True) is None else \
            MemoryFigures.from_fields(f.record("figures"))
        return cls(f.get("batch_size", int, nullable=True), f.get("measured", int), f.get("rss_before", int),
                   figures, f.get("xla_version", str), f.get("device", str))


# -- xlainspect.inspect: a module lowered in the caller's process, compiled by a child ---------------------------


@dataclass(frozen=True)
class ArgumentBytes:
    """Where one argument's bytes sit in the arguments file, and how to read them back as an array.

    The file holds raw bytes (``numpy.save`` of a ``uint8`` view), because ``.npz`` cannot hold the dtypes numpy
    does not know (``bfloat16``, ``float8_*``); the dtype travels here by name.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_fields(cls, f: Fields) -> ArgumentBytes:
        return cls(f.get("name", str), f.get("dtype", str), f.items("shape", int))


@dataclass(frozen=True)
class InspectRequest:
    """Compile a module the caller lowered with JAX's XLA; report it and its memory, and time it when asked.

    Attributes:
        program: the function's name, for progress lines and failures.
        framework: always ``jax``: the child compiles with JAX's XLA whatever front end made the module.
        module_path: the module before optimization.
        module_format: ``stablehlo`` (MLIR text, what ``jax.jit(f).lower(...).as_text()`` gives) or ``hlo_proto``
            (a serialized ``HloModuleProto``, what TF's ``experimental_get_compiler_ir`` gives).
        arguments_path: an ``.npz`` of the arguments in the module's parameter order (see :class:`ArgumentBytes`);
            None when the caller gave shapes only.
        arguments: the arrays of that file, in order.
        repeats: timed runs; 0 compiles and reports only.
        platform: the backend the module was lowered for (``jax.default_backend()`` in the caller: ``cpu``,
            ``gpu``, ``tpu``); the child compiles for its first device and refuses when that is another platform.
    """

    child: ClassVar[str] = "xlainspect.runners.inspect_child"
    FORMATS: ClassVar[tuple[str, ...]] = ("stablehlo", "hlo_proto")

    program: str
    framework: str
    module_path: str
    module_format: str
    arguments_path: str | None = None
    arguments: tuple[ArgumentBytes, ...] = ()
    repeats: int = 0
    warmup: int = 0
    profile_runs: int = 0
    platform: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        return _some({"program": self.program, "framework": self.framework, "module_path": self.module_path,
                      "module_format": self.module_format, "arguments_path": self.arguments_path,
                      "arguments": [argument.to_json() for argument in self.arguments], "repeats": self.repeats,
                      "warmup": self.warmup, "profile_runs": self.profile_runs, "platform": self.platform})

    @classmethod
    def from_json(cls, data: Any, source: str) -> InspectRequest:
        f = Fields(data, source, CHILD_HINT)
        module_format = f.get("module_format", str)
        if module_format not in cls.FORMATS:
            raise RecordError(source, "module_format", f"'module_format' is {module_format!r}, expected one of "
                                                       f"{', '.join(cls.FORMATS)}; {CHILD_HINT}")
        return cls(f.get("program", str), f.get("framework", str), f.get("module_path", str), module_format,
                   f.optional("arguments_path", str),
                   tuple(ArgumentBytes.from_fields(a) for a in f.records("arguments")), f.get("repeats", int, 0),
                   f.get("warmup", int, 0), f.get("profile_runs", int, 0), f.get("platform", str, "cpu"))


@dataclass(frozen=True)
class InspectResult:
    """An inspect child's answer: the optimized module, its compile-time memory, and who compiled it where.

    Attributes:
        timing: with ``repeats``, the runs and the profile (:class:`TimeResult`); None otherwise.
    """

    xla_version: str
    device: str
    compile_s: float
    module_text: str = field(repr=False)
    figures: MemoryFigures
    timing: TimeResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {"xla_version": self.xla_version, "device": self.device, "compile_s": self.compile_s,
                "module_text": self.module_text, "figures": self.figures.to_json(),
                "timing": None if self.timing is None else self.timing.to_json()}

    @classmethod
    def from_json(cls, data: Any, source: str) -> InspectResult:
        f = Fields(data, source, CHILD_HINT)
        timing = f.get("timing", dict, nullable=True)
        return cls(f.get("xla_version", str), f.get("device", str), f.get("compile_s", float),
                   f.get("module_text", str), MemoryFigures.from_fields(f.record("figures")),
                   None if timing is None else TimeResult.from_json(timing, source))
