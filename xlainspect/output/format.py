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
    from xlainspect.hlo.files import ModuleListing
    from xlainspect.measure.records import (
        AblationRow,
        BenchRow,
        FrameworkMemory,
        KernelTime,
        MaxBatch,
        PeakCheck,
        TimingSummary,
    )
    from xlainspect.measure.spread import Difference, Spread
    from xlainspect.measure.timing import TimingReport
    from xlainspect.runners.command_manifest import CommandManifest


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


def module_list_json(listings: Iterable[ModuleListing]) -> str:
    """``stats --list --json``: one object per module, with the path it is in and its position there."""
    return json.dumps([{"path": str(listing.path), "position": position, "number": module.number,
                        "name": module.name, "instructions": module.instructions, "stages": list(module.stages),
                        "main": module is listing.main, "helper": module.helper}
                       for listing in listings for position, module in enumerate(listing.modules)], indent=2)


def module_list_text(listings: Iterable[ModuleListing]) -> str:
    """``stats --list``: per path, a line per module: the position ``--module`` takes, XLA's module number (the
    compile order), instructions, stages, a mark, and the name last so a long TF name widens nothing."""
    blocks = []
    for listing in listings:
        rows = [(str(position), f"{module.number:04d}", str(module.instructions), "+".join(module.stages) or "-",
                 "main" if module is listing.main else "helper" if module.helper else "", module.name)
                for position, module in enumerate(listing.modules)]
        header = ("#", "number", "instructions", "stages", "", "name")
        widths = [_width((row[i] for row in [header, *rows])) for i in range(5)]
        lines = [f"{listing.path}: {len(rows)} module(s); --module takes the position (#) or a regular expression "
                 "on the name"]
        for row in [header, *rows]:
            cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                     row[3].ljust(widths[3]), row[4].ljust(widths[4]), row[5]]
            lines.append("  " + "  ".join(cells))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _program_row(program) -> dict:
    return {
        "name": program.name,
        "description": program.description,
        "default_batch_size": program.default_batch_size,
        "shapes": {name: list(shape) for name, shape in program.shapes(program.default_batch_size).items()},
        # Element types in the default float32 build: labels and token ids stay int32 in a float64 build too.
        "dtypes": {name: dtype for name, (_, dtype) in program.input_types(program.default_batch_size).items()},
        "parameter_count": program.parameter_count(),
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
        # Integer inputs (labels, token ids) say so; the rest take the float type asked for.
        shapes = ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}"
                           + (f" {row['dtypes'][name]}" if not row["dtypes"][name].startswith("float") else "")
                           for name, shape in row["shapes"].items())
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


def _plus_minus(value: float, spread: Spread | None, digits: int, unit: str = "") -> str:
    """``12.3±0.4us``: a value and half its interquartile range; the value alone when the spread is unknown."""
    return f"{value:.{digits}f}" + (f"±{spread.half_iqr:.{digits}f}" if spread is not None else "") + unit


def _kernel_us(kernel: KernelTime | None) -> str:
    return "" if kernel is None else _plus_minus(kernel.total_us, kernel.spread, 1, "us")


def _kernel_difference(a: KernelTime | None, b: KernelTime | None) -> Difference | None:
    from xlainspect.measure.spread import difference

    return None if a is None or b is None else difference(a.total_us, a.spread, b.total_us, b.spread)


def _step_difference(a: TimingSummary, b: TimingSummary) -> Difference:
    from xlainspect.measure.spread import difference

    return difference(a.median_ms, a.spread, b.median_ms, b.spread)


SPREAD_NOTE = ("± is half the interquartile range over the runs (per-kernel: of each run's total); a difference no "
               "larger than the two ± together reads 'within noise'")


