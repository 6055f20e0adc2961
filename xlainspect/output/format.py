"""All rendering of results as text tables and JSON, so the CLI only chooses what to print."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from xlainspect.analysis.stats import ModuleStats

if TYPE_CHECKING:
    from xlainspect.analysis.census import Kernel
    from xlainspect.analysis.diff import CensusDiff
    from xlainspect.analysis.passes import Divergence, PassStep
    from xlainspect.measure.records import FrameworkMemory, MaxBatch, PeakCheck
    from xlainspect.measure.timing import TimingReport


def _width(cells: Iterable[str], least: int = 0) -> int:
    """A column's width: its longest cell, and at least ``least`` (the width the table had for short names), so a
    long TF kernel or module name widens its column instead of pushing the columns after it out of line."""
    return max([least, *map(len, cells)])


def stats_json(stats: Iterable[ModuleStats]) -> str:
    """One JSON array with one object per module, in input order."""
    return json.dumps([item.to_json() for item in stats], indent=2)


def _counts(counts: Mapping[str, int], limit: int | None = None) -> str:
    items = list(counts.items())
    shown = items if limit is None else items[:limit]
    text = ", ".join(f"{key or '(none)'} {value}" for key, value in shown)
    if limit is not None and len(items) > limit:
        text += f", ... ({len(items) - limit} more)"
    return text or "none"


def stats_text(stats: Iterable[ModuleStats], top_opcodes: int = 12) -> str:
    """A block per module: sizes, fusions by kind, custom-calls by target, the most frequent opcodes."""
    blocks = []
    for item in stats:
        blocks.append("\n".join([
            f"{item.file} [{item.index}] {item.module}",
            f"  computations  {item.computations}",
            f"  instructions  {item.instructions}",
            f"  fusions       {item.fusions}" + (f" ({_counts(item.fusions_by_kind)})" if item.fusions else ""),
            f"  custom-calls  {sum(item.custom_calls.values())}"
            + (f" ({_counts(item.custom_calls)})" if item.custom_calls else ""),
            f"  opcodes       {_counts(item.opcodes, top_opcodes)}",
        ]))
    return "\n\n".join(blocks)


def _program_row(program) -> dict:
    return {
        "name": program.name,
        "description": program.description,
        "default_batch_size": program.default_batch_size,
        "shapes": {name: list(shape) for name, shape in program.shapes(program.default_batch_size).items()},
        "parameters": dict(program.hyperparameters),
        "outputs": list(program.output_names),
    }


def programs_json(programs: Iterable) -> str:
    """The synthetic programs as one JSON array."""
    return json.dumps([_program_row(program) for program in programs], indent=2)


def programs_text(programs: Iterable) -> str:
    """One block per program: name and description, then inputs with shapes and the hyperparameters."""
    rows = [_program_row(program) for program in programs]
    width = _width((row["name"] for row in rows), 12)
    blocks = []
    for row in rows:
        shapes = ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}" for name, shape in row["shapes"].items())
        lines = [f"{row['name']:<{width}} {row['description']}", f"{'':<{width}} inputs: {shapes}"]
        if row["default_batch_size"] is not None:
            lines.append(f"{'':<{width}} batch size: {row['default_batch_size']} (--batch-size)")
        if row["parameters"]:
            lines.append(f"{'':<{width}} parameters: " + ", ".join(f"{k}={v}" for k, v in row["parameters"].items()))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _size(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)


def _bytes(value: int) -> str:
    """Memory sizes in binary units, as devices and allocators count them."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value}B"


