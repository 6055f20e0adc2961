"""How long and how much memory ``xlainspect diff`` takes on real modules, against parsing them.

A diff is part of the parse-and-compare workflow a user runs on every change, so it should cost about what reading
the two modules costs: at most 2x the parse time and 2x the parse's peak memory (issue 12). It also has to see through
loops: on a model with its layers unrolled against the same model in ``lax.scan``, at least 90% of the unrolled side's
kernels should find their match in the loop body.

This script builds (or reuses from ``--cache``) one transformer training step in three variants with
``transformer_pair.py``, whose unrolled module is the ``big_module.py`` program that ``parse_speed.py`` parses, and
measures two pairs:

- unrolled vs sharded (each at least ``--min-mb``): time and peak memory of the diff against the parse;
- unrolled vs scan: the fraction of the unrolled side's kernels that are matched.

Every measurement runs in a fresh child process, so each peak RSS (``ru_maxrss`` of the child) belongs to exactly one
job: a *parse* child reads both modules with ``xlainspect.read_hlo`` (run ``--repeats`` times; the best time counts),
and a *diff* child reads them, then times ``census`` of each and ``diff_census`` (the "diff" figure, parsing
excluded). The diff child gets a wall-clock limit (``--timeout``) and an address-space limit (``--max-memory-gb``):
when it hits either, the report says "did not finish" with what was known by then, instead of hanging or swapping.

Usage::

    python bench/diff_speed.py [--min-mb 15 | --layers N] [--cache DIR] [--repeats 3] [--timeout 600]
                               [--max-memory-gb G] [--json] [--check]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

from bench.transformer_pair import PairManifest, build_pair_in_child, read_manifest  # noqa: E402

TARGET_TIME_RATIO = 2.0
TARGET_RSS_RATIO = 2.0
TARGET_LOOP_MATCHED = 0.9
PAIRS = {"sharded": ("unrolled", "sharded"), "scan": ("unrolled", "scan")}
"""Measured pairs by name: (side A, side B) variants of ``transformer_pair.py``."""
CHILD_FLAG = "--child"
PROGRESS = "PARSED "
RESULT = "RESULT "
BYTES_PER_MB = 1e6
DEFAULT_MEMORY_LIMIT = 8 * 10**9


class BenchError(Exception):
    """A failure the benchmark reports in one line (a module that cannot be built or parsed)."""


@dataclass(frozen=True)
class ChildResult:
    """What one measuring child reports (the only thing that crosses the process boundary).

    Attributes:
        mode: ``parse`` or ``diff``.
        parse_s: Seconds to ``read_hlo`` both modules.
        max_rss_mb: The child's peak RSS in MB, at the end of its work (or when it failed).
        census_s: Seconds for ``census`` of both modules (diff mode only).
        diff_census_s: Seconds for ``diff_census`` (diff mode only).
        kernels: Kernel counts of sides A and B.
        launches: Kernel launches per module execution of sides A and B (loops counted by trip count).
        matched: Kernels of A and of B that the diff matched (the count minus those reported only on that side).
        pairs: Number of matched pairs the diff returned.
        verdict: The diff's one-line verdict.
        error: ``Type: message`` if the child's work raised, else empty.
    """

    mode: str
    parse_s: float
    max_rss_mb: float
    census_s: float | None = None
    diff_census_s: float | None = None
    kernels: tuple[int, int] | None = None
    launches: tuple[int, int] | None = None
    matched: tuple[int, int] | None = None
    pairs: int | None = None
    verdict: str = ""
    error: str = ""

    @property
    def diff_s(self) -> float | None:
        """The diff phase: censuses plus matching, parsing excluded."""
        if self.census_s is None or self.diff_census_s is None:
            return None
        return self.census_s + self.diff_census_s

    def to_json(self) -> str:
        """Serialise for one stdout line."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChildResult:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        for key in ("kernels", "launches", "matched"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class PairReport:
    """The measurements of one pair of modules.

    Attributes:
        name: Pair name (a key of ``PAIRS``).
        files: Paths of sides A and B.
        parse: The best of the parse children (by time).
        parse_runs_s: Parse seconds of every parse child.
        diff: The diff child's result; for a child that did not finish, whatever it reported before it stopped.
        finished: Whether the diff child completed.
        failure: Why it did not finish (timeout, memory limit, exception, exit status), else empty.
        diff_wall_s: Wall time of the diff child process, start-up and parsing included.
    """

    name: str
    files: tuple[str, str]
    parse: ChildResult
    parse_runs_s: tuple[float, ...]
    diff: ChildResult | None
    finished: bool
    failure: str
    diff_wall_s: float

    @property
    def time_ratio(self) -> float | None:
        """Diff phase over parse time, ``None`` when the diff did not finish."""
        if not self.finished or self.diff is None or self.diff.diff_s is None:
            return None
        return self.diff.diff_s / self.parse.parse_s

    @property
    def rss_ratio(self) -> float | None:
        """Peak RSS of the diff child over the parse child's; a lower bound when the diff did not finish."""
        if self.diff is None:
            return None
        return self.diff.max_rss_mb / self.parse.max_rss_mb

    @property
    def matched_fraction_a(self) -> float | None:
        """Share of side A's kernels that the diff matched."""
        if not self.finished or self.diff is None or not self.diff.kernels or self.diff.matched is None:
            return None
        return self.diff.matched[0] / max(self.diff.kernels[0], 1)

    def to_json(self) -> dict[str, Any]:
        """Return the figures, derived ratios included, as a JSON-ready dict."""
        return {**asdict(self), "diff_s": self.diff.diff_s if self.diff else None, "time_ratio": self.time_ratio,
                "rss_ratio": self.rss_ratio, "matched_fraction_a": self.matched_fraction_a}