def diff_text(diff: CensusDiff, label_a: str = "A", label_b: str = "B", path_a: str = "", path_b: str = "",
              timing_a: TimingSummary | None = None, timing_b: TimingSummary | None = None) -> str:
    """Two censuses side by side with deltas, matched and unmatched kernels with their source ops, and a verdict.

    With each side's timing (``time --json``, checked against its dump), matched kernels show both times with their
    spread and the delta, or "within noise" when the delta is no larger than the two spreads; unmatched kernels show
    their time; two lines compare the step times and say how much of the kernel time the matched and unmatched
    kernels carry.
    """
    from xlainspect.analysis.diff import count_delta, fused_op_summary, split_time

    timed = timing_a is not None and timing_b is not None
    kernels_a = {k.hlo_op: k for k in timing_a.kernels} if timing_a is not None else {}
    kernels_b = {k.hlo_op: k for k in timing_b.kernels} if timing_b is not None else {}

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
    row("FLOPs (contractions)", a.flops, b.flops, size=True)
    label = _width((name + "  " for name, *_ in counts), 28)  # two spaces keep a long label off the numbers
    number = _width((cell + " " for _, *cells in counts for cell in cells), 10)
    lines.append(f"  {'':<{label}}{'A':>{number}}{'B':>{number}}{'B-A':>{number}}")
    lines += [f"  {name:<{label}}{x:>{number}}{y:>{number}}{delta:>{number}}" for name, x, y, delta in counts]
    for side, census_ in (("A", a), ("B", b)):
        if census_.unknown_loops:
            lines.append(f"  {side}: {census_.unknown_loops} kernels sit in loops whose trip count is unknown (bounded "
                         "by data); each counted once, so its launches, bytes and FLOPs are lower bounds")
    lines.append("")
    lines.append(f"matched kernels ({len(diff.matched)} pairs): = identical, L same math with a different layout, "
                 "~ similar (score); xN runs N times per step")
    if timed:
        lines.append(f"times: µs per step, A, B and B-A; {SPREAD_NOTE}")
    grouped = {id(kernel): (kernel, partners, side) for kernel, partners, side in diff.groups()}
    partner_a = {pair.a.name: pair.b.name for pair in diff.matched}
    partner_b = {pair.b.name: pair.a.name for pair in diff.matched}
    shown: set[int] = set()

    def trips(kernel: Kernel) -> str:
        return f" x{kernel.trips}" if kernel.trips != 1 else ""

    pairs: list[str | tuple[str, str, str, tuple[str, str, str], str]] = []  # a group's line, or mark, A, B, times
    # (A, B, delta) and summary
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
        timing = ("", "", "")
        if timed:
            a_kernel, b_kernel = kernels_a.get(pair.a.name), kernels_b.get(pair.b.name)
            change = _kernel_difference(a_kernel, b_kernel)
            timing = (_kernel_us(a_kernel), _kernel_us(b_kernel), "" if change is None else change.text("us"))
        name_a, name_b = pair.a.name + trips(pair.a), pair.b.name + trips(pair.b)
        if pair.a.trips > pair.launches_a:
            name_a += f" ({_launch_count(pair.a.trips - pair.launches_a)} of its launches unmatched)"
        if pair.b.trips > pair.launches_b:
            name_b += f" ({_launch_count(pair.b.trips - pair.launches_b)} of its launches unmatched)"
        pairs.append((mark, name_a, name_b, timing, fused_op_summary(pair.a)))
    width_a = _width((entry[1] for entry in pairs if isinstance(entry, tuple)), 34)
    width_b = _width((entry[2] for entry in pairs if isinstance(entry, tuple)), 34)
    timings = [entry[3] for entry in pairs if isinstance(entry, tuple)]
    time_widths = [_width((cells[i] for cells in timings), least) for i, least in enumerate((9, 9, 8))]
    for entry in pairs:
        if isinstance(entry, str):
            lines.append(entry)
        else:
            mark, name_a, name_b, (time_a, time_b, delta), summary = entry
            times = (f"{time_a:>{time_widths[0]}} {time_b:>{time_widths[1]}} {delta:<{time_widths[2]}} "
                     if timed else "")
            lines.append(f"  {mark:<7}{name_a:<{width_a}} {name_b:<{width_b}} {times}{summary}")
    width = _width((kernel.name for kernel in (*diff.only_a, *diff.only_b)), 34)
    for title, kernels in ((f"only in A ({len(diff.only_a)})", diff.only_a), (f"only in B ({len(diff.only_b)})",
                                                                               diff.only_b)):
        lines.append("")
        lines.append(title + ":")
        side_kernels = kernels_a if kernels is diff.only_a else kernels_b
        for kernel in kernels:
            timing = f" {_kernel_us(side_kernels.get(kernel.name))}" if timed else ""
            lines.append(f"  {kernel.name:<{width}} {kernel.kind}{trips(kernel)}{timing}: {fused_op_summary(kernel)}")
            where = _where(kernel, partner_a if kernels is diff.only_a else partner_b,
                           "B" if kernels is diff.only_a else "A")
            if where:
                lines.append(f"      at {where}")
            for source in kernel.sources[:3]:
                lines.append(f"      from {source}")
            if len(kernel.sources) > 3:
                lines.append(f"      ... and {len(kernel.sources) - 3} more source ops")
    if timing_a is not None and timing_b is not None:
        times_a = {name: k.total_us for name, k in kernels_a.items()}
        times_b = {name: k.total_us for name, k in kernels_b.items()}
        split = split_time(diff, times_a, times_b)
        step = _step_difference(timing_a, timing_b)
        lines += ["", (f"step time (median): A {_plus_minus(timing_a.median_ms, timing_a.spread, 3, 'ms')}, "
                      f"B {_plus_minus(timing_b.median_ms, timing_b.spread, 3, 'ms')}, B-A {step.text('ms', 3)}"),
                  (f"kernel time per step: A {split.total_a_us:.1f}us, B {split.total_b_us:.1f}us "
                      f"(B-A {split.total_b_us - split.total_a_us:+.1f}us): matched kernels "
                      f"{split.matched_b_us - split.matched_a_us:+.1f}us, kernels only in A {split.only_a_us:.1f}us, "
                      f"only in B {split.only_b_us:.1f}us")]
    lines.append("")
    lines.append("verdict: " + diff.verdict())
    return "\n".join(lines)