def diff_text(diff: CensusDiff, label_a: str = "A", label_b: str = "B", path_a: str = "", path_b: str = "",
              times_a: Mapping[str, float] | None = None, times_b: Mapping[str, float] | None = None) -> str:
    """Two censuses side by side with deltas, matched and unmatched kernels with their source ops, and a verdict.

    With per-kernel times (µs per step, by kernel name), matched kernels show both times and the delta, unmatched
    kernels their time, and a summary says how much of the difference the matched and unmatched kernels carry.
    """
    from xlainspect.analysis.diff import count_delta, fused_op_summary, split_time

    timed = times_a is not None and times_b is not None
    times_a = times_a or {}
    times_b = times_b or {}

    def us(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}us"

    a, b = diff.a, diff.b
    def named(label: str, path: str) -> str:
        return label if not path or path == label else f"{label}: {path}"

    lines = [f"A = {named(label_a, path_a)} ({a.module}{'; ' + diff.compiler_a if diff.compiler_a else ''})",
             f"B = {named(label_b, path_b)} ({b.module}{'; ' + diff.compiler_b if diff.compiler_b else ''})", ""]

    counts: list[tuple[str, str, str, str]] = []  # label, A, B, B-A

    def row(name: str, x: int, y: int, size: bool = False) -> None:
        show = _size if size else str
        delta = y - x
        counts.append((name, show(x), show(y), ('+' if delta > 0 else '') + show(delta) if delta else ''))

    row("kernels", a.kernel_count, b.kernel_count)
    row("launches (loops unrolled)", a.launches, b.launches)
    row("fusions", a.fusion_count, b.fusion_count)
    for key, x, y in count_delta(a.fusions_by_kind, b.fusions_by_kind):
        row("  " + key, x, y)
    row("custom-calls", sum(a.custom_calls.values()), sum(b.custom_calls.values()))
    for key, x, y in count_delta(a.custom_calls, b.custom_calls):
        row("  " + key, x, y)
    row("unfused ops", sum(a.unfused_ops.values()), sum(b.unfused_ops.values()))
    for key, x, y in count_delta(a.unfused_ops, b.unfused_ops):
        row("  " + key, x, y)
    row("bytes read", a.bytes_read, b.bytes_read, size=True)
    row("bytes written", a.bytes_written, b.bytes_written, size=True)
    row("FLOPs (dots, convs)", a.flops, b.flops, size=True)
    label = _width((name + "  " for name, *_ in counts), 28)  # two spaces keep a long label off the numbers
    number = _width((cell + " " for _, *cells in counts for cell in cells), 10)
    lines.append(f"  {'':<{label}}{'A':>{number}}{'B':>{number}}{'B-A':>{number}}")
    lines += [f"  {name:<{label}}{x:>{number}}{y:>{number}}{delta:>{number}}" for name, x, y, delta in counts]
    lines.append("")
    lines.append(f"matched kernels ({len(diff.matched)} pairs): = identical, L same math with a different layout, "
                 "~ similar (score); xN runs N times per step")
    grouped = {id(kernel): (kernel, partners, side) for kernel, partners, side in diff.groups()}
    partner_a = {pair.a.name: pair.b.name for pair in diff.matched}
    partner_b = {pair.b.name: pair.a.name for pair in diff.matched}
    shown: set[int] = set()

    def trips(kernel: Kernel) -> str:
        return f" x{kernel.trips}" if kernel.trips != 1 else ""

    pairs: list[str | tuple[str, str, str, str, str]] = []  # a group's line, or mark, A, B, times and summary
    for pair in diff.matched:
        mark = {"identical": "=", "layout": "L"}.get(pair.relation, f"~ {pair.score:.2f}")
        group = grouped.get(id(pair.a)) or grouped.get(id(pair.b))
        if group is not None:
            kernel, partners, side = group
            if id(kernel) in shown:
                continue
            shown.add(id(kernel))
            names = _name_range([k.name for k in partners])
            own = [p for p in diff.matched if (p.a if side == "a" else p.b) is kernel]
            launches = sum(p.launches_a if side == "a" else p.launches_b for p in own)
            text = f"{kernel.name}{trips(kernel)} = {len(partners)} kernels {names}"
            if any(p.stacked for p in own):
                text += " (stacked: one launch does the work of several)"
            left = kernel.trips - launches
            if left:
                text += f" ({_launch_count(left)} of its launches unmatched)"
            label = "A" if side == "a" else "B"
            pairs.append(f"  {mark:<7}{label}: {text}: {fused_op_summary(kernel)}")
            continue
        timing = ""
        if timed:
            a_us, b_us = times_a.get(pair.a.name), times_b.get(pair.b.name)
            delta = "" if a_us is None or b_us is None else f" ({b_us - a_us:+.1f}us)"
            timing = f"{us(a_us):>10} {us(b_us):>10}{delta:<12} "
        name_a, name_b = pair.a.name + trips(pair.a), pair.b.name + trips(pair.b)
        if pair.a.trips > pair.launches_a:
            name_a += f" ({_launch_count(pair.a.trips - pair.launches_a)} of its launches unmatched)"
        if pair.b.trips > pair.launches_b:
            name_b += f" ({_launch_count(pair.b.trips - pair.launches_b)} of its launches unmatched)"
        pairs.append((mark, name_a, name_b, timing, fused_op_summary(pair.a)))
    width_a = _width((entry[1] for entry in pairs if isinstance(entry, tuple)), 34)
    width_b = _width((entry[2] for entry in pairs if isinstance(entry, tuple)), 34)
    for entry in pairs:
        if isinstance(entry, str):
            lines.append(entry)
        else:
            mark, name_a, name_b, timing, summary = entry
            lines.append(f"  {mark:<7}{name_a:<{width_a}} {name_b:<{width_b}} {timing}{summary}")
    width = _width((kernel.name for kernel in (*diff.only_a, *diff.only_b)), 34)
    for title, kernels in ((f"only in A ({len(diff.only_a)})", diff.only_a), (f"only in B ({len(diff.only_b)})",
                                                                               diff.only_b)):
        lines.append("")
        lines.append(title + ":")
        side_times = times_a if kernels is diff.only_a else times_b
        for kernel in kernels:
            timing = f" {us(side_times.get(kernel.name))}" if timed else ""
            lines.append(f"  {kernel.name:<{width}} {kernel.kind}{trips(kernel)}{timing}: {fused_op_summary(kernel)}")
            where = _where(kernel, partner_a if kernels is diff.only_a else partner_b,
                           "B" if kernels is diff.only_a else "A")
            if where:
                lines.append(f"      at {where}")
            for source in kernel.sources[:3]:
                lines.append(f"      from {source}")
            if len(kernel.sources) > 3:
                lines.append(f"      ... and {len(kernel.sources) - 3} more source ops")
    if timed:
        split = split_time(diff, times_a, times_b)
        lines += ["", f"kernel time per step: A {split.total_a_us:.1f}us, B {split.total_b_us:.1f}us "
                      f"(B-A {split.total_b_us - split.total_a_us:+.1f}us): matched kernels "
                      f"{split.matched_b_us - split.matched_a_us:+.1f}us, kernels only in A {split.only_a_us:.1f}us, "
                      f"only in B {split.only_b_us:.1f}us"]
    lines.append("")
    lines.append("verdict: " + diff.verdict())
    return "\n".join(lines)


