"""The child process of ``xlainspect time``: compiles, then times one synthetic program in one framework.

Each framework runs in its own process so one framework's threads, allocator and XLA flags cannot slow the other.
Compile time is measured apart from run time; steady-state runs come after warm-up and synchronise with the device
(JAX ``block_until_ready``, TF reading the results back). For JAX a separate, profiled pass attributes time to HLO
instructions by the profiler events' ``hlo_op`` and ``hlo_module`` fields, never by kernel name (see NOTES).

Run as ``python -m xlainspect.time_child '{"program": ..., "framework": ..., "repeats": ..., ...}'``; prints one
``RESULT {json}`` line; exit status 3 when the framework is missing.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

EXIT_FRAMEWORK_MISSING = 3


def _jax_timing(program: Any, inputs: dict[str, Any], repeats: int, warmup: int, profile_runs: int) -> dict:
    import jax

    args = [jax.device_put(value) for value in inputs.values()]
    jitted = program.jax_function()
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    module_name = _module_name(compiled.as_text())
    for _ in range(warmup):
        jax.block_until_ready(compiled(*args))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - start)
    kernels: dict[str, list[float]] = defaultdict(list)
    if profile_runs:
        with tempfile.TemporaryDirectory(prefix="xlainspect-profile-") as trace_dir:
            with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
                for _ in range(profile_runs):
                    jax.block_until_ready(compiled(*args))
            kernels = _kernel_events(trace_dir, module_name)
    return {"framework_version": jax.__version__, "compile_s": compile_s, "runs_s": runs, "module_name": module_name,
            "hlo_text": compiled.as_text(), "kernels": {op: durations for op, durations in kernels.items()},
            "profiled_runs": profile_runs}


def _module_name(hlo_text: str) -> str:
    first = hlo_text.split("\n", 1)[0]
    return first.split()[1].rstrip(",") if first.startswith("HloModule ") else ""


def _kernel_events(trace_dir: str, module_name: str) -> dict[str, list[float]]:
    """Durations (µs) per ``hlo_op`` of the events of ``module_name``, ``end:`` markers dropped."""
    paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True) or \
        glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
    kernels: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            events = json.load(file).get("traceEvents", [])
        for event in events:
            args = event.get("args") or {}
            if event.get("ph") != "X" or "hlo_op" not in args or str(event.get("name", "")).startswith("end:"):
                continue
            if args.get("hlo_module") != module_name:
                continue
            kernels[args["hlo_op"]].append(float(event.get("dur", 0.0)))
    return kernels


def _tf_timing(program: Any, inputs: dict[str, Any], repeats: int, warmup: int) -> dict:
    import tensorflow as tf

    function = program.tf_function()
    args = [tf.constant(value) for value in inputs.values()]

    def run() -> None:
        for output in tf.nest.flatten(function(*args)):
            output.numpy()  # reading back synchronises

    start = time.perf_counter()
    run()  # traces, compiles with XLA and runs once
    first_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        run()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        runs.append(time.perf_counter() - start)
    steady = sorted(runs)[len(runs) // 2]
    return {"framework_version": tf.__version__, "compile_s": max(first_s - steady, 0.0), "runs_s": runs,
            "module_name": "", "hlo_text": "", "kernels": {}, "profiled_runs": 0,
            "note": "TF's compile time is its first call (trace, XLA compile, run) less one steady run; per-kernel "
                    "attribution for TF is not implemented yet"}


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    framework = request["framework"]
    try:
        if framework == "jax":
            import jax  # noqa: F401  (imported only to report a missing package as such)
        else:
            import tensorflow  # noqa: F401
    except ImportError as e:
        print(f"MISSING {e}", file=sys.stderr)
        return EXIT_FRAMEWORK_MISSING
    from synthetic import get_program

    program = get_program(request["program"])
    inputs = program.inputs(batch_size=request.get("batch_size"), dtype=request.get("dtype", "float32"))
    repeats, warmup = request["repeats"], request["warmup"]
    if framework == "jax":
        result = _jax_timing(program, inputs, repeats, warmup, request.get("profile_runs", 0))
    else:
        result = _tf_timing(program, inputs, repeats, warmup)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