def _difference_json(change: Difference | None) -> dict[str, float | bool | None]:
    """``noise`` (half of each side's IQR, added) and ``within_spread`` (null when a spread is unknown)."""
    if change is None:
        return {"noise": None, "within_spread": None}
    return {"noise": None if change.noise is None else round(change.noise, 4), "within_spread": change.within_spread}


def diff_json(diff: CensusDiff, timing_a: TimingSummary | None = None, timing_b: TimingSummary | None = None,
              divergence: Divergence | None = None, with_passes: bool = False, label_a: str = "A",
              label_b: str = "B") -> str:
    """The diff as one JSON object; with passes, ``first_divergence`` (null when the two sides' fusions never
    differ).

    With both sides' timing: per-kernel times and their split; each matched pair also carries ``noise_us`` and
    ``within_spread`` (whether ``|delta_us|`` is no larger than the noise, null when a spread is unknown), and
    ``step_ms`` compares the median step times the same way.
    """
    from xlainspect.analysis.diff import timed_json

    if timing_a is not None and timing_b is not None:
        kernels_a = {k.hlo_op: k for k in timing_a.kernels}
        kernels_b = {k.hlo_op: k for k in timing_b.kernels}
        data = timed_json(diff, {name: k.total_us for name, k in kernels_a.items()},
                          {name: k.total_us for name, k in kernels_b.items()})
        for entry, pair in zip(data["matched"], diff.matched):
            spread = _difference_json(_kernel_difference(kernels_a.get(pair.a.name), kernels_b.get(pair.b.name)))
            entry.update(noise_us=spread["noise"], within_spread=spread["within_spread"])
        step = _step_difference(timing_a, timing_b)
        data["step_ms"] = {"a": timing_a.median_ms, "b": timing_b.median_ms, "delta": round(step.delta, 4),
                           **_difference_json(step)}
    else:
        data = diff.to_json()
    data["a"]["label"], data["b"]["label"] = label_a, label_b
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
                  (f"  {'hlo_op':<{op}}{'calls':>7}{'total us':>11}{'± us':>9}{'mean us':>10}{'share':>8}{'FLOP/s':>10}"
                  f"{'B/s':>10}")]
        for kernel in timing.kernels[:top_kernels]:
            spread = "" if kernel.spread is None else f"{kernel.spread.half_iqr:.1f}"
            lines.append(f"  {kernel.hlo_op:<{op}}{kernel.calls:>7}{kernel.total_us:>11.1f}{spread:>9}"
                         f"{kernel.mean_us:>10.1f}{kernel.share:>8.1%}{_rate(kernel.flops_per_s, ''):>10}"
                         f"{_rate(kernel.bytes_per_s, ''):>10}")
        if len(timing.kernels) > top_kernels:
            lines.append(f"  ... {len(timing.kernels) - top_kernels} more")
        if any(kernel.spread is not None for kernel in timing.kernels):
            lines.append("  total us: per step, the mean over the profiled runs; ± us: half the interquartile range "
                         "of each run's total")
        else:
            lines.append("  ± us: unknown (one profiled run, or the profile did not mark the runs)")
    for framework, message in report.failures:
        lines.append(f"failed: {message}")  # the message names the framework
    return "\n".join(line for line in lines if line is not None)