# --- children -------------------------------------------------------------------------------------------------------


def max_rss_mb() -> float:
    """Return this process's peak resident set size in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss if sys.platform == "darwin" else rss * 1024) / BYTES_PER_MB  # Linux reports KiB.


def child_main(argv: list[str]) -> int:
    """Measure one job in this (fresh) process and print its ``ChildResult`` as the last line.

    Args:
        argv: ``MODE FILE_A FILE_B MEMORY_LIMIT_BYTES``; a limit of 0 means none.

    Returns:
        0, or 1 if the work raised (the result line then carries the error).
    """
    mode, file_a, file_b, limit = argv[0], argv[1], argv[2], int(argv[3])
    if limit > 0:  # Python raises MemoryError past this instead of swapping the machine to a standstill.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    parse_s = 0.0
    try:
        from xlainspect import read_hlo

        start = time.perf_counter()
        module_a, module_b = read_hlo(file_a)[0], read_hlo(file_b)[0]
        parse_s = time.perf_counter() - start
        if mode == "parse":
            print(RESULT + ChildResult("parse", parse_s, max_rss_mb()).to_json())
            return 0
        print(PROGRESS + ChildResult("diff", parse_s, max_rss_mb()).to_json(), flush=True)

        from xlainspect.analysis.census import census
        from xlainspect.analysis.diff import diff_census

        start = time.perf_counter()
        census_a, census_b = census(module_a), census(module_b)
        census_s = time.perf_counter() - start
        start = time.perf_counter()
        result = diff_census(census_a, census_b)
        diff_census_s = time.perf_counter() - start
        kernels = (census_a.kernel_count, census_b.kernel_count)
        report = ChildResult(
            "diff", parse_s, max_rss_mb(), census_s, diff_census_s, kernels,
            (census_a.launches, census_b.launches),
            (kernels[0] - len(result.only_a), kernels[1] - len(result.only_b)),
            len(result.matched), result.verdict(),
        )
    except (Exception, MemoryError) as exc:  # reported, not hidden: the parent prints it and fails --check
        print(RESULT + ChildResult(mode, parse_s, max_rss_mb(), error=f"{type(exc).__name__}: {exc}").to_json())
        return 1
    print(RESULT + report.to_json())
    return 0


def child_command(mode: str, files: tuple[str, str], memory_limit: int) -> list[str]:
    """Return the command line that runs one measuring child."""
    return [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, mode, *files, str(memory_limit)]


def last_line(stdout: str, prefix: str) -> ChildResult | None:
    """Return the last ``prefix`` line of a child's output as a result, if any."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            return ChildResult.from_json(line[len(prefix):])
    return None


