"""The child process of ``xlainspect time``: compiles, then times one synthetic program in one framework.

Each framework runs in its own process so one framework's threads, allocator and XLA flags cannot slow the other.
Compile time is measured apart from run time; steady-state runs come after warm-up and synchronise with the device
(JAX ``block_until_ready``, TF reading the results back). A separate, profiled pass attributes time to HLO
instructions by the profiler events' ``hlo_op`` and ``hlo_module`` fields, never by kernel name (see NOTES): JAX's
perfetto trace, TF's XPlane profile read with TF's own protobuf classes. Each profiled run is wrapped in a profiler
annotation (:data:`RUN_MARK` and its index), so every event is filed under the run it fell in and the parent can
give each kernel's spread over per-run totals (a kernel may launch many times in one run).

Run as ``python -m xlainspect.runners.time_child '{"program": ..., "framework": ..., "repeats": ..., ...}'`` (a
:class:`~xlainspect.runners.protocol.TimeRequest`); prints one ``RESULT {json}`` line, a
:class:`~xlainspect.runners.protocol.TimeResult` (an :class:`~xlainspect.runners.protocol.ExportResult` when asked to
export TF's module); exit status 3 when the framework is missing, 4 when a GPU was asked for and none is visible.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from xlainspect.runners.children import (
    EXIT_FRAMEWORK_MISSING,
    EXIT_NO_GPU,
    answer,
    framework_modules,
    missing_framework,
    read_request,
)
from xlainspect.runners.intervals import interval_index, union_length
from xlainspect.runners.jax_compile import hlo_module_name
from xlainspect.runners.protocol import ExportResult, TimeRequest, TimeResult

if TYPE_CHECKING:
    import numpy as np

    from xlainspect.programs import Program, Variant


def _steady_runs(run: Callable[[], Any], repeats: int, warmup: int) -> tuple[float, list[float]]:
    """Times the first call (what a user waits for before the first step), then ``repeats`` after warm-up."""
    start = time.perf_counter()
    run()
    first_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        run()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        runs.append(time.perf_counter() - start)
    return first_s, runs


@dataclass(frozen=True)
class _Profile:
    """What a profiled pass found: durations (µs) by ``hlo_op`` and the run each fell in (empty when the runs were
    not marked), each run's wall seconds, and the busy µs per run (None where the profiler gives no intervals)."""

    kernels: Mapping[str, list[float]]
    kernel_runs: Mapping[str, list[int]]
    runs_s: list[float]
    busy_us: float | None
    launches: Mapping[str, int] = field(default_factory=dict)  # raw events per op, before concurrent ones merge


RUN_MARK = "xlainspect_profiled_run_"
"""Name of the profiler annotation around each profiled run, followed by the run's index from 0."""

Marker = Callable[[str], AbstractContextManager[Any]]


def _timed(run: Callable[[], Any], times: int, mark: Marker = lambda name: nullcontext()) -> list[float]:
    """Wall seconds of each of ``times`` runs: the step time while the profiler watched, to compare kernels with.

    Each run is wrapped in ``mark(RUN_MARK + index)``, the framework's profiler annotation, so the trace says which
    run each kernel event belongs to.
    """
    seconds = []
    for index in range(times):
        with mark(f"{RUN_MARK}{index}"):
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
    return seconds


def _tuples(runs: Mapping[str, list[int]]) -> dict[str, tuple[int, ...]]:
    return {op: tuple(indices) for op, indices in runs.items()}


def _run_marks(marks: Mapping[str, float], runs: int) -> list[float] | None:
    """The start of each profiled run from its annotation's start, by run index; None unless every run was marked."""
    starts = [marks.get(f"{RUN_MARK}{index}") for index in range(runs)]
    if runs == 0 or None in starts or starts != sorted(starts):
        return None
    return starts  # type: ignore[return-value]