def _noise_verdict(a_median: float, a_spread: Spread | None, b_median: float, b_spread: Spread | None,
                   ratio: float | None, ratio_digits: int) -> str:
    """A ratio ``b / a`` as ``2.50x``, or ``within noise`` when ``b - a`` is no larger than the two spreads."""
    from xlainspect.measure.spread import difference

    if ratio is None:
        return ""
    if difference(a_median, a_spread, b_median, b_spread).within_spread:
        return "within noise"
    return f"{ratio:.{ratio_digits}f}x" if ratio >= 0.1 else f"{ratio:.2g}x"  # 0.038x, not 0.0x


def _median_cells(row: BenchRow | AblationRow | None) -> tuple[str, str]:
    """A bench row's median and ``±`` half its IQR (blank when unknown, "1 run" when timed once), in ms."""
    if row is None:
        return "", ""
    spread = "1 run" if row.runs == 1 else "" if row.spread is None else f"±{row.spread.half_iqr:.3f}"
    return f"{row.median_ms:.3f}", spread


def _bench_footer(rows: Sequence) -> str:
    once = "; 1 run: timed once, its repeats did not fit the time budget" if any(r.runs == 1 for r in rows) else ""
    return f"  ± is half the interquartile range of the timed runs{once}"


def unmeasured_text(cells: Sequence[Mapping[str, str]]) -> str:
    """One line per configuration a bench CSV holds without figures (``BenchRow.unmeasured``), saying why."""
    lines = []
    for row in cells:
        program = f"{'dpsgd' if row.get('private', 'True') == 'True' else 'sgd'}_{row['model']}"
        build = f" ({row['label']})" if row.get("label") else ""
        lines.append(f"  {program} {row['framework']}{build} batch {row['batch_size']}: {row['note']}")
    return "\n".join(lines)


