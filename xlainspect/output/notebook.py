"""HTML for a notebook cell: one function's kernels, memory and kernel graph; the diff of two; a timing.

Jupyter shows an object's ``_repr_html_``; :class:`xlainspect.inspection.Inspection` and its diff return what this
module writes. It is a fragment, not a page (the notebook owns the page), with its style scoped to one class so it
cannot restyle the notebook, and no scripts, so it shows the same in a trusted or untrusted notebook and in an
exported HTML file. Tables and the inline SVG come from :mod:`xlainspect.output.report`, as on the report page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xlainspect.analysis.census import Census
from xlainspect.analysis.diff import fused_op_summary
from xlainspect.output.report import _e, _inline_svg, _table  # one way to write a table and an inline SVG
from xlainspect.runners.protocol import MemoryFigures

_STYLE = """<style>
.xlainspect table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.9em; }
.xlainspect th, .xlainspect td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; }
.xlainspect td.num { text-align: right; font-variant-numeric: tabular-nums; }
.xlainspect td.long { max-width: 24em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.xlainspect .graph { overflow: auto; max-height: 60em; border: 1px solid #ddd; }
.xlainspect .note { color: #666; font-size: 0.9em; }
</style>"""


def memory_rows(figures: MemoryFigures) -> list[tuple[str, str]]:
    """XLA's compile-time memory figures as (what, bytes) rows, the peak they add up to last."""
    return [("arguments", f"{figures.argument:,}"), ("outputs", f"{figures.output:,}"),
            ("aliased (donated)", f"{figures.alias:,}"), ("temporaries", f"{figures.temp:,}"),
            ("peak = arguments + outputs - aliased + temporaries", f"{figures.peak:,}")]


def kernel_rows(census: Census, sources: Mapping[str, str]) -> list[tuple[object, ...]]:
    """One row per kernel: name, kind, what it fuses, runs per step, bytes, FLOPs and where it came from."""
    return [(k.name, k.kind, fused_op_summary(k), k.trips if k.trips_known else f"{k.trips}?",
             f"{k.bytes_read + k.bytes_written:,}", f"{k.flops:,}", sources.get(k.name, ""))
            for k in census.kernels]


def inspection_html(title: str, facts: Sequence[tuple[str, str]], census: Census, figures: MemoryFigures,
                    sources: Mapping[str, str], svg: str, svg_notes: Sequence[str], notes: Sequence[str]) -> str:
    """The cell of one inspected function.

    Args:
        title: the first line, e.g. ``train_step: 12 kernels``.
        facts: (what, value) rows on who compiled it where (front end, compiler, device, module).
        sources: by kernel name, the framework ops it came from.
        svg: the kernel graph as an SVG document; "" when it could not be drawn (``svg_notes`` says why).
        notes: sentences shown under the title (where it was compiled, what could not be done).
    """
    parts = [_STYLE, "<div class=\"xlainspect\">", f"<h3>{_e(title)}</h3>"]
    parts += [f"<p class=\"note\">{_e(note)}</p>" for note in notes]
    parts.append(_table(["", ""], facts))
    parts.append("<h4>Memory (XLA's compile-time figures, bytes)</h4>")
    parts.append(_table(["", "bytes"], memory_rows(figures), numeric=(1,)))
    parts.append(f"<h4>Census: {census.kernel_count} kernels, {census.launches} launches per step</h4>")
    parts.append(_table(["kernel", "kind", "fused ops", "runs", "bytes", "FLOPs", "from"],
                        kernel_rows(census, sources), numeric=(3, 4, 5)))
    parts.append("<h4>Kernel graph</h4>")
    parts += [f"<p class=\"note\">{_e(note)}</p>" for note in svg_notes]
    if svg:
        parts.append(f"<div class=\"graph\">{_inline_svg(svg)}</div>")
    parts.append("</div>")
    return "\n".join(parts)


def text_html(headline: str, text: str) -> str:
    """A cell of a headline and the text a command prints (``xlainspect diff``'s sides, ``time``'s table)."""
    return (f"{_STYLE}<div class=\"xlainspect\"><p><b>{_e(headline)}</b></p>"
            f"<pre>{_e(text)}</pre></div>")