def diff_json(diff: CensusDiff, times_a: Mapping[str, float] | None = None,
              times_b: Mapping[str, float] | None = None, divergence: Divergence | None = None,
              with_passes: bool = False) -> str:
    """The diff as one JSON object; with times, per-kernel times and their split; with passes, ``first_divergence``
    (null when the two sides' fusions never differ)."""
    from xlainspect.analysis.diff import timed_json

    data = timed_json(diff, dict(times_a), dict(times_b or {})) if times_a is not None else diff.to_json()
    if with_passes:
        data["first_divergence"] = None if divergence is None else {
            "pass": divergence.pass_name, "pipeline": divergence.pipeline, "only_in": divergence.only_in,
            "description": divergence.description}
    return json.dumps(data, indent=2)


def divergence_text(divergence: Divergence | None) -> str:
    """The line ``diff --passes`` adds: the first pass after which the two sides' fusions differ, or that none does."""
    return "first divergence: " + (divergence.description if divergence is not None else
                                   "none: the two sides' fusions never differ after any pass")


def _launch_count(value: object) -> str:
    """A number of launches, whole or (for stacked kernels) with one decimal."""
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number == int(number) else f"{number:.1f}"


def _name_range(names: Sequence[str]) -> str:
    """``fusion.301``, ``fusion.301, fusion.302`` or ``fusion.301 ... fusion.2277``: names of a group, shortly."""
    return ", ".join(names) if len(names) <= 2 else f"{names[0]} ... {names[-1]}"