def _by_run(events: list[tuple[str, float, float]], marks: Mapping[str, float],
            runs: int) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Durations by ``hlo_op`` from (op, start, duration) events, and the run each fell in (empty when the runs'
    annotations are not all in the trace: then no spread is claimed)."""
    starts = _run_marks(marks, runs)
    kernels: dict[str, list[float]] = defaultdict(list)
    run_of: dict[str, list[int]] = defaultdict(list)
    for op, start, duration in events:
        kernels[op].append(duration)
        if starts is not None:
            run_of[op].append(interval_index(starts, start))
    return dict(kernels), dict(run_of)


def _uncompiled_timing(version: str, run: Callable[[], Any], repeats: int, warmup: int, what: str) -> TimeResult:
    # Nothing is compiled as one module, so there is no HLO to attribute time to: whole-step times only.
    first_s, runs = _steady_runs(run, repeats, warmup)
    steady = sorted(runs)[len(runs) // 2]
    return TimeResult(version, max(first_s - steady, 0.0), tuple(runs),
                      note=f"{what}: no module to profile; 'compile' is the first call (tracing, op caches) less one "
                           "steady run")


def _jax_timing(program: Program, inputs: dict[str, np.ndarray], repeats: int, warmup: int, profile_runs: int,
                variant: Variant) -> TimeResult:
    import jax

    args = [jax.device_put(value) for value in inputs.values()]
    if not variant.compiled:
        eager = program.jax_function(variant)
        return _uncompiled_timing(jax.__version__, lambda: jax.block_until_ready(eager(*args)), repeats, warmup,
                                  "no jit, JAX ran op by op")
    jitted = program.jax_function(variant)
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    module_name = hlo_module_name(compiled.as_text())
    for _ in range(warmup):
        jax.block_until_ready(compiled(*args))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - start)
    profile = _jax_profile(lambda: jax.block_until_ready(compiled(*args)), profile_runs, module_name) \
        if profile_runs else _Profile({}, {}, [], None)
    return TimeResult(jax.__version__, compile_s, tuple(runs), module_name, compiled.as_text(),
                      {op: tuple(durations) for op, durations in profile.kernels.items()}, profile_runs,
                      tuple(profile.runs_s), profile.busy_us, kernel_runs=_tuples(profile.kernel_runs),
                      launches=dict(profile.launches))


def _module_events(trace_dir: str, module_name: str) -> tuple[list[tuple[str, float, float]], dict[str, float]]:
    """(hlo_op, start µs, duration µs) of every event of ``module_name``, ``end:`` markers dropped, and the start of
    each :data:`RUN_MARK` annotation by its name."""
    paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True) or \
        glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    found = []
    marks: dict[str, float] = {}
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            events = json.load(file).get("traceEvents", [])
        for event in events:
            args = event.get("args") or {}
            name = str(event.get("name", ""))
            if event.get("ph") == "X" and name.startswith(RUN_MARK):
                marks[name] = float(event.get("ts", 0.0))
            if event.get("ph") != "X" or "hlo_op" not in args or name.startswith("end:"):
                continue
            if args.get("hlo_module") == module_name:
                found.append((args["hlo_op"], float(event.get("ts", 0.0)), float(event.get("dur", 0.0))))
    return found, marks


def _kernel_events(trace_dir: str, module_name: str,
                   runs: int) -> tuple[dict[str, list[float]], dict[str, list[int]], float, dict[str, int]]:
    """Durations (µs) per ``hlo_op``, the run each fell in, the busy time (how long at least one of the module's
    ops was running), and each op's launches (its events as the profiler wrote them).

    Kernel times add up to more than the wall time when the runtime runs independent ops at once (XLA:CPU does, on
    its thread pool); the busy time, the union of the events' intervals, never does. One op's own launches that run
    at once (cuDNN splits a grouped convolution into concurrent kernels, XLA:CPU splits a fusion into tasks) count
    as one event spanning them: the time that op was running, so no op takes more than the whole step.
    """
    events, marks = _module_events(trace_dir, module_name)
    kernels, run_of = _by_run(_merge_concurrent(events), marks, runs)
    return kernels, run_of, union_length((start, start + duration) for _, start, duration in events), \
        dict(Counter(op for op, _, _ in events))


def _merge_concurrent(events: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """(op, start, duration) events with each op's overlapping events merged into one spanning them.

    Only a launch that starts before the previous one ended merges: back-to-back launches (a loop body's kernel,
    one launch per iteration) touch but do not overlap, and each stays a launch of its own.
    """
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for op, start, duration in events:
        spans[op].append((start, start + duration))
    merged = []
    for op, intervals in spans.items():
        intervals.sort()
        first, last = intervals[0]
        for start, end in intervals[1:]:
            if start < last:  # starts before the op's previous launch ended: they ran at once
                last = max(last, end)
            else:
                merged.append((op, first, last - first))
                first, last = start, end
        merged.append((op, first, last - first))
    return sorted(merged, key=lambda event: event[1])


def _jax_profile(run: Callable[[], Any], profile_runs: int, module_name: str) -> _Profile:
    """Profiles ``profile_runs`` runs with JAX's profiler, each run inside its own annotation."""
    import jax

    with tempfile.TemporaryDirectory(prefix="xlainspect-profile-") as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            profiled = _timed(run, profile_runs, jax.profiler.TraceAnnotation)
        kernels, run_of, busy, launches = _kernel_events(trace_dir, module_name, profile_runs)
    return _Profile(kernels, run_of, profiled, busy / profile_runs, launches)