def peak_rss_of(pid: int) -> float | None:
    """Return a live process's peak RSS in MB from ``/proc`` (Linux), or ``None`` where that cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / BYTES_PER_MB
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_parse_child(files: tuple[str, str]) -> ChildResult:
    """Parse both modules in a child and return its result.

    Raises:
        BenchError: The child failed; parsing is the yardstick, so nothing can be measured without it.
    """
    done = subprocess.run(child_command("parse", files, 0), capture_output=True, text=True)
    result = last_line(done.stdout, RESULT)
    if done.returncode != 0 or result is None or result.error:
        detail = result.error if result and result.error else done.stderr.strip()[-2000:]
        raise BenchError(f"diff_speed: parsing {files[0]} and {files[1]} failed: {detail}")
    return result


def run_diff_child(files: tuple[str, str], timeout: float, memory_limit: int) -> tuple[ChildResult | None, str, float]:
    """Parse and diff both modules in a child with a wall-clock and a memory limit.

    Args:
        files: Sides A and B.
        timeout: Seconds before the child is killed.
        memory_limit: Address-space limit in bytes (0 for none).

    Returns:
        ``(result, failure, wall_s)``: the final result, or for an unfinished child its last report (parse time and
        RSS, the RSS raised to the peak read from ``/proc`` when it was killed) or ``None``; the reason it did not
        finish (empty if it did); the child's wall time.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(child_command("diff", files, memory_limit), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = peak_rss_of(proc.pid)
        proc.kill()
        stdout, stderr = proc.communicate()
        partial = last_line(stdout, PROGRESS)
        if partial is not None and peak is not None:
            partial = ChildResult(**{**asdict(partial), "max_rss_mb": max(peak, partial.max_rss_mb)})
        return partial, f"did not finish in {timeout:g} s (killed)", time.perf_counter() - start
    wall = time.perf_counter() - start
    result = last_line(stdout, RESULT)
    if result is not None and result.error:
        reason = result.error
        if reason.startswith("MemoryError"):
            reason = f"did not finish: MemoryError at the {memory_limit / 1e9:g} GB address-space limit"
        return result, reason, wall
    if proc.returncode != 0 or result is None:
        partial = last_line(stdout, PROGRESS)
        return partial, f"did not finish: exit status {proc.returncode}: {stderr.strip()[-500:]}", wall
    return result, "", wall


def measure_pair(name: str, folder: str, manifest: PairManifest, repeats: int, timeout: float,
                 memory_limit: int) -> PairReport:
    """Run the parse children and the diff child for one pair, printing progress to stderr.

    Args:
        name: A key of ``PAIRS``.
        folder: Folder holding the modules.
        manifest: Its manifest.
        repeats: Number of parse children.
        timeout: Wall-clock limit of the diff child in seconds.
        memory_limit: Address-space limit of the diff child in bytes (0 for none).

    Returns:
        The pair's figures.
    """
    side_a, side_b = PAIRS[name]
    files = (str(manifest.path(folder, side_a)), str(manifest.path(folder, side_b)))
    print(f"{side_a} vs {side_b}: parsing ({repeats} children) ...", file=sys.stderr)
    parses = [run_parse_child(files) for _ in range(repeats)]
    best = min(parses, key=lambda r: r.parse_s)
    print(f"{side_a} vs {side_b}: diffing (limit {timeout:g} s) ...", file=sys.stderr)
    diff, failure, wall = run_diff_child(files, timeout, memory_limit)
    return PairReport(name, files, best, tuple(r.parse_s for r in parses), diff, not failure, failure, wall)


