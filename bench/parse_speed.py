"""Compare xlainspect's HLO parser with XLA's own C++ parser on a big module.

xlainspect promises to parse optimized HLO text at no worse than twice the
time XLA's C++ parser (``hlo_module_from_text``) takes, so users can inspect
multi-megabyte dumps interactively. This script checks that promise on one
real training-step module (see ``big_module.py``) and also times the
conversion to networkx and our parser's memory use, all in one run so the
figures come from the same machine state.

Usage::

    python bench/parse_speed.py [--min-mb 15] [--repeats 5] [--cache PATH]
                                [--json] [--check]

Each figure is the best of ``--repeats`` runs, ``gc.collect()`` before each
run. Every step is timed twice: with the garbage collector left on (the
figures the PASS/FAIL verdict uses, as users get them) and with it disabled
during the run (how much of the time the collector costs).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

from bench.big_module import BYTES_PER_MB, read_cached  # noqa: E402

TARGET_RATIO = 2.0
GC_MODES = ("gc_on", "gc_off")
INSTRUCTION_RE = re.compile(r"^[ \t]+(?:ROOT[ \t]+)?%?[\w.\-]+[ \t]*=[ \t]*.*?[a-z][\w\-]*\(.*$", re.M)


@dataclass(frozen=True)
class ModuleStats:
    """Figures about the module text that drive parsing cost.

    Attributes:
        size_bytes: UTF-8 size of the text.
        size_mb: ``size_bytes`` in MB (1e6 bytes).
        lines: Number of lines.
        instructions: Lines that hold an HLO instruction.
        avg_instruction_bytes: Mean length of an instruction line.
        with_metadata: Instruction lines carrying ``metadata=``.
        with_backend_config: Instruction lines carrying ``backend_config=``.
    """

    size_bytes: int
    size_mb: float
    lines: int
    instructions: int
    avg_instruction_bytes: float
    with_metadata: int
    with_backend_config: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-mb", type=float, default=15.0, help="minimum module size in MB")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per step; the best counts")
    parser.add_argument("--cache", help="module cache file (default: one per size in the temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if ours/XLA > {TARGET_RATIO}")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def import_xlainspect() -> ModuleType:
    """Import xlainspect, or exit with a message saying how to make it importable.

    Returns:
        The ``xlainspect`` package.
    """
    try:
        import xlainspect
    except ImportError as exc:
        sys.exit(
            f"parse_speed: cannot import xlainspect ({exc}). Run from a checkout of the "
            "repository or install it with `pip install -e .`."
        )
    missing = [name for name in ("parse_hlo", "to_networkx") if not hasattr(xlainspect, name)]
    if missing:
        sys.exit(f"parse_speed: xlainspect ({xlainspect.__path__}) lacks {', '.join(missing)}")
    return xlainspect


def default_cache_path(min_mb: float) -> str:
    """Return the cache file used when ``--cache`` is not given: one per size and jax version (another jax's XLA
    writes another module, and the figures must be of the installed one's)."""
    version = importlib.metadata.version("jax")
    return os.path.join(tempfile.gettempdir(), "xlainspect-bench", f"big_module_{min_mb:g}mb-jax{version}.hlo")


def load_module_text(path: str, min_mb: float) -> str:
    """Return the cached big module, building it first if needed.

    The build runs in a child process so that JAX's compilation does not
    inflate this process's peak RSS, which the report includes.

    Args:
        path: Cache file.
        min_mb: Minimum module size in MB.

    Returns:
        The HLO module text.
    """
    text = read_cached(path, min_mb)
    if text is not None:
        return text
    print(f"building a {min_mb:g} MB module into {path} ...", file=sys.stderr)
    command = [sys.executable, str(BENCH_DIR / "big_module.py"), path, "--min-mb", str(min_mb)]
    subprocess.run(command, check=True, stdout=sys.stderr)
    text = read_cached(path, min_mb)
    if text is None:
        sys.exit(f"parse_speed: building the module did not produce {path}")
    return text


def module_stats(text: str) -> ModuleStats:
    """Count instructions and the attributes that make them expensive to parse.

    Args:
        text: HLO module text.

    Returns:
        The module's statistics.
    """
    lines = INSTRUCTION_RE.findall(text)
    size = len(text.encode("utf-8"))
    return ModuleStats(
        size_bytes=size,
        size_mb=size / BYTES_PER_MB,
        lines=text.count("\n") + 1,
        instructions=len(lines),
        avg_instruction_bytes=sum(len(line.encode("utf-8")) for line in lines) / max(len(lines), 1),
        with_metadata=sum("metadata=" in line for line in lines),
        with_backend_config=sum("backend_config=" in line for line in lines),
    )


def time_runs(fn: Callable[[], Any], repeats: int, gc_off: bool) -> list[float]:
    """Time ``fn`` several times.

    The result of each run is freed after the clock stops, so deallocation is
    never timed.

    Args:
        fn: Work to time.
        repeats: Number of runs.
        gc_off: Disable the garbage collector during each run.

    Returns:
        Seconds taken by each run.
    """
    times = []
    for _ in range(repeats):
        gc.collect()
        if gc_off:
            gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
        del result
    return times


def time_both_gc_modes(fn: Callable[[], Any], repeats: int) -> dict[str, list[float]]:
    """Time ``fn`` with the collector on, then with it off during each run."""
    return {mode: time_runs(fn, repeats, gc_off=mode == "gc_off") for mode in GC_MODES}


def python_peak_bytes(parse: Callable[[str], Any], text: str) -> tuple[int, int]:
    """Measure the Python allocations of one (untimed) parse with tracemalloc.

    Args:
        parse: The parser.
        text: Module text.

    Returns:
        ``(peak, retained)``: the peak traced bytes during parsing and the
        bytes still held by the parsed module afterwards.
    """
    gc.collect()
    tracemalloc.start()
    try:
        module = parse(text)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del module
    return peak, retained


def max_rss_bytes() -> int:
    """Return this process's peak resident set size in bytes."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB.


def summarise(runs: dict[str, list[float]], size_mb: float) -> dict[str, Any]:
    """Reduce the runs of one step to best times and throughput.

    Args:
        runs: Per-run seconds keyed by GC mode.
        size_mb: Module size in MB.

    Returns:
        Best seconds and MB/s per GC mode, plus the raw runs.
    """
    best = {mode: min(times) for mode, times in runs.items()}
    return {
        "best_s": best,
        "mb_per_s": {mode: size_mb / seconds for mode, seconds in best.items()},
        "runs_s": runs,
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement and gather the figures.

    Args:
        args: Parsed command-line options.

    Returns:
        All figures, ready for printing or JSON.
    """
    xlainspect = import_xlainspect()
    from xlainspect.runners.jax_private import hlo_module_from_text

    cache = args.cache or default_cache_path(args.min_mb)
    text = load_module_text(cache, args.min_mb)
    stats = module_stats(text)
    rss_before = max_rss_bytes()

    ours = time_both_gc_modes(lambda: xlainspect.parse_hlo(text), args.repeats)
    xla = time_both_gc_modes(lambda: hlo_module_from_text(text), args.repeats)
    module = xlainspect.parse_hlo(text)
    parsed_instructions = sum(len(c.instructions) for c in module.computations)
    graph = time_both_gc_modes(lambda: xlainspect.to_networkx(module), args.repeats)
    del module
    peak, retained = python_peak_bytes(xlainspect.parse_hlo, text)

    timed = {"parse_hlo": ours, "xla_parser": xla, "to_networkx": graph}
    steps = {name: summarise(runs, stats.size_mb) for name, runs in timed.items()}
    ratio = {mode: min(ours[mode]) / min(xla[mode]) for mode in GC_MODES}
    return {
        "cache": cache,
        "module": asdict(stats),
        "parsed_instructions": parsed_instructions,
        "repeats": args.repeats,
        "steps": steps,
        "ratio_ours_over_xla": ratio,
        "target_ratio": TARGET_RATIO,
        "passed": ratio["gc_on"] <= TARGET_RATIO,
        "parse_hlo_peak_python_mb": peak / BYTES_PER_MB,
        "parse_hlo_retained_python_mb": retained / BYTES_PER_MB,
        "max_rss_mb_before_timing": rss_before / BYTES_PER_MB,
        "max_rss_mb": max_rss_bytes() / BYTES_PER_MB,
    }


def print_report(r: dict[str, Any]) -> None:
    """Print the figures for a human reader.

    Args:
        r: Figures from ``run_benchmark``.
    """
    m = r["module"]
    print(f"module: {r['cache']}")
    print(f"  {m['size_mb']:.2f} MB, {m['lines']:,} lines, {m['instructions']:,} instructions "
          f"(regex; parse_hlo found {r['parsed_instructions']:,})")
    print(f"  instruction lines: {m['avg_instruction_bytes']:.0f} bytes on average, "
          f"{m['with_metadata']:,} with metadata=, {m['with_backend_config']:,} with backend_config=")
    print(f"best of {r['repeats']} runs; gc on (gc disabled during the run in brackets):")
    labels = {"parse_hlo": "xlainspect.parse_hlo", "xla_parser": "XLA hlo_module_from_text",
              "to_networkx": "xlainspect.to_networkx"}
    for name, label in labels.items():
        best, rate = r["steps"][name]["best_s"], r["steps"][name]["mb_per_s"]
        print(f"  {label:<26} {best['gc_on']:8.3f} s {rate['gc_on']:8.2f} MB/s"
              f"   ({best['gc_off']:.3f} s, {rate['gc_off']:.2f} MB/s)")
    ratio = r["ratio_ours_over_xla"]
    verdict = "PASS" if r["passed"] else "FAIL"
    print(f"ratio ours/XLA: {ratio['gc_on']:.2f} ({ratio['gc_off']:.2f} gc off), "
          f"target <= {r['target_ratio']}: {verdict}")
    print(f"parse_hlo Python allocations (tracemalloc, untimed pass): peak "
          f"{r['parse_hlo_peak_python_mb']:.1f} MB, retained {r['parse_hlo_retained_python_mb']:.1f} MB")
    print(f"process max RSS: {r['max_rss_mb']:.1f} MB ({r['max_rss_mb_before_timing']:.1f} MB before timing)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and report it.

    Args:
        argv: Command-line arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        1 if ``--check`` was given and the target was missed, else 0.
    """
    args = parse_args(argv)
    results = run_benchmark(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    return 1 if args.check and not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
