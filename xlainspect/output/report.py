"""One self-contained HTML page per program: what each framework compiled, how they differ, what it cost.

The two sides are a program's filed JAX and TF dumps, or whatever ``diff`` reads (dump folders, XLA's raw
``--xla_dump_to`` folders, HLO files), or one side alone: a program that exists only in JAX still gets a page naming
every kernel, with its census and graph.

The page is what users attach to a bug report or a review, so it must open anywhere: no server and no network.
Everything is inline: the CSS, the SVG kernel graphs, the tables, one script and the per-kernel data it reads
(:mod:`.report_script`). The script only adds to a page that reads as a document without it: selecting a kernel in
a table or graph highlights its match on the other side and shows its fused HLO and sources, tables sort and
filter, graphs pan and zoom. Collapsible sections use ``<details>``, which needs no JavaScript.
"""

from __future__ import annotations

import datetime
import html
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xlainspect.analysis.census import Census, Kernel, census
from xlainspect.analysis.diff import CensusDiff, count_delta, diff_census, fused_op_summary
from xlainspect.errors import InputError
from xlainspect.hlo import HloModule, Instruction
from xlainspect.measure.records import KernelTime, TimingRecord, TimingSummary
from xlainspect.measure.spread import Spread, difference
from xlainspect.measure.timing import check_timing_fits_dump
from xlainspect.output.render import RenderOptions, render_svg
from xlainspect.output.report_script import CSS as _SCRIPT_CSS
from xlainspect.output.report_script import data_block, script_block
from xlainspect.runners.manifest import DumpManifest
from xlainspect.runners.sides import Side, manifest_beside, names_framework, resolve_side

FRAMEWORKS = ("jax", "tf")