# --- the parent -----------------------------------------------------------------------------------------------------


def default_cache(min_mb: float, layers: int | None) -> Path:
    """Return the cache folder used when ``--cache`` is not given (ignored by git)."""
    tag = f"{layers}layers" if layers is not None else f"{min_mb:g}mb"
    return BENCH_DIR / ".cache" / f"transformer_pair_{tag}"


def load_pair(folder: Path, min_mb: float, layers: int | None) -> PairManifest:
    """Return the manifest of a cached folder built for these options, building the modules first if needed.

    The build runs in a child (it needs 8 forced host devices, and JAX's compile memory must not count here).

    Args:
        folder: Cache folder.
        min_mb: Minimum size of the unrolled and sharded modules.
        layers: Fixed layer count, or ``None`` to size by ``min_mb``.

    Returns:
        The manifest of a folder holding all three variants.

    Raises:
        BenchError: The build failed.
    """
    manifest = read_manifest(folder)
    fits = manifest is not None and set(manifest.modules) >= {v for pair in PAIRS.values() for v in pair} and (
        manifest.n_layers == layers if layers is not None else manifest.min_mb == min_mb) and (
        manifest.jax_version == importlib.metadata.version("jax"))  # another jax writes other modules: rebuild
    if manifest is not None and fits:
        return manifest
    print(f"building the transformer variants into {folder} (about a minute for 15 MB) ...", file=sys.stderr)
    try:
        return build_pair_in_child(folder, min_mb, layers)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        raise BenchError(f"diff_speed: building the modules failed ({exc}); see the messages above") from exc


def code_state() -> str:
    """Say which xlainspect code was measured: the commit and any uncommitted changes under ``xlainspect/``."""
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h %cI"], cwd=REPO_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "xlainspect"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f", uncommitted changes in {', '.join(changed)}" if changed else "")