def bench_text(rows: Sequence, factors: Mapping[tuple[str, str, int], float]) -> str:
    """Median step times per model, framework and batch size, SGD and DP-SGD, each with its spread (± half the
    interquartile range), and the DP overhead factor, or "within noise" when the two medians differ by no more than
    their spreads."""
    model_width = _width((r.model + " " for r in rows), 7)
    framework_width = _width((r.framework + " " for r in rows), 11)
    by_key = {(r.model, r.framework, r.batch_size, r.private): r for r in rows}
    order = {model: i for i, model in enumerate(dict.fromkeys(r.model for r in rows))}  # the sweep's, the seed's
    table = []
    for model, framework, batch in sorted({(r.model, r.framework, r.batch_size) for r in rows},
                                          key=lambda k: (order[k[0]], k[1], k[2])):
        sgd, dp = by_key.get((model, framework, batch, False)), by_key.get((model, framework, batch, True))
        (sgd_ms, sgd_pm), (dp_ms, dp_pm) = _median_cells(sgd), _median_cells(dp)
        factor = "" if sgd is None or dp is None else _noise_verdict(
            sgd.median_ms, sgd.spread, dp.median_ms, dp.spread, factors.get((model, framework, batch)), 2)
        table.append((model, framework, batch, sgd_ms, sgd_pm, dp_ms, dp_pm, factor))
    # Numeric columns keep their usual widths and grow (with two spaces before) for a figure that needs more: a
    # 3504.897 ms step with a ±512.240 spread must not run its columns together.
    widths = [max([usual] + [len(str(row[k])) + 2 for row in table])
              for k, usual in ((3, 10), (4, 8), (5, 11), (6, 8), (7, 14))]
    lines = [f"  {'model':<{model_width}}{'framework':<{framework_width}}{'batch':>6}{'SGD ms':>{widths[0]}}"
             f"{'±':>{widths[1]}}{'DP-SGD ms':>{widths[2]}}{'±':>{widths[3]}}{'DP/SGD':>{widths[4]}}"]
    for model, framework, batch, sgd_ms, sgd_pm, dp_ms, dp_pm, factor in table:
        lines.append(f"  {model:<{model_width}}{framework:<{framework_width}}{batch:>6}{sgd_ms:>{widths[0]}}"
                     f"{sgd_pm:>{widths[1]}}{dp_ms:>{widths[2]}}{dp_pm:>{widths[3]}}{factor:>{widths[4]}}")
    lines.append(_bench_footer(rows))
    return "\n".join(lines)


def speedup_text(factors: Mapping[tuple[str, bool, int], float], seed_claim: float, fast: str = "jax",
                 slow: str = "torch") -> str:
    """The ``fast``-over-``slow`` speed-up per model and batch size, SGD and DP-SGD, beside the seed's claim."""
    if not factors:
        return ""
    lines = [f"{fast} over {slow} (eager PyTorch, Opacus for DP-SGD): how many times faster the median step is; "
             f"the seed claimed {seed_claim:g}x for DP-SGD on its CNN, on a GPU",
             f"  {'model':<12}{'batch':>6}{'SGD':>10}{'DP-SGD':>10}"]
    for model, batch in sorted({(m, b) for m, _, b in factors}, key=lambda k: (k[0], k[1])):
        cells = [factors.get((model, private, batch)) for private in (False, True)]
        lines.append(f"  {model:<12}{batch:>6}" + "".join(f"{f'{c:.1f}x' if c is not None else '':>10}"
                                                          for c in cells))
    return "\n".join(lines)


def ablation_text(rows: Sequence, slowdowns: Mapping[tuple[str, str, str], float]) -> str:
    """Median step time of every ablation build with its spread, and how many times slower it is than the full
    build (or "within noise" when the two medians differ by no more than their spreads)."""
    model_width = _width((r.model + " " for r in rows), 7)
    framework_width = _width((r.framework + " " for r in rows), 11)
    build_width = _width((r.label + " " for r in rows), 34)
    full = {(r.model, r.framework): r for r in rows if r.build == "full"}
    lines = [f"  {'model':<{model_width}}{'framework':<{framework_width}}{'build':<{build_width}}{'batch':>6}"
             + f"{'median ms':>11}{'±':>9}{'compile s':>11}{'vs full':>14}"]
    for r in rows:
        base = full.get((r.model, r.framework))
        slowdown = "1.0x" if base is r else "" if base is None else _noise_verdict(base.median_ms, base.spread, r.median_ms, r.spread,
                                                          slowdowns.get((r.model, r.framework, r.build)), 1)
        median, plus_minus = _median_cells(r)
        lines.append(f"  {r.model:<{model_width}}{r.framework:<{framework_width}}{r.label:<{build_width}}"
                     f"{r.batch_size:>6}{median:>11}{plus_minus:>9}{r.compile_s:>11.2f}{slowdown:>14}")
    lines.append(_bench_footer(rows))
    return "\n".join(lines)


