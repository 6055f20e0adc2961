"""What XLA made of one function, from a notebook: :func:`inspect` and the :class:`Inspection` it returns.

A notebook's process has usually started XLA already, and XLA reads ``XLA_FLAGS`` once per process; a function
cannot be sent to another process. So :func:`inspect` traces and lowers the function here
(:mod:`xlainspect.runners.lowering`) and compiles the lowered module in a child process
(:mod:`xlainspect.runners.inspect_child`) with JAX's XLA, the one XLA whose compile xlainspect can drive for any
front end. ``in_process=True`` compiles here instead, for a quick look. Importing this module loads neither jax nor
tensorflow: the function's own framework is already loaded when it is called.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xlainspect.analysis.census import Census, census
from xlainspect.analysis.diff import CensusDiff, diff_census
from xlainspect.errors import CaptureError, FrameworkUnavailable, InputError
from xlainspect.hlo import HloModule, parse_hlo
from xlainspect.measure.timing import FrameworkTiming, TimingReport, framework_timing
from xlainspect.output.notebook import inspection_html, text_html
from xlainspect.output.render import RenderOptions, render_svg
from xlainspect.output.report import kernel_sources
from xlainspect.runners.children import ChildFailed, run_child
from xlainspect.runners.lowering import WHO, Lowering, lower_function, write_inputs
from xlainspect.runners.protocol import InspectRequest, InspectResult, MemoryFigures, TimeResult

__all__ = ["Inspection", "InspectionDiff", "InspectionTiming", "inspect"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class InspectionDiff:
    """Two inspected functions' kernels compared (:func:`~xlainspect.analysis.diff.diff_census`), names ignored.

    Attributes:
        census_diff: the pairing of their kernels.
        label_a, label_b: the two functions' names (``A``/``B`` when they share one).
    """

    census_diff: CensusDiff
    label_a: str
    label_b: str

    @property
    def same_math(self) -> bool:
        """Every kernel of one pairs one-to-one with a kernel of the same math in the other."""
        return self.census_diff.same_math

    @property
    def same_structure(self) -> bool:
        """The same math, and the same layouts: the two compile to the same kernels."""
        return self.census_diff.same_structure

    @property
    def verdict(self) -> str:
        return self.census_diff.verdict(self.label_a, self.label_b)

    def text(self) -> str:
        """What ``xlainspect diff`` prints for the two modules."""
        from xlainspect.output.format import diff_text

        return diff_text(self.census_diff, self.label_a, self.label_b)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return text_html(self.verdict, self.text())


@dataclass(frozen=True)
class InspectionTiming(FrameworkTiming):
    """An inspected function's step time and per-kernel times: ``xlainspect time``'s figures, for a notebook.

    Everything :class:`~xlainspect.measure.timing.FrameworkTiming` holds (``runs_ms``, ``median_ms``, ``spread``,
    whose ``half_iqr`` is the ``±``; ``kernels``, time per HLO instruction per step, costliest first), and the
    function's name.
    """

    function_name: str = ""

    def text(self) -> str:
        """The table ``xlainspect time`` prints: step time with its spread, then the costliest kernels."""
        from xlainspect.output.format import timing_text

        return timing_text(TimingReport(self.function_name, None, {self.framework: self}))

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        spread = self.spread
        plus_minus = f" ± {spread.half_iqr:.3f}" if spread is not None else ""
        return text_html(f"{self.function_name}: {self.median_ms:.3f}{plus_minus} ms per step (median of "
                         f"{len(self.runs_ms)} runs)", self.text())


@dataclass(frozen=True)
class Inspection:
    """One function as XLA compiled it: the optimized module, its kernels, its memory, and who compiled it where.

    Attributes:
        function_name: the function's ``__name__``.
        front_end: ``jax`` or ``tf``: the framework that traced it to HLO.
        front_end_version: e.g. ``jax 0.12.0.1``.
        compiler: the XLA that optimized it (``jaxlib 0.12.0.1``: JAX's XLA, for a tf.function too).
        device: what it was compiled for (``cpu``).
        module_text: the optimized module, as XLA prints it.
        module: the same, parsed.
        census: its kernels (:mod:`xlainspect.analysis.census`).
        memory: XLA's compile-time memory figures (JAX's ``memory_analysis()``).
        compile_s: seconds XLA took to compile it.
        in_process: compiled in the caller's process (``in_process=True``) rather than in a child.
        notes: what the result is and is not (where it was compiled, why it cannot be timed).
    """

    function_name: str
    front_end: str
    front_end_version: str
    compiler: str
    device: str
    module_text: str = field(repr=False)
    module: HloModule = field(repr=False, compare=False)
    census: Census = field(repr=False)
    memory: MemoryFigures
    compile_s: float
    in_process: bool
    notes: tuple[str, ...] = ()
    _lowering: Lowering | None = field(default=None, repr=False, compare=False)

    @property
    def compiled_by(self) -> str:
        """Front end and compiler in words, e.g. ``TF's front end (tensorflow 2.21.0), JAX's XLA (jaxlib ...)``."""
        front = "JAX" if self.front_end == "jax" else "TF"
        return f"{front}'s front end ({self.front_end_version}), JAX's XLA ({self.compiler})"

    def diff(self, other: Inspection) -> InspectionDiff:
        """This function's kernels against ``other``'s: what differs in what they compute, names ignored.

        Raises:
            InputError: ``other`` is not an :class:`Inspection`.
        """
        if not isinstance(other, Inspection):
            raise InputError(f"Inspection.diff: the argument is a {type(other).__name__}, not an Inspection; pass "
                             "what xlainspect.inspect returned for the other function")
        same = self.function_name == other.function_name
        return InspectionDiff(diff_census(self.census, other.census, self.compiler, other.compiler),
                              "A" if same else self.function_name, "B" if same else other.function_name)

    def render(self, options: RenderOptions | None = None) -> str:
        """The kernel graph of the entry computation as SVG text (graphviz's ``dot`` lays it out).

        Args:
            options: what to draw (:class:`~xlainspect.output.render.RenderOptions`); None for the defaults.

        Raises:
            FrameworkUnavailable: graphviz (its ``dot`` program or its Python package) is not installed.
        """
        try:
            return render_svg(self.module, options or RenderOptions())[0]
        except ImportError as e:  # graphviz's Python package; its dot program is render_svg's to report
            raise FrameworkUnavailable(f"{WHO}: drawing the kernel graph needs graphviz's Python package: pip "
                                       f"install graphviz ({e})") from e

    def time(self, repeats: int = 20, warmup: int = 3, profile_runs: int = 5,
             progress: Callable[[str], None] | None = None) -> InspectionTiming:
        """Step time over ``repeats`` runs (``.median_ms``, ``.spread``) and per-kernel times from the profiler
        (``.kernels``, over ``profile_runs`` more runs).

        It compiles again where :func:`inspect` did (a child, unless ``in_process``) and runs the module with the
        arguments given to :func:`inspect`.

        Raises:
            InputError: a bad count, or the inspection has no arguments to run (shapes only; the note says why).
            CaptureError: the child failed.
        """
        if repeats < 1 or warmup < 0 or profile_runs < 0:
            raise InputError(f"{WHO}: repeats must be at least 1, warmup and profile_runs at least 0")
        lowering = self._lowering
        if lowering is None or lowering.arguments is None:
            why = lowering.no_arguments if lowering is not None else "no lowering kept"
            raise InputError(f"{WHO}: {self.function_name} cannot be timed: {why}")
        if self.in_process:
            timing = _time_here(lowering, repeats, warmup, profile_runs)
        else:
            timing = _compile_in_child(lowering, progress or _stderr, repeats, warmup, profile_runs).timing
            assert timing is not None  # the child times whenever it is given arguments and repeats
        return framework_timing(timing, self.front_end, self.compiler, InspectionTiming,
                                function_name=self.function_name)

    def _repr_html_(self) -> str:
        from xlainspect.errors import XlaInspectError

        try:
            svg, notes = self.render(), ()
        except XlaInspectError as e:  # no graphviz, or too big to lay out: the census still shows
            svg, notes = "", (f"no kernel graph: {e}",)
        facts = [("function", self.function_name), ("compiled by", self.compiled_by), ("device", self.device),
                 ("module", self.module.name), ("compile", f"{self.compile_s:.3f} s")]
        title = f"{self.function_name}: {self.census.kernel_count} kernels"
        return inspection_html(title, facts, self.census, self.memory, kernel_sources(self.census.kernels), svg,
                               notes, self.notes)


def inspect(fn: Any, *args: Any, in_process: bool = False, progress: Callable[[str], None] | None = None,
            **kwargs: Any) -> Inspection:
    """What XLA makes of ``fn(*args, **kwargs)``: its optimized module, kernels, memory, graph, and step time.

    ``fn`` is a JAX function (jitted or not; static arguments, pytrees and donation as its ``jax.jit`` says) or a
    ``tf.function``; the arguments are arrays, or ``jax.ShapeDtypeStruct`` to compile without running (no
    ``.time()`` then). The function is traced and lowered here, never compiled here: a child process compiles
    the module with JAX's XLA and fresh XLA flags, and a line on stderr says so. A tf.function's module is TF's
    front end compiled by JAX's XLA (the result's ``compiled_by`` says so). ``in_process=True`` compiles here
    instead (quicker; this process's XLA flags apply).

    Example::

        >>> import jax, jax.numpy as jnp, xlainspect
        >>> def layer(w, x):
        ...     return jnp.tanh(x @ w).sum()
        >>> result = xlainspect.inspect(jax.grad(layer), jnp.ones((64, 64)), jnp.ones((8, 64)))
        >>> result.census.kernel_count, result.memory.temp      # doctest: +SKIP
        >>> result.time(repeats=10).median_ms                    # doctest: +SKIP
        >>> result.diff(xlainspect.inspect(jax.grad(other), ...)).same_math  # doctest: +SKIP
        >>> result       # in Jupyter: the census table, memory figures and the kernel graph

    Args:
        in_process: compile in this process (``jax.jit(fn).lower(...).compile()``), not in a child.
        progress: called with progress lines (the child's start, and every two seconds while it runs); stderr by
            default.
        kwargs: passed to ``fn`` (``in_process`` and ``progress`` are this function's own).

    Raises:
        InputError: ``fn`` is not a function, or does not trace with these arguments.
        FrameworkUnavailable: jax is not installed (the child compiles with JAX's XLA, for a tf.function too).
        CaptureError: the child process failed to compile the module.
    """
    lowering = lower_function(fn, args, kwargs)
    tell = progress or _stderr
    if in_process:
        text, memory, compile_s, compiler, device = _compile_here(lowering)
        where = "compiled in this process (in_process=True): this process's XLA flags apply"
    else:
        result = _compile_in_child(lowering, tell)
        text, memory, compile_s = result.module_text, result.figures, result.compile_s
        compiler, device = result.xla_version, result.device
        where = "compiled in a child process (fresh XLA flags); traced and lowered in this one"
    module = parse_hlo(text)
    notes = (where,) + ((f"not timeable: {lowering.no_arguments}",) if lowering.no_arguments else ())
    return Inspection(lowering.function_name, lowering.front_end, lowering.front_end_version, compiler, device, text,
                      module, census(module), memory, compile_s, in_process, notes, lowering)


def _compile_in_child(lowering: Lowering, report: Callable[[str], None], repeats: int = 0, warmup: int = 0,
                      profile_runs: int = 0) -> InspectResult:
    """Writes the lowering to a temporary folder and has :mod:`~xlainspect.runners.inspect_child` compile it.

    ``report`` hears first what is done where, then the child's progress every two seconds (not its line at the
    start, which would say the same again).
    """
    if repeats:
        report(f"xlainspect: timing {lowering.function_name} in a child process with JAX's XLA (compiled again there; "
               "in_process=True times here)")
    else:
        report(f"xlainspect: compiling {lowering.function_name} in a child process with JAX's XLA (traced and lowered "
               "here; in_process=True compiles here)")
    started = itertools.count()

    def after_start(line: str) -> None:  # run_child's line at the start would repeat the announcement
        if next(started):
            report(line)

    with tempfile.TemporaryDirectory(prefix="xlainspect-inspect-") as folder:
        module_path, arguments_path, arguments = write_inputs(lowering, folder)
        request = InspectRequest(lowering.function_name, "jax", module_path, lowering.module_format,
                                 arguments_path if repeats else None, arguments if repeats else (), repeats, warmup,
                                 profile_runs, lowering.platform)
        activity = "timing" if repeats else "compiling"
        try:
            # The child runs under this interpreter: its jax is the one that lowered the module.
            return run_child(request, InspectResult, after_start, activity, python=sys.executable,
                             backend="cpu" if lowering.platform == "cpu" else "gpu")  # "gpu": devices left visible
        except ChildFailed as e:
            raise CaptureError(f"{WHO}: {e}") from e


def _compile_here(lowering: Lowering) -> tuple[str, MemoryFigures, float, str, str]:
    """Compiles in this process: JAX's own ``.compile()`` for a JAX function, JAX's client for TF's module."""
    import time

    try:
        import jax
        import jaxlib
    except ImportError as e:  # a tf.function without jax: its module is compiled by JAX's XLA
        raise FrameworkUnavailable(f"{WHO} compiles with JAX's XLA: pip install 'xlainspect[jax]'") from e
    from xlainspect.runners.inspect_child import compile_timed, device_name, memory_figures

    device = jax.devices()[0]
    start = time.perf_counter()
    if lowering.lowered is not None:
        compiled = lowering.lowered.compile()
        text, stats = compiled.as_text(), compiled.memory_analysis()
    else:
        executable, text, _ = compile_timed(lowering.module, lowering.module_format, device)
        stats = executable.get_compiled_memory_stats()
    compile_s = time.perf_counter() - start
    return text, memory_figures(stats), compile_s, f"jaxlib {jaxlib.__version__}", device_name(device)


def _time_here(lowering: Lowering, repeats: int, warmup: int, profile_runs: int) -> TimeResult:
    """Times the module in this process, through the same executable path as the child."""

    import jax
    import jaxlib

    from xlainspect.runners.inspect_child import compile_timed, time_executable

    assert lowering.arguments is not None
    executable, text, compile_s = compile_timed(lowering.module, lowering.module_format, jax.devices()[0])
    return time_executable(executable, lowering.arguments, text, repeats, warmup, profile_runs,
                           f"jaxlib {jaxlib.__version__}", compile_s)