def _where(kernel: Kernel, partner: Mapping[str, str], other: str) -> str:
    """Where an unmatched kernel sits, by the first kernel it reads that is paired: "after X (paired with Y in B)"."""
    for producer in kernel.producers:
        if producer in partner:
            return f"after {producer} (paired with {partner[producer]} in {other})"
    return ""


def timeline_text(steps: Sequence[PassStep], missing: Sequence[int] = ()) -> str:
    """One line per pass dump: step, pass, instruction and fusion counts, marking where fusion counts change."""
    width = _width((step.label + " " for step in steps), 58)
    lines = [f"{'step':>5}  {'pass':<{width}}{'instrs':>8}{'fusions':>9}  by kind"]
    previous = None
    for step in steps:
        changed = "*" if previous is not None and step.fusions_by_kind != previous.fusions_by_kind else " "
        kinds = ", ".join(f"{kind} {count}" for kind, count in step.fusions_by_kind.items())
        lines.append(f"{step.index:>5}{changed} {step.label:<{width}}{step.instructions:>8}{step.fusions:>9}  {kinds}")
        previous = step
    if missing:
        lines.append(f"missing steps {', '.join(map(str, missing))}: XLA could not write them (file name too long?)")
    lines.append("* fusion counts changed in this pass")
    return "\n".join(lines)


def timeline_json(steps: Sequence[PassStep]) -> str:
    """The timeline as one JSON array."""
    return json.dumps([{"index": s.index, "pipeline": s.pipeline, "pass": s.pass_name, "file": s.file,
                        "instructions": s.instructions, "computations": s.computations,
                        "fusions": {"total": s.fusions, "by_kind": s.fusions_by_kind}} for s in steps], indent=2)


def _rate(value: float | None, unit: str) -> str:
    return "" if value is None else _size(int(value)) + unit


def timing_json(report: TimingReport) -> str:
    """The timing report as one JSON object (what ``diff --timing`` and ``render --timing`` read back)."""
    return json.dumps(report.to_json(), indent=2)