def memory_text(results: Sequence, failures: Sequence[str]) -> str:
    """Each framework's compile-time bytes, the largest temporaries and who owns them, per-example gradients."""
    lines = []
    for r in results:
        f = r.figures
        batch = f", batch {f.batch_size}" if f.batch_size is not None else ""
        lines += [f"{r.framework}{batch}: {r.module} ({r.route}; device {r.device})",
                  (f"  arguments {_bytes(f.argument)}, outputs {_bytes(f.output)}, aliased {_bytes(f.alias)}, "
                  f"temporaries {_bytes(f.temp)}, generated code {_bytes(f.generated_code)}"),
                  f"  peak (arguments + outputs - aliased + temporaries): {_bytes(f.peak)}"]
        if r.per_example_bytes is not None:
            share = r.per_example_bytes / f.temp if f.temp else 0.0
            lines.append(f"  per-example weight gradients: {_bytes(r.per_example_bytes)} of the temporaries ({share:.0%}) "
                         + ("are materialised" if r.per_example_bytes else "- none materialised: XLA fused them away"))
        if r.library_fusions:
            lines += [f"  note: {r.library_fusions} XLA:CPU library fusions (YNNPACK/XNNPACK) allocate their own "
                      "scratch outside this accounting,",
                      "  so a real step can need more (2.4-2.9x measured for the DP embedding steps); "
                      "XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= turns YNNPACK's off"]
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
    lines = [f"  {'framework':<{framework}}{'largest batch':>15}{'within':>8}{'peak there':>13}{'limit':>12}  how"]
    for r in results:
        fitting = [p for p in r.curve if p.batch_size == r.max_batch]
        peak = _bytes(fitting[0].peak) if fitting else ""
        within = "0.1%" if r.resolution is None else f"{r.resolution:,}"
        exact = "" if r.exact else " (search stopped early: a lower bound)"
        if r.capped:
            exact = " (still fits at the 32-bit indexing limit on the batch: a lower bound)"
        lines.append(f"  {r.framework:<{framework}}{r.max_batch:>15,}{within:>8}{peak:>13}{_bytes(r.limit):>12}  "
                     f"{r.route}{exact}")
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


def command_dump_json(directory: str, manifest: CommandManifest) -> str:
    """What ``dump -- CMD`` filed as one JSON object: the folder and its manifest."""
    return json.dumps({"directory": directory, **manifest.to_json()}, indent=2)


def command_dump_text(directory: str, manifest: CommandManifest) -> str:
    """The modules a command compiled, in compile order, the main one marked, under a line saying what ran."""
    rows = [(str(m.number), m.name, str(m.instructions), "?" if m.kernels is None else str(m.kernels),
             "main" if m.main else "" if m.after is not None else "not optimized") for m in manifest.modules]
    name_width = _width((row[1] for row in rows), 24)
    found = ", ".join(f"{name} {version}" for name, version in manifest.versions.items()) or "no framework versions " \
        "reported (not Python, or a process that exited without atexit)"
    lines = [f"{directory}: {len(rows)} module(s) on {', '.join(manifest.backends) or 'no backend'}; {found}",
             f"{'#':>5}  {'module':<{name_width}} {'instructions':>12} {'kernels':>8}"]
    lines += [f"{number:>5}  {name:<{name_width}} {instructions:>12} {kernels:>8}  {mark}".rstrip()
              for number, name, instructions, kernels, mark in rows]
    return "\n".join(lines)