_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.long { max-width: 24em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.verdict { font-size: 1.1em; background: #fff8e1; border-left: 4px solid #f4a261; padding: 0.5em 1em; }
.sides { display: flex; gap: 1.5em; flex-wrap: wrap; } .sides > div { flex: 1 1 600px; min-width: 0; }
.graph { overflow: auto; border: 1px solid #ddd; }
.graph svg { max-width: 100%; height: auto; }
.zoom { display: none; } .zoom + label { cursor: pointer; color: #1a5fb4; text-decoration: underline; }
.zoom:checked + label + .graph svg { max-width: none; }
.muted { color: #666; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


@dataclass(frozen=True)
class _Side:
    side: Side
    manifest: DumpManifest | None  # None for a dump filed without one
    census: Census
    svg: str
    svg_notes: tuple[str, ...]
    kernels: Mapping[str, KernelTime]  # measured times by kernel name, empty without --timing
    timing: TimingSummary | None
    sources: Mapping[str, str]  # by kernel name: where it came from (kernel_sources)
    hlo: Mapping[str, str]  # by kernel name: its instruction and fused ops as HLO text, for the details pane

    @property
    def label(self) -> str:
        return self.side.label


def build_report(program: str | None, dumps_dir: str = "dumps", backend: str = "cpu",
                 timing_file: str | None = None, target: str | None = None,
                 progress: Callable[[str], None] | None = None, *, sides: Sequence[str] = (),
                 labels: Sequence[str | None] = (), module: str | None = None, module_b: str | None = None) -> str:
    """The HTML page for one program's two filed dumps (``DIR/<backend>/<program>/{jax,tf}``), or for the one or
    two ``sides`` given.

    Args:
        program: the program whose filed dumps to read: both frameworks' without ``sides``, else those that
            ``sides`` name (``jax``, ``tf``, ``tf_via_jax``). None when every side is a path.
        sides: one or two of what ``diff`` takes: framework names, dump folders (XLA's own too), HLO files. One
            side gives a page without a comparison.
        labels: the sides' names on the page (``--label-a``, ``--label-b``); None or missing for the default (the
            framework, else the folder or file name).
        module: ``--module`` for every side; ``module_b`` overrides it for the second.
        timing_file: output of ``xlainspect time --program P --json``; adds step times and per-kernel times, with
            their spread, and refuses times that do not belong to the dumps.
        target: with backend ``gpu``, the deviceless target whose dumps to read (``h100``), as ``diff --target``.
        progress: called with a line while each kernel graph is laid out (``dot`` may take seconds).

    Raises:
        InputError: a dump is missing (the message says how to make it), or the timing file is unusable.
        RecordError: the timing file is not ``time --json`` output, or a dump's manifest not one ``dump`` wrote.
    """
    specs = tuple(sides) or FRAMEWORKS
    if not 1 <= len(specs) <= 2:
        raise InputError(f"a report compares two sides or shows one; got {len(specs)}: {' '.join(specs)}")
    timing = TimingRecord.read(timing_file) if timing_file else None
    modules = (module, module_b or module)
    read = [_side(spec, program, dumps_dir, backend, timing, target, progress, modules[i],
                  labels[i] if i < len(labels) else None) for i, spec in enumerate(specs)]
    title = program or " and ".join(s.label for s in read)
    diff: CensusDiff | None = None
    if len(read) == 1:
        (only,) = read
        parts = [_head(title), _summary(program, read, None, backend), _one_census_table(only),
                 _one_kernels_section(only)]
    else:
        a, b = read
        diff = diff_census(a.census, b.census, a.side.compiler, b.side.compiler)
        parts = [_head(title), _summary(program, read, diff, backend), _census_table(diff, a, b),
                 _kernels_section(diff, a, b)]
    if timing is not None:
        parts.append(_timing_section(read, timing))
    parts.append(_graphs_section(read))
    parts.append(_passes_section(read, _divergence(read)))
    parts.append(data_block(_page_data(read, diff)))
    parts.append(script_block())
    parts.append("</body></html>\n")
    return "\n".join(parts)


# -- gathering -------------------------------------------------------------------------------------------------


def _side(spec: str, program: str | None, dumps_dir: str, backend: str, timing: TimingRecord | None,
          target: str | None, progress: Callable[[str], None] | None, module_selector: str | None,
          label: str | None) -> _Side:
    side = resolve_side(spec, program, dumps_dir, backend, target, module_selector, label)
    manifest = manifest_beside(side.path)
    module = side.read()
    if timing is not None:
        if not names_framework(spec):
            raise InputError(f"--timing attaches times to the filed dumps that jax and tf name; {spec} is a path")
        check_timing_fits_dump(timing, spec, side.path, module)
    framework_timing = timing.frameworks.get(spec) if timing is not None else None
    kernels = {k.hlo_op: k for k in framework_timing.kernels} if framework_timing is not None else {}
    svg, rendering = render_svg(module, RenderOptions(kernel_times={name: k.total_us for name, k in kernels.items()}),
                                report=progress)
    module_census = census(module)
    return _Side(side, manifest, module_census, _inline_svg(svg), rendering.left_out, kernels,
                 framework_timing, kernel_sources(module_census.kernels), kernel_hlo(module, module_census.kernels))


# -- what the details pane shows --------------------------------------------------------------------------------

HLO_LINES = 40
"""The most HLO lines shown per kernel: a fusion's body is rarely longer, and the page of a 100,000-instruction
module stays a size a browser opens quickly."""
_NOT_SHOWN = frozenset({"metadata", "backend_config"})  # metadata is shown as sources; configs are long and opaque


def _instruction_text(instruction: Instruction) -> str:
    """One instruction as HLO text, without its metadata and backend config."""
    if instruction.literal is not None:
        operands = instruction.literal
    elif instruction.parameter_number is not None:
        operands = str(instruction.parameter_number)
    else:
        operands = ", ".join(instruction.operands)
    attributes = "".join(f", {key}={value}" for key, value in instruction.attributes.items() if key not in _NOT_SHOWN)
    return (f"{'ROOT ' if instruction.is_root else ''}{instruction.name} = {instruction.shape} "
            f"{instruction.opcode}({operands}){attributes}")


def kernel_hlo(module: HloModule, kernels: Sequence[Kernel], most: int = HLO_LINES) -> dict[str, str]:
    """Each kernel's HLO text by name: its launching instruction, then, for a fusion, its fused computation's
    instructions (parameters included), at most ``most`` lines."""
    result = {}
    for kernel in kernels:
        computation = module.by_name.get(kernel.computation)
        instruction = computation.by_name.get(kernel.name) if computation is not None else None
        if instruction is None:
            result[kernel.name] = ""
            continue
        lines = [_instruction_text(instruction)]
        if instruction.opcode == "fusion" and instruction.called_computations:
            body = module.by_name.get(instruction.called_computations[0].name)
            if body is not None:
                lines.append(f"{body.name} {{")
                lines += ["  " + _instruction_text(op) for op in body.instructions]
                lines.append("}")
        if len(lines) > most:
            lines = lines[:most] + [f"... {len(lines) - most} more lines"]
        result[kernel.name] = "\n".join(lines)
    return result


def _page_data(sides: Sequence[_Side], diff: CensusDiff | None) -> dict[str, Any]:
    """What the page's script reads: per side, every kernel by name with its kind, ops, sources, time, HLO and, when
    it has any, its matches on the other side (the diff's pairing; a kernel may pair with several)."""
    matches: list[dict[str, list[str]]] = [{}, {}]
    how: list[dict[str, str]] = [{}, {}]
    for pair in diff.matched if diff is not None else ():
        text = "identical" if pair.exact else f"similar ({pair.score:.2f})"
        for side, mine, theirs in ((0, pair.a.name, pair.b.name), (1, pair.b.name, pair.a.name)):
            found = matches[side].setdefault(mine, [])
            if theirs not in found:
                found.append(theirs)
            how[side].setdefault(mine, text)
    payload = []
    for number, side in enumerate(sides):
        kernels = {}
        for kernel in side.census.kernels:
            locations = dict.fromkeys(source.location for source in kernel.sources if source.location)
            ops = dict.fromkeys(source.op_name or source.op_type for source in kernel.sources
                                if source.op_name or source.op_type)
            timed = side.kernels.get(kernel.name)
            entry: dict[str, Any] = {
                "kind": kernel.kind, "ops": fused_op_summary(kernel), "runs": kernel.trips, "src": list(locations)[:8],
                "fw": list(ops)[:8], "us": round(timed.total_us, 3) if timed is not None else None,
                "hlo": side.hlo.get(kernel.name, "")}
            # Only what a kernel has: a 100,000-instruction module has 13,000 kernels, and each key is paid for.
            if not kernel.sources:  # made by XLA: named by its nearest kernel with sources
                entry["from"] = side.sources.get(kernel.name, "")
            if kernel.name in matches[number]:
                entry["match"], entry["how"] = matches[number][kernel.name], how[number][kernel.name]
            kernels[kernel.name] = entry
        payload.append({"label": side.label, "kernels": kernels})
    return {"sides": payload, "timed": any(side.kernels for side in sides)}


# -- where kernels came from -----------------------------------------------------------------------------------


def _source_text(kernel: Kernel, most: int) -> str:
    """A kernel's own sources: the user's source lines of its ops, or, when none of its ops has a frame of the
    user's (TF names only its own ``ops.py``, which :attr:`OpMetadata.user_source` skips), the framework ops'
    names."""
    texts = dict.fromkeys(source.location for source in kernel.sources if source.location) or \
        dict.fromkeys(source.op_name or source.op_type for source in kernel.sources)
    shown = "; ".join(list(texts)[:most])
    return shown + ("; ..." if len(texts) > most else "")


def _nearest(start: str, neighbours: Callable[[str], Iterable[str]], known: Mapping[str, Kernel]) -> Kernel | None:
    """The closest kernel with sources, breadth first through ``neighbours`` (consumers or producers)."""
    seen, queue = {start}, deque([start])
    while queue:
        for name in neighbours(queue.popleft()):
            if name in seen or name not in known:
                continue
            if known[name].sources:
                return known[name]
            seen.add(name)
            queue.append(name)
    return None


def kernel_sources(kernels: Sequence[Kernel], most: int = 3) -> dict[str, str]:
    """Where each kernel came from, as the report's "from" column shows it, by kernel name.

    A kernel's own metadata names its source: the user's line, else the framework op (``dpsgd_step/MatMul``). A
    kernel XLA made itself (a reduction split into a ``reduce-window`` and a ``reduce``, the ``iota``s of a
    max-pool gradient) has no metadata; it is named by the nearest kernel with sources that reads its result, or
    failing that, that it reads: ``made by XLA, feeds wrapped_scatter.1: gradient_tape/MaxPool2d/MaxPoolGrad``.
    """
    known = {k.name: k for k in kernels}
    consumers: dict[str, list[str]] = {}
    for kernel in kernels:
        for producer in kernel.producers:
            consumers.setdefault(producer, []).append(kernel.name)
    result = {}
    for kernel in kernels:
        if kernel.sources:
            result[kernel.name] = _source_text(kernel, most)
            continue
        result[kernel.name] = "made by XLA"
        for how, neighbours in (("feeds", lambda name: consumers.get(name, ())),
                                ("reads", lambda name: known[name].producers if name in known else ())):
            near = _nearest(kernel.name, neighbours, known)
            if near is not None:
                result[kernel.name] = f"made by XLA, {how} {near.name}: {_source_text(near, 1)}"
                break
    return result


def _has_pass_dumps(side: Side) -> bool:
    """Whether XLA's pass dumps of the side's module lie beside it: a filed dump's ``passes/``, or, in a raw XLA
    dump folder, files of the module's ``module_NNNN``."""
    from xlainspect.analysis.passes import parse_pass_dump_name

    folder = side.path.parent
    if side.pass_module is None:
        return (folder / "passes").is_dir()
    return any(parse_pass_dump_name(path.name) is not None for path in folder.glob(side.pass_module + ".*"))


def _divergence(sides: Sequence[_Side]) -> Any:
    """Each side's pass timeline and, with two sides, the first pass after which they part; None unless every side
    has pass dumps."""
    from xlainspect.analysis.passes import first_divergence, pass_timeline

    if not all(_has_pass_dumps(s.side) for s in sides):
        return None
    timelines = [pass_timeline(s.side.path.parent, s.side.pass_module) for s in sides]
    if len(sides) == 1:
        return timelines, None
    return timelines, first_divergence(timelines[0], timelines[1], (sides[0].label, sides[1].label))


def _inline_svg(svg: str) -> str:
    """An SVG document as an inline element: no XML declaration, no DOCTYPE, no comments."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", svg, flags=re.DOTALL)
    return svg.strip()


# -- writing ---------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = (),
           kernels: Sequence[tuple[str | None, str | None]] | None = None) -> str:
    """A table; with ``kernels`` (per row, the kernel of A and of B it names, or None), a kernel table: its rows
    carry ``data-a``/``data-b`` and the page's script makes it selectable, sortable and filterable."""
    head = "".join(f"<th{' data-num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join(_row_open(kernels[n] if kernels is not None else (None, None))
                   + "".join(_cell(c, i in numeric) for i, c in enumerate(row)) + "</tr>" for n, row in enumerate(rows))
    kind = " class=\"xi-kernels\"" if kernels is not None else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _row_open(names: tuple[str | None, str | None]) -> str:
    a, b = names
    return ("<tr" + (f" data-a=\"{_e(a)}\"" if a is not None else "") + (f" data-b=\"{_e(b)}\"" if b is not None else "")
            + ">")


LONG_CELL = 40  # characters; longer text (TF's op paths, kernel names) is cut with an ellipsis, whole on hover


def _cell(value: Any, numeric: bool) -> str:
    """A table cell: numbers never wrap; long text stays on one line, cut to the column, whole in its tooltip."""
    if numeric:
        return f"<td class=\"num\">{_e(value)}</td>"
    text = str(value)
    if len(text) > LONG_CELL:
        return f"<td class=\"long\" title=\"{_e(text)}\">{_e(text)}</td>"
    return f"<td>{_e(text)}</td>"


def _head(program: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>xlainspect report: {_e(program)}</title><style>{_CSS}{_SCRIPT_CSS}</style></head><body>")


def _summary(program: str | None, sides: Sequence[_Side], diff: CensusDiff | None, backend: str) -> str:
    """The heading, what was read (versions only where a manifest says them, never guessed) and the verdict."""
    from xlainspect import __version__

    manifests = [s.manifest for s in sides if s.manifest is not None]
    description = next((m.description for m in manifests if m.description), "")
    rows = [(s.label, s.manifest.framework_version, s.manifest.compiled_by, s.manifest.device, s.manifest.host_cpu,
             s.census.module, s.manifest.created_utc, str(s.side.path)) if s.manifest is not None else
            (s.label, "", "", "", "", s.census.module, "", str(s.side.path)) for s in sides]
    parameters = next((dict(m.parameters) for m in manifests if m.parameters), {})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    labels = [s.label for s in sides]
    if diff is None:
        what = f"the kernels of {labels[0]}"
        verdict = (f"{labels[0]} has {sides[0].census.kernel_count} kernel(s); one side was given, so there is "
                   "nothing to compare (give two sides to diff them)")
    else:
        what = "JAX against TF2+XLA" if labels == list(FRAMEWORKS) else f"{labels[0]} against {labels[1]}"
        verdict = diff.verdict(labels[0], labels[1])
    heading = f"{program}: {what}" if program else what
    return (f"<h1>{_e(heading)}</h1><p>{_e(description)}</p>"
            f"<p class=\"muted\">backend {_e(backend)}; parameters {_e(json.dumps(parameters))}; made by "
            f"xlainspect {_e(__version__)} on {_e(now)}</p>"
            f"<p class=\"verdict\">{_e(verdict)}</p>"
            + _table(["side", "version", "compiled by", "device", "host CPU", "module", "dumped", "file"], rows))


def _census_rows(a: Census, b: Census) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [("kernels", a.kernel_count, b.kernel_count),
                                   ("launches (loops unrolled)", a.launches, b.launches),
                                   ("fusions", a.fusion_count, b.fusion_count)]
    rows += [(f"fusions: {kind}", x, y) for kind, x, y in count_delta(a.fusions_by_kind, b.fusions_by_kind)]
    rows += [(f"custom-call: {kind}", x, y) for kind, x, y in count_delta(a.custom_calls, b.custom_calls)]
    rows += [(f"unfused: {op}", x, y) for op, x, y in count_delta(a.unfused_ops, b.unfused_ops)]
    rows += [("bytes read", a.bytes_read, b.bytes_read), ("bytes written", a.bytes_written, b.bytes_written),
             ("FLOPs (contractions)", a.flops, b.flops)]
    return rows


def _census_table(diff: CensusDiff, a: _Side, b: _Side) -> str:
    table = [(name, f"{x:,}", f"{y:,}", f"{y - x:+,}" if y != x else "") for name, x, y in _census_rows(diff.a, diff.b)]
    return "<h2>Census</h2>" + _table(["", a.label, b.label, f"{b.label} - {a.label}"], table, numeric=(1, 2, 3))


def _one_census_table(side: _Side) -> str:
    table = [(name, f"{x:,}") for name, x, _ in _census_rows(side.census, side.census)]
    return "<h2>Census</h2>" + _table(["", side.label], table, numeric=(1,))


def _us(kernels: Mapping[str, KernelTime], name: str) -> str:
    return f"{kernels[name].total_us:.1f}" if name in kernels else ""


def _half_iqr(spread: Spread | None, digits: int) -> str:
    return "" if spread is None else f"±{spread.half_iqr:.{digits}f}"


def _delta_us(a: KernelTime | None, b: KernelTime | None) -> str:
    """B minus A, or "within noise (±x)" when it is no larger than the two spreads (:mod:`xlainspect.measure.spread`)."""
    if a is None or b is None:
        return ""
    return difference(a.total_us, a.spread, b.total_us, b.spread).text("")


def _kernels_section(diff: CensusDiff, a: _Side, b: _Side) -> str:
    timed = bool(a.kernels or b.kernels)
    matched = []
    for p in diff.matched:
        row = [p.a.name, p.b.name, p.a.kind, "identical" if p.exact else f"similar ({p.score:.2f})"]
        if timed:
            row += [_us(a.kernels, p.a.name), _us(b.kernels, p.b.name),
                    _delta_us(a.kernels.get(p.a.name), b.kernels.get(p.b.name))]
        matched.append(row + [a.sources.get(p.a.name, ""), b.sources.get(p.b.name, "")])
    header = [f"{a.label} kernel", f"{b.label} kernel", "kind", "match"]
    header += [f"{a.label} µs", f"{b.label} µs", f"{b.label} − {a.label} µs"] if timed else []
    parts = ["<h2>Kernels</h2>",
             (f"<details{' open' if len(matched) <= 40 else ''}><summary>{len(matched)} matched kernels "
             "(paired by the structure of what they compute, names ignored)</summary>"),
             _table(header + [f"{a.label} from", f"{b.label} from"], matched, numeric=(4, 5, 6) if timed else (),
                    kernels=[(p.a.name, p.b.name) for p in diff.matched]),
             "</details>"]
    if timed:
        parts.append("<p class=\"muted\">µs per step; a difference no larger than half of each side's "
                     "interquartile range, added, reads \"within noise\"</p>")
    for number, side, only in ((0, a, diff.only_a), (1, b, diff.only_b)):
        parts.append(f"<h3>Only in {_e(side.label)}: {len(only)}</h3>")
        if only:
            parts.append(_kernel_table(side, only, number))
    return "\n".join(parts)


def _kernel_table(side: _Side, kernels: Sequence[Kernel], number: int) -> str:
    rows = [(k.name, k.kind, fused_op_summary(k), k.trips, _us(side.kernels, k.name), side.sources.get(k.name, ""))
            for k in kernels]
    return _table(["kernel", "kind", "fused ops", "runs", "µs", "from"], rows, numeric=(3, 4),
                  kernels=[_on_side(number, k.name) for k in kernels])


def _on_side(number: int, name: str) -> tuple[str | None, str | None]:
    return (name, None) if number == 0 else (None, name)


def _one_kernels_section(side: _Side) -> str:
    kernels = side.census.kernels
    intro = (f"<p>{len(kernels)} kernels of {_e(side.label)}; the diff needs a second side, so there is nothing to "
             "compare</p>")
    return "\n".join(["<h2>Kernels</h2>", intro, _kernel_table(side, kernels, 0)])


def _timing_section(sides: Sequence[_Side], timing: TimingRecord) -> str:
    rows = []
    for s in sides:
        t = s.timing
        if t is not None:
            rows.append((s.label, t.framework_version, f"{t.compile_s:.3f}", f"{t.median_ms:.3f}",
                         _half_iqr(t.spread, 3), f"{t.min_ms:.3f}", f"{t.max_ms:.3f}", t.runs, t.note))
    batch = timing.batch_size
    parts = ["<h2>Timing</h2>",
             (f"<p class=\"muted\">from <code>xlainspect time</code>, batch {_e(batch)}; per-kernel times are µs "
             "per step attributed by the profiler's hlo_op field; ± is half the interquartile range over the runs "
             "(per kernel: of each profiled run's total)</p>"),
             _table(["framework", "version", "compile s", "median ms", "± ms", "min ms", "max ms", "runs", "note"],
                    rows, numeric=(2, 3, 4, 5, 6, 7))]
    timed = [s for s in sides if s.timing is not None]
    if len(timed) == 2:
        a, b = (s.timing for s in timed)
        step = difference(a.median_ms, a.spread, b.median_ms, b.spread)  # type: ignore[union-attr]
        parts.append(f"<p>median step, {_e(timed[1].label)} − {_e(timed[0].label)}: "
                     f"{_e(step.text(' ms', 3))}</p>")
    for number, s in enumerate(sides):
        kernels = s.timing.kernels[:15] if s.timing is not None else ()
        if kernels:
            parts.append(f"<h3>{_e(s.label)}: costliest kernels</h3>")
            parts.append(_table(["hlo_op", "calls", "total µs", "± µs", "min–max µs", "share", "from"],
                                [(k.hlo_op, k.calls, f"{k.total_us:.1f}", _half_iqr(k.spread, 1),
                                  "" if k.spread is None else f"{k.spread.low:.1f}–{k.spread.high:.1f}",
                                  f"{k.share:.1%}", s.sources.get(k.hlo_op, "")) for k in kernels],
                                numeric=(1, 2, 3, 4, 5), kernels=[_on_side(number, k.hlo_op) for k in kernels]))
    return "\n".join(parts)


def _graphs_section(sides: Sequence[_Side]) -> str:
    parts = ["<h2>Kernel graphs</h2>", ("<p class=\"muted\">boxes: fusions (colour: kind), hexagons: custom-calls, "
             "ellipses: unfused ops; edges carry shapes. Each picture fits the page; drag to move it, the wheel "
             "zooms (without JavaScript, 'full size' shows it at its own scale, to scroll); click a kernel to select "
             "it.</p>"), "<div class=\"sides\">"]
    for number, s in enumerate(sides):
        notes = "".join(f"<li>{_e(note)}</li>" for note in s.svg_notes)
        # A checkbox and its label: one click toggles full size without JavaScript (the script hides it, and pans
        # and zooms instead). Ids by position: labels are the user's text and two sides may share one.
        zoom = f"zoom-{number}"
        parts.append(f"<div><h3>{_e(s.label)}</h3><ul class=\"muted\">{notes}</ul>"
                     f"<input type=\"checkbox\" class=\"zoom\" id=\"{zoom}\"><label for=\"{zoom}\">full size</label>"
                     f"<div class=\"graph\" data-side=\"{number}\">{s.svg}</div></div>")
    parts.append("</div>")
    return "\n".join(parts)


def _regenerate(side: _Side) -> str:
    if side.side.pass_module is not None:
        return "XLA_FLAGS=--xla_dump_hlo_pass_re=.* (with --xla_dump_to)"
    return f"{side.manifest.regenerate if side.manifest else 'xlainspect dump'} --pass-dumps"


def _passes_section(sides: Sequence[_Side], divergence: Any) -> str:
    if divergence is None:
        command = " and ".join(f"<code>{_e(_regenerate(s))}</code>" for s in sides)
        return f"<h2>Pass timeline</h2><p class=\"muted\">no pass dumps; make them with {command}</p>"
    timelines, first = divergence
    parts = ["<h2>Pass timeline</h2>"]
    if len(sides) == 2:
        text = first.description if first is not None else "the two sides' fusions never differ after any pass"
        parts.append(f"<p class=\"verdict\">first divergence: {_e(text)}</p>")
    parts.append("<div class=\"sides\">")
    for s, steps in zip(sides, timelines):
        rows = [(step.index, step.label, step.instructions, step.fusions) for step in steps]
        parts.append(f"<div><details><summary>{_e(s.label)}: {len(rows)} passes changed the module</summary>"
                     + _table(["#", "pass", "instructions", "fusions"], rows, numeric=(0, 2, 3))
                     + "</details></div>")
    parts.append("</div>")
    return "\n".join(parts)