def timing_text(report: TimingReport, top_kernels: int = 12) -> str:
    """Both frameworks' step times side by side, their ratio, and the most expensive kernels of each."""
    batch = f", batch {report.batch_size}" if report.batch_size is not None else ""
    build = "" if report.variant == "full" else f", ablation build {report.variant}"
    labels = {name: f"{name} {timing.framework_version}" for name, timing in report.frameworks.items()}
    width = max([len("framework"), *map(len, labels.values())]) + 1
    lines = [f"{report.program}{batch}{build}: steady-state step time after warm-up (ms)", "",
             f"  {'framework':<{width}}{'compile s':>11}{'median':>10}{'min':>10}{'max':>10}{'IQR':>20}{'runs':>6}"]
    for name, timing in report.frameworks.items():
        q1, q3 = timing.iqr_ms
        lines.append(f"  {labels[name]:<{width}}{timing.compile_s:>11.3f}{timing.median_ms:>10.3f}"
                     f"{min(timing.runs_ms):>10.3f}{max(timing.runs_ms):>10.3f}{f'{q1:.3f}-{q3:.3f}':>20}"
                     f"{len(timing.runs_ms):>6}")
    if len(report.frameworks) == 2:
        a, b = report.frameworks.values()
        lines.append(f"  median ratio tf/jax: {b.median_ms / a.median_ms:.2f}" if "jax" in report.frameworks else "")
    for name, timing in report.frameworks.items():
        if timing.note:
            lines.append(f"  {name}: {timing.note}")
        if not timing.kernels:
            continue
        covered = sum(kernel.share for kernel in timing.kernels)
        op = _width((kernel.hlo_op + " " for kernel in timing.kernels[:top_kernels]), 36)
        lines += ["", f"{name}: time per HLO instruction of {timing.module_name} (profiled; {covered:.0%} of the step)",
                  f"  {'hlo_op':<{op}}{'calls':>7}{'total us':>11}{'mean us':>10}{'share':>8}{'FLOP/s':>10}{'B/s':>10}"]
        for kernel in timing.kernels[:top_kernels]:
            lines.append(f"  {kernel.hlo_op:<{op}}{kernel.calls:>7}{kernel.total_us:>11.1f}{kernel.mean_us:>10.1f}"
                         f"{kernel.share:>8.1%}{_rate(kernel.flops_per_s, ''):>10}{_rate(kernel.bytes_per_s, ''):>10}")
        if len(timing.kernels) > top_kernels:
            lines.append(f"  ... {len(timing.kernels) - top_kernels} more")
    for framework, message in report.failures:
        lines.append(f"failed: {message}")  # the message names the framework
    return "\n".join(line for line in lines if line is not None)


def bench_text(rows: Sequence, factors: Mapping[tuple[str, str, int], float]) -> str:
    """Median step times per model, framework and batch size, SGD and DP-SGD, with the DP overhead factor."""
    model_width = _width((r.model + " " for r in rows), 7)
    framework_width = _width((r.framework + " " for r in rows), 11)
    lines = [f"  {'model':<{model_width}}{'framework':<{framework_width}}{'batch':>6}{'SGD ms':>10}"
             + f"{'DP-SGD ms':>11}{'DP/SGD':>8}"]
    medians = {(r.model, r.framework, r.batch_size, r.private): r.median_ms for r in rows}
    for model, framework, batch in sorted({(r.model, r.framework, r.batch_size) for r in rows}):
        sgd = medians.get((model, framework, batch, False))
        dp = medians.get((model, framework, batch, True))
        factor = factors.get((model, framework, batch))
        lines.append(f"  {model:<{model_width}}{framework:<{framework_width}}{batch:>6}{'' if sgd is None else f'{sgd:.3f}':>10}"
                     f"{'' if dp is None else f'{dp:.3f}':>11}{'' if factor is None else f'{factor:.2f}x':>8}")
    return "\n".join(lines)


def ablation_text(rows: Sequence, slowdowns: Mapping[tuple[str, str, str], float]) -> str:
    """Median step time of every ablation build, and how many times slower it is than the full build."""
    model_width = _width((r.model + " " for r in rows), 7)
    framework_width = _width((r.framework + " " for r in rows), 11)
    build_width = _width((r.label + " " for r in rows), 34)
    lines = [f"  {'model':<{model_width}}{'framework':<{framework_width}}{'build':<{build_width}}{'batch':>6}"
             + f"{'median ms':>11}{'compile s':>11}{'vs full':>9}"]
    for r in rows:
        slowdown = slowdowns.get((r.model, r.framework, r.build))
        lines.append(f"  {r.model:<{model_width}}{r.framework:<{framework_width}}{r.label:<{build_width}}{r.batch_size:>6}{r.median_ms:>11.3f}"
                     f"{r.compile_s:>11.2f}{'' if slowdown is None else f'{slowdown:.1f}x':>9}")
    return "\n".join(lines)