def _tf_timing(program: Program, inputs: dict[str, np.ndarray], repeats: int, warmup: int, profile_runs: int,
               variant: Variant) -> TimeResult:
    import tensorflow as tf

    function = program.tf_function(variant)
    args = [tf.constant(value) for value in inputs.values()]

    def run() -> None:
        for output in tf.nest.flatten(function(*args)):
            output.numpy()  # reading back synchronises

    if not variant.compiled:
        return _uncompiled_timing(tf.__version__, run, repeats, warmup, "no XLA, TF's own kernels ran the graph")
    first_s, runs = _steady_runs(run, repeats, warmup)  # the first call traces, compiles with XLA and runs once
    steady = sorted(runs)[len(runs) // 2]
    profile = _Profile({}, {}, [], None)
    module_name = ""
    if profile_runs:
        with tempfile.TemporaryDirectory(prefix="xlainspect-profile-") as trace_dir:
            tf.profiler.experimental.start(trace_dir)
            try:
                profiled = _timed(run, profile_runs, tf.profiler.experimental.Trace)
            finally:
                tf.profiler.experimental.stop()
            name = getattr(getattr(function, "python_function", None), "__name__", "")
            module_name, kernels, run_of, launches = _tf_kernel_events(trace_dir, name, profile_runs)
            profile = _Profile(kernels, run_of, profiled, None, launches)
    hlo_text = function.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    return TimeResult(tf.__version__, max(first_s - steady, 0.0), tuple(runs), module_name or hlo_module_name(hlo_text),
                      hlo_text, {op: tuple(durations) for op, durations in profile.kernels.items()},
                      profile_runs if profile.kernels else 0, tuple(profile.runs_s),
                      note="compile time is the first call (trace, XLA compile, run) less one steady run",
                      kernel_runs=_tuples(profile.kernel_runs), launches=dict(profile.launches))


def _tf_kernel_events(trace_dir: str, function_name: str,
                      runs: int) -> tuple[str, dict[str, list[float]], dict[str, list[int]], dict[str, int]]:
    """The program's module name, its durations (µs) per ``hlo_op``, the run each fell in and each op's launches,
    read from TF's XPlane profile (one op's concurrent launches merged, as :func:`_kernel_events` does). An event's
    time is its line's start plus its offset, on the clock all host planes share."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    by_module: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    marks: dict[str, float] = {}
    for path in glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as file:
            space.ParseFromString(file.read())
        for plane in space.planes:
            stat_names = {key: value.name for key, value in plane.stat_metadata.items()}
            event_names = {key: value.name for key, value in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    start_us = line.timestamp_ns / 1e3 + event.offset_ps / 1e6
                    name = event_names.get(event.metadata_id, "")
                    if name.startswith(RUN_MARK):
                        marks[name] = start_us
                    stats = {}
                    for stat in event.stats:
                        kind = stat.WhichOneof("value")
                        value = getattr(stat, kind) if kind else None
                        stats[stat_names.get(stat.metadata_id)] = stat_names.get(value) if kind == "ref_value" \
                            else value
                    if "hlo_op" in stats and "hlo_module" in stats:
                        by_module[str(stats["hlo_module"])].append((str(stats["hlo_op"]), start_us,
                                                                    event.duration_ps / 1e6))
    if not by_module:
        return "", {}, {}, {}
    named = [name for name in by_module if function_name and function_name in name]
    module = max(named or by_module, key=lambda name: len(by_module[name]))
    kernels, run_of = _by_run(_merge_concurrent(by_module[module]), marks, runs)
    return module, kernels, run_of, dict(Counter(op for op, _, _ in by_module[module]))


def _hlo_via_jax_timing(program: Program, inputs: dict[str, np.ndarray], repeats: int, warmup: int,
                        profile_runs: int, proto_path: str) -> TimeResult:
    """Compiles another framework's pre-optimization HLO with JAX's XLA and times it in JAX's runtime.

    The fallback when a framework's own profiler gives no per-HLO-op times: the module is the other front end's,
    but the compiler, runtime and profiler are JAX's, and the result is labelled so. The outputs are checked
    against the program's float64 reference, so a module fed the wrong inputs cannot pass as timed.
    """
    import jax
    import numpy as np

    from xlainspect.runners.jax_compile import compile_hlo_proto

    with open(proto_path, "rb") as file:
        proto = file.read()
    device = jax.devices()[0]
    start = time.perf_counter()
    executable = compile_hlo_proto(proto, device, load=True)
    compile_s = time.perf_counter() - start
    args = [jax.device_put(value, device) for value in inputs.values()]

    def run() -> list[Any]:
        return jax.block_until_ready(executable.execute(args))

    outputs = run()
    expected = program.reference(inputs)
    error = max(float(np.linalg.norm(np.asarray(out, np.float64) - ref) / max(np.linalg.norm(ref), 1e-300))
                for out, ref in zip(outputs, expected))
    if not error < 1e-3:
        raise RuntimeError(f"TF's HLO run by JAX's runtime does not compute {program.name} (relative error "
                           f"{error:.1e} against the float64 reference): its parameters are not in the program's "
                           "input order")
    _, runs = _steady_runs(run, repeats, warmup)
    hlo_text = executable.hlo_modules()[0].to_string()
    module_name = hlo_module_name(hlo_text)
    profile = _jax_profile(run, profile_runs, module_name) if profile_runs else _Profile({}, {}, [], None)
    return TimeResult(f"jaxlib {jax.__version__} running TF's HLO", compile_s, tuple(runs), module_name, hlo_text,
                      {op: tuple(durations) for op, durations in profile.kernels.items()},
                      profile_runs if profile.kernels else 0, tuple(profile.runs_s), profile.busy_us,
                      f"TF's front end, compiled and run by JAX's XLA (jaxlib {jax.__version__}) on "
                      f"{device.platform}: not TF's runtime; outputs match the float64 reference to {error:.1e}",
                      error, _tuples(profile.kernel_runs), launches=dict(profile.launches))


def _torch_timing(program: Program, request: TimeRequest, inputs: dict[str, np.ndarray]) -> TimeResult:
    """Eager PyTorch (Opacus for DP-SGD): whole-step times only, there is no module."""
    import torch

    step = program.torch_step("torch", request.batch_size, request.dtype)
    args = step.arguments(inputs)
    what = "eager PyTorch, Opacus' DP-SGD" if program.has_per_example_gradients else "eager PyTorch"
    return replace(_uncompiled_timing(torch.__version__, lambda: step.run(*args), request.repeats,
                                      request.warmup, f"{what} on the CPU ({torch.get_num_threads()} threads)"),
                   module_name="")


def _torch_xla_timing(program: Program, request: TimeRequest, inputs: dict[str, np.ndarray]) -> TimeResult:
    """PyTorch/XLA: the first call traces and compiles the step's module, later calls reuse it (the graph cache).

    Each run ends with ``torch_xla.sync()`` and waits for the device, as a training loop's step does. The module
    that ran is read from XLA's dump, which the parent asked for in ``XLA_FLAGS``.
    """
    import torch_xla

    from xlainspect.programs._torch import fallbacks

    step = program.torch_step("torch_xla", request.batch_size, request.dtype)
    args = step.arguments(inputs)

    def run() -> None:
        step.synchronize(step.run(*args))

    first_s, runs = _steady_runs(run, request.repeats, max(request.warmup, 2))  # the second call compiles again
    steady = sorted(runs)[len(runs) // 2]
    _until_no_new_graph(run)  # so that the profiled runs run the newest module, the one read below
    module_name, module_text = _dumped_module(step.name)
    left = fallbacks()
    profile = _Profile({}, {}, [], None)
    mixed = ""
    if request.profile_runs and module_name:
        profile = _torch_xla_profile(run, request.profile_runs, module_name)
        # PyTorch/XLA may compile the step more than once under one name (its second call reorders the
        # parameters); the profiled runs ran one of them: the newest whose instructions hold every profiled op.
        module_text, profile, mixed = _module_that_ran(step.name, module_text, profile)
    return TimeResult(torch_xla.__version__, max(first_s - steady, 0.0), tuple(runs), module_name,
                      module_text, {op: tuple(durations) for op, durations in profile.kernels.items()},
                      request.profile_runs if profile.kernels else 0, tuple(profile.runs_s), profile.busy_us,
                      note="compile time is the first call (trace, XLA compile, run) less one steady run" + (
                          f"; PyTorch/XLA ran part of the step outside XLA, on the CPU: {left}" if left else "") + (
                          mixed),
                      kernel_runs=_tuples(profile.kernel_runs), launches=dict(profile.launches))


def _until_no_new_graph(run: Callable[[], Any], most: int = 5) -> None:
    """Runs the step until a run compiles nothing new (at most ``most`` runs), by PyTorch/XLA's compile counter.

    PyTorch/XLA may compile a step again on a later call under the same module name (seen on the second call, and
    under load on a later one); the graphs differ, their op names overlap, so a profile of runs that used two of them
    could not be told apart by name.
    """
    import torch_xla.debug.metrics as met

    def compiles() -> int:
        data = met.metric_data("CompileTime")
        return int(data[0]) if data else 0

    for _ in range(most):
        before = compiles()
        run()
        if compiles() == before:
            return


def _module_that_ran(function_name: str, chosen_text: str, profile: _Profile) -> tuple[str, _Profile, str]:
    """Of the dumped modules named after ``function_name`` (newest first; ``chosen_text`` when there are none), the
    one whose kernels the profiled ops are (the most of them), and the profile kept to its kernels, with a note when
    some ops were left out: the profiled runs then also ran another of PyTorch/XLA's graphs of that name, whose op
    names overlap."""
    from xlainspect.analysis.census import census
    from xlainspect.hlo import parse_hlo

    profiled = set(profile.kernels)
    best_text, best = chosen_text, set()
    for text in _dumped_texts(function_name) or [chosen_text]:
        kernels = {kernel.name for kernel in census(parse_hlo(text)).kernels}
        if len(profiled & kernels) > len(profiled & best) or not best:
            best_text, best = text, kernels
    if profiled <= best:
        return best_text, profile, ""
    kept = _Profile({op: t for op, t in profile.kernels.items() if op in best},
                    {op: r for op, r in profile.kernel_runs.items() if op in best}, profile.runs_s, profile.busy_us,
                    {op: n for op, n in profile.launches.items() if op in best})
    return best_text, kept, (f"; {len(profiled - best)} profiled ops belong to another of PyTorch/XLA's graphs named "
                             f"{function_name} and are left out (the runs used more than one)")


def _dumped_texts(function_name: str) -> list[str]:
    """Every optimized module named after ``function_name`` in the dump ``XLA_FLAGS`` asked for, newest first."""
    import re

    from xlainspect.hlo.dump_folder import dumped_modules

    match = re.search(r"--xla_dump_to=(\S+)", os.environ.get("XLA_FLAGS", ""))
    if match is None or not os.path.isdir(match.group(1)):
        return []
    modules = sorted((m for m in dumped_modules(match.group(1)) if m.after is not None and function_name in m.name
                      and not m.helper),
                     key=lambda m: m.number, reverse=True)
    return [m.after.read_text(encoding="utf-8") for m in modules if m.after is not None]


def _dumped_module(function_name: str) -> tuple[str, str]:
    """The optimized module named after ``function_name`` from the dump ``XLA_FLAGS`` asked for; ("", "") if none."""
    import re

    from xlainspect.hlo.dump_folder import dumped_modules

    match = re.search(r"--xla_dump_to=(\S+)", os.environ.get("XLA_FLAGS", ""))
    if match is None or not os.path.isdir(match.group(1)):
        return "", ""
    modules = tuple(module for module in dumped_modules(match.group(1))
                    if module.after is not None and function_name in module.name and not module.helper)
    # The last compiled: PyTorch/XLA compiles the step again on its second call, and runs that module from then on.
    chosen = max(modules, key=lambda module: module.number, default=None)
    if chosen is None or chosen.after is None:
        return "", ""
    text = chosen.after.read_text(encoding="utf-8")
    return hlo_module_name(text), text


def _torch_xla_profile(run: Callable[[], Any], profile_runs: int, module_name: str) -> _Profile:
    """Profiles ``profile_runs`` runs with PyTorch/XLA's profiler, each inside its own annotation, and reads its
    XPlane file with :mod:`.xplane` (PyTorch/XLA's environment has no protobuf classes for it).

    The annotation is the profiler's ``TraceMe``, not ``torch_xla.debug.profiler.Trace``: ``Trace`` also opens an IR
    scope, and the ``sync()`` at the end of a compiled step then fails ("Expecting scope to be empty").
    """
    import torch_xla
    import torch_xla.debug.profiler as xp

    from xlainspect.runners.xplane import read_xplane

    with tempfile.TemporaryDirectory(prefix="xlainspect-profile-") as trace_dir:
        xp.start_trace(trace_dir)
        try:
            profiled = _timed(run, profile_runs, torch_xla._XLAC.profiler.TraceMe)
        finally:
            xp.stop_trace()
        profile = read_xplane(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True), RUN_MARK)
    events = [(event.hlo_op, event.start_us, event.duration_us) for event in profile.events
              if event.hlo_module == module_name]
    kernels, run_of = _by_run(_merge_concurrent(events), profile.marks, profile_runs)
    busy = union_length((start, start + duration) for _, start, duration in events)
    return _Profile(kernels, run_of, profiled, busy / profile_runs if events else None,
                    dict(Counter(op for op, _, _ in events)))


def _gpu_missing(framework: str) -> str:
    """Why the GPU backend cannot run here, or "" when a GPU is visible to ``framework``."""
    if framework == "jax":
        import jax

        if jax.default_backend() == "gpu":
            return ""
        return (f"no GPU is visible to JAX (its backend is {jax.default_backend()}); GPU timing needs a GPU and "
                "jax's CUDA plugin (pip install 'jax[cuda12]' at the installed jax version)")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return ""
    return "no GPU is visible to TensorFlow; GPU timing needs a GPU and a CUDA build of tensorflow"


def main(argv: list[str]) -> int:
    request = read_request(TimeRequest, argv)
    if missing_framework(*framework_modules("jax" if request.hlo_proto else request.framework)):
        return EXIT_FRAMEWORK_MISSING
    if request.backend == "gpu" and (why := _gpu_missing(request.framework)):
        print(why, file=sys.stderr)
        return EXIT_NO_GPU
    return answer(request, "tf" if request.hlo_proto else request.framework, "timing it",
                  lambda program: _time(request, program))


def _time(request: TimeRequest, program: Program) -> TimeResult | ExportResult:
    from xlainspect.programs._frameworks import is_abstract
    from xlainspect.programs.user import UserProgramError

    inputs = program.inputs(batch_size=request.batch_size, dtype=request.dtype)
    if any(is_abstract(value) for value in inputs.values()):
        raise UserProgramError(f"{request.program} gives shapes only (ShapeDtypeStruct): they compile but cannot "
                               "run; return arrays to time it")
    runs = (request.repeats, request.warmup, request.profile_runs)
    if request.export_hlo is not None:
        from xlainspect.runners.jax_compile import export_tf_hlo

        return export_tf_hlo(program, inputs, request.export_hlo)
    if request.hlo_proto is not None:
        result = _hlo_via_jax_timing(program, inputs, *runs, request.hlo_proto)
    elif request.framework in ("torch", "torch_xla"):
        result = (_torch_timing if request.framework == "torch" else _torch_xla_timing)(program, request, inputs)
    else:
        timing = _jax_timing if request.framework == "jax" else _tf_timing
        result = timing(program, inputs, *runs, request.variant)
    return replace(result, batch_size=program.batch_size(request.batch_size),
                   frameworks=program.frameworks(request.batch_size))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