def default_memory_limit() -> int:
    """Return the diff child's default address-space limit in bytes: 8 GB, or 3/4 of physical memory if less.

    A diff that meets the target needs a few hundred MB here; one that needs gigabytes has already failed, and letting
    it grow until the machine swaps would only stall everyone else on it.
    """
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return DEFAULT_MEMORY_LIMIT
    return min(DEFAULT_MEMORY_LIMIT, int(physical * 0.75))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-mb", type=float, default=15.0,
                        help="minimum size of the unrolled and sharded modules in MB (default 15)")
    parser.add_argument("--layers", type=int, help="build with this many layers instead of sizing by --min-mb")
    parser.add_argument("--cache", help="module folder (default: bench/.cache/transformer_pair_<size>)")
    parser.add_argument("--repeats", type=int, default=3, help="parse children per pair; the best time counts")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a diff child may run (default 600)")
    parser.add_argument("--max-memory-gb", type=float,
                        help="address-space limit of a diff child in GB (default: 8, or 3/4 of physical memory if less; "
                             "0: none)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.layers is not None and args.layers < 2:
        parser.error("--layers must be at least 2 (XLA removes a scan loop of one trip)")
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Build or load the modules, measure both pairs and judge the targets.

    Args:
        args: Parsed command-line options.

    Returns:
        All figures, ready for printing or JSON.
    """
    folder = Path(args.cache) if args.cache else default_cache(args.min_mb, args.layers)
    manifest = load_pair(folder, args.min_mb, args.layers)
    memory_limit = default_memory_limit() if args.max_memory_gb is None else int(args.max_memory_gb * 1e9)
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    code = code_state()
    pairs = {name: measure_pair(name, str(folder), manifest, args.repeats, args.timeout, memory_limit)
             for name in PAIRS}
    sharded, scan = pairs["sharded"], pairs["scan"]
    targets = {
        f"unrolled vs sharded: diff/parse <= {TARGET_TIME_RATIO:g}":
            sharded.time_ratio is not None and sharded.time_ratio <= TARGET_TIME_RATIO,
        f"unrolled vs sharded: diff RSS / parse RSS <= {TARGET_RSS_RATIO:g}":
            sharded.finished and sharded.rss_ratio is not None and sharded.rss_ratio <= TARGET_RSS_RATIO,
        f"unrolled vs scan: unrolled kernels matched >= {TARGET_LOOP_MATCHED:.0%}":
            scan.matched_fraction_a is not None and scan.matched_fraction_a >= TARGET_LOOP_MATCHED,
    }
    return {
        "started": started,
        "code": code,
        "python": sys.version.split()[0],
        "folder": str(folder),
        "manifest": manifest.to_json(),
        "memory_limit_gb": memory_limit / 1e9,
        "timeout_s": args.timeout,
        "pairs": {name: report.to_json() for name, report in pairs.items()},
        "targets": targets,
        "passed": all(targets.values()),
    }


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def print_report(r: dict[str, Any]) -> None:
    """Print the figures for a human reader.

    Args:
        r: Figures from ``run_benchmark``.
    """
    m = r["manifest"]
    sizes = ", ".join(f"{info['file']} {info['size_mb']:.2f} MB" for info in m["modules"].values())
    print(f"run {r['started']} on {r['code']}")
    print(f"modules: {r['folder']}: {m['n_layers']} layers (jax {m['jax_version']}), {sizes}")
    header = (f"{'pair':<20} {'parse s':>8} {'diff s':>8} {'diff/parse':>10} {'parse RSS':>10} {'diff RSS':>10} "
              f"{'RSS ratio':>9} {'kernels A':>9} {'kernels B':>9} {'matched A':>9} {'matched B':>9} {'A matched':>9}")
    print(header)
    for name, p in r["pairs"].items():
        d = p["diff"] or {}
        kernels, matched = d.get("kernels") or (None, None), d.get("matched") or (None, None)
        at_least = "+" if not p["finished"] and d else ""  # a killed child's peak is a lower bound
        rss = _fmt(d.get("max_rss_mb"), ".0f") + at_least
        print(f"{' vs '.join(PAIRS[name]):<20} {p['parse']['parse_s']:>8.2f} "
              f"{_fmt(p['diff_s'], '.2f', 'DNF'):>8} {_fmt(p['time_ratio'], '.2f', 'DNF'):>10} "
              f"{p['parse']['max_rss_mb']:>7.0f} MB {rss:>7} MB {_fmt(p['rss_ratio'], '.2f') + at_least:>9} "
              f"{_fmt(kernels[0], ',d'):>9} {_fmt(kernels[1], ',d'):>9} {_fmt(matched[0], ',d'):>9} "
              f"{_fmt(matched[1], ',d'):>9} {_fmt(p['matched_fraction_a'], '.1%'):>9}")
    for name, p in r["pairs"].items():
        d = p["diff"] or {}
        label = " vs ".join(PAIRS[name])
        runs = ", ".join(f"{s:.2f}" for s in p["parse_runs_s"])
        print(f"{label}: parse runs {runs} s; diff child {p['diff_wall_s']:.1f} s wall"
              + (f" (its parse {d['parse_s']:.2f} s, census {d['census_s']:.2f} s, diff_census "
                 f"{d['diff_census_s']:.2f} s)" if p["finished"] else ""))
        if d.get("launches"):
            print(f"  launches per step: A {d['launches'][0]:,}, B {d['launches'][1]:,}; {d['pairs']:,} pairs")
        if d.get("verdict"):
            print(f"  verdict: {d['verdict']}")
        if p["failure"]:
            print(f"  {p['failure']}" + (" (RSS: peak before it stopped)" if d else ""))
    for target, met in r["targets"].items():
        print(f"target {target}: {'PASS' if met else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and report it.

    Args:
        argv: Command-line arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        1 if ``--check`` was given and a target was missed, 2 if nothing could be measured, else 0.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        return child_main(argv[1:])
    args = parse_args(argv)
    try:
        results = run_benchmark(args)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    return 1 if args.check and not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