def memory_text(results: Sequence, failures: Sequence[str]) -> str:
    """Each framework's compile-time bytes, the largest temporaries and who owns them, per-example gradients."""
    lines = []
    for r in results:
        f = r.figures
        batch = f", batch {f.batch_size}" if f.batch_size is not None else ""
        lines += [f"{r.framework}{batch}: {r.module} ({r.route}; device {r.device})",
                  f"  arguments {_bytes(f.argument)}, outputs {_bytes(f.output)}, aliased {_bytes(f.alias)}, "
                  f"temporaries {_bytes(f.temp)}, generated code {_bytes(f.generated_code)}",
                  f"  peak (arguments + outputs - aliased + temporaries): {_bytes(f.peak)}"]
        if r.per_example_bytes is not None:
            share = r.per_example_bytes / f.temp if f.temp else 0.0
            lines.append(f"  per-example weight gradients: {_bytes(r.per_example_bytes)} of the temporaries ({share:.0%}) "
                         + ("are materialised" if r.per_example_bytes else "- none materialised: XLA fused them away"))
        if r.largest:
            lines.append("  largest temporaries:")
            shape = _width((b.shape for b in r.largest), 24)
            instruction = _width((b.instruction for b in r.largest), 36)
            for b in r.largest:
                mark = "  [per-example gradient]" if b.per_example_gradient else ""
                lines.append(f"    {_bytes(b.size):>9}  {b.shape:<{shape}} {b.instruction:<{instruction}} "
                             f"{b.op_name[:70]}{mark}".rstrip())
        lines.append("")
    lines += [f"failed: {message}" for message in failures]
    return "\n".join(lines).rstrip()


def memory_json(program: str, results: Sequence[FrameworkMemory], failures: Sequence[str]) -> str:
    """Each framework's memory figures (with the peak) as one JSON object, and the failures."""
    from xlainspect.measure.records import MemoryRecord

    return json.dumps(MemoryRecord(program, tuple(results), tuple(failures)).to_json(), indent=2)


def max_batch_json(program: str, limit: int, results: Sequence[MaxBatch], failures: Sequence[str]) -> str:
    """The largest batch per framework, with its bytes-against-batch curve, as one JSON object."""
    from xlainspect.measure.records import MaxBatchRecord

    return json.dumps(MaxBatchRecord(program, limit, tuple(results), tuple(failures)).to_json(), indent=2)


def peak_check_json(checks: Sequence[PeakCheck]) -> str:
    """Predicted against measured resident memory per batch size, as one JSON array."""
    return json.dumps([check.to_json() for check in checks], indent=2)


def max_batch_text(results: Sequence) -> str:
    """The largest batch per framework, with the peak at that batch and at the first batch that does not fit."""
    framework = _width((r.framework + " " for r in results), 10)
    lines = [f"  {'framework':<{framework}}{'largest batch':>15}{'peak there':>13}{'limit':>12}  how"]
    for r in results:
        fitting = [p for p in r.curve if p.batch_size == r.max_batch]
        peak = _bytes(fitting[0].peak) if fitting else ""
        exact = "" if r.exact else " (search stopped early: a lower bound)"
        if r.capped:
            exact = " (still fits at the 32-bit indexing limit on the batch: a lower bound)"
        lines.append(f"  {r.framework:<{framework}}{r.max_batch:>15,}{peak:>13}{_bytes(r.limit):>12}  {r.route}{exact}")
    return "\n".join(lines)


def peak_check_text(checks: Sequence) -> str:
    """Predicted against measured resident memory per batch size."""
    framework = _width((c.framework + " " for c in checks), 10)
    lines = [f"  {'framework':<{framework}}{'batch':>7}{'predicted':>12}{'measured':>12}{'error':>8}"]
    for c in checks:
        lines.append(f"  {c.framework:<{framework}}{c.batch_size:>7}{_bytes(c.predicted):>12}{_bytes(c.measured):>12}"
                     f"{c.error:>+8.0%}")
    lines.append("  predicted: temporaries + outputs - aliased (XLA's buffer assignment); measured: the peak resident "
                 "memory one warm step added (VmHWM)")
    return "\n".join(lines)
