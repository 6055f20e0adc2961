"""How long ``xlainspect render`` takes with default options on the modules that used to make ``dot`` hang.

Three cases, each a real optimized module compiled by JAX (built once, cached under ``$TMPDIR/xlainspect-bench/``):

- ``entry240``: one training step of a 3-layer decoder-only transformer, unrolled: an entry computation of about
  240 drawable nodes, nearly all fusions, whose forward-to-backward edges span most of the graph. Before the layout
  budget, ``dot`` ran for minutes on it.
- ``unrolled15mb``: the same step with 163 layers, 15 MB of text (``bench/big_module.py``).
- ``module100k``: a module of at least ``--min-instructions`` instructions (17 MB), the earlier benchmark.

For each it times parsing, choosing what to draw (and building its DOT), and ``dot``; and, for comparison, the same
drawing without the budget (every node the options allow, edge shapes as labels, as before) under a time limit of
``--unbudgeted-limit`` seconds. ``--calibrate`` instead prints ``dot``'s time against the estimated layout work on
cuts of ``entry240``: the measurements :data:`xlainspect.output.layout.LAYOUT_BUDGET` was set from.

Usage::

    python bench/render_speed.py [--cases entry240,unrolled15mb,module100k] [--unbudgeted-limit 60] [--calibrate]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

from bench.parse_speed import default_cache_path, load_module_text  # noqa: E402

TARGET_S = 10.0
MB_PER_INSTRUCTION = 15.5 / 94_224  # measured on the parse benchmark's module: size grows with instructions
CASES = ("entry240", "unrolled15mb", "module100k")
CALIBRATION_SIZES = (40, 80, 120, 160, 200, 241)


def entry240_text() -> str:
    """The 3-layer transformer step, built by ``transformer_pair.py`` in a child (XLA flags are read once)."""
    folder = Path(tempfile.gettempdir()) / "xlainspect-bench" / "render-entry240"
    path = folder / "unrolled.txt"
    if not path.is_file():
        print(f"building a 3-layer transformer step into {folder} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(BENCH_DIR / "transformer_pair.py"), str(folder), "--layers", "3",
                        "--variants", "unrolled"], check=True, stdout=sys.stderr,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return path.read_text(encoding="utf-8")


def case_text(case: str, min_instructions: int) -> str:
    if case == "entry240":
        return entry240_text()
    min_mb = 15.0 if case == "unrolled15mb" else round(min_instructions * MB_PER_INSTRUCTION * 1.05, 1)
    return load_module_text(default_cache_path(min_mb), min_mb)


def svg_size(svg: str) -> str:
    found = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    return f"{float(found[1]):.0f}x{float(found[2]):.0f} pt" if found else "?"


def run_case(case: str, text: str, unbudgeted_limit: float) -> bool:
    """Times one case and prints its lines; True when it met the target."""
    from xlainspect import parse_hlo
    from xlainspect.output.render import DotTimeout, dot_to_svg, kernel_graph, render_svg

    start = time.perf_counter()
    module = parse_hlo(text)
    parsed = time.perf_counter()
    kernel_graph(module)
    chosen = time.perf_counter()
    svg, rendering = render_svg(module)
    drawn = time.perf_counter()
    total = (parsed - start) + (drawn - chosen)  # parse + one render_svg (which chooses again, then runs dot)
    cost = rendering.cost
    print(f"{case}: {module.instruction_count:,} instructions ({len(text) / 1e6:.1f} MB), "
          f"{rendering.total_nodes:,} drawable nodes in {rendering.computation}")
    print(f"  drew {len(rendering.nodes)} nodes, {cost.edges} edges, {len(rendering.clusters)} clusters, edge labels "
          f"{'on' if rendering.edge_labels else 'off'}; estimated layout work {cost.work:,}, {cost.ranks} ranks; "
          f"SVG {svg_size(svg)}{', SIMPLIFIED after a timeout' if rendering.simplified else ''}")
    for note in rendering.left_out:
        print(f"    not shown: {note}")
    print(f"  parse {parsed - start:.2f} s, choose {chosen - parsed:.2f} s, render (choose + dot) "
          f"{drawn - chosen:.2f} s, total {total:.2f} s (target under {TARGET_S:.0f} s: "
          f"{'met' if total < TARGET_S else 'MISSED'})")
    unbudgeted = unbudgeted_dot(module)
    before = time.perf_counter()
    try:
        old_svg = dot_to_svg(unbudgeted.dot, unbudgeted_limit)
        old_s = time.perf_counter() - before
        print(f"  as drawn before the budget ({len(unbudgeted.nodes)} nodes, edge labels, work "
              f"{unbudgeted.cost.work:,}): dot {old_s:.2f} s, {old_s / max(drawn - chosen, 1e-9):.1f}x the budgeted "
              f"render; SVG {svg_size(old_svg)}")
    except DotTimeout:
        print(f"  as drawn before the budget ({len(unbudgeted.nodes)} nodes, edge labels, work "
              f"{unbudgeted.cost.work:,}): dot did not finish within {unbudgeted_limit:g} s (stopped), over "
              f"{unbudgeted_limit / max(drawn - chosen, 1e-9):.0f}x the budgeted render")
    return total < TARGET_S


def unbudgeted_dot(module):
    """The drawing as ``render`` chose it before the layout budget: nothing dropped for ``dot``'s sake, no width cap,
    no iteration caps, no size (cuts and collapses by ``max_nodes`` only)."""
    from xlainspect.output import layout
    from xlainspect.output.render import SCREEN_SIZE_IN, RenderOptions, kernel_graph

    fits = layout.LayoutCost.fits
    layout.LayoutCost.fits = lambda self, budget, max_width_in=None: True  # type: ignore[method-assign]
    try:
        rendering = kernel_graph(module, RenderOptions())
    finally:
        layout.LayoutCost.fits = fits  # type: ignore[method-assign]
    dot = re.sub(r'\s*(nslimit1?=4|size="' + re.escape(SCREEN_SIZE_IN) + '")', "", rendering.dot)
    return replace(rendering, dot=dot)


def calibrate(text: str) -> None:
    """dot's time against the estimated work, on cuts of the entry around its costliest kernel, in each style."""
    from xlainspect import parse_hlo
    from xlainspect.output import render

    module = parse_hlo(text)
    entry = module.entry
    names = [i.name for i in entry.instructions if i.opcode not in render._PASS_THROUGH or i.is_root]
    edges = render._edges(entry, set(names))
    centre = render._costliest(module, [entry.by_name[n] for n in names], {})
    options = render.RenderOptions()
    print("nodes  clusters  labels    work  virtual  ranks  width_in  dot_s")
    for size in CALIBRATION_SIZES:
        cut, _ = render._neighbourhood(names, edges, centre, None, size)
        for style in render._STYLES:
            cost = render._cost(module, entry, cut, edges, style, options)
            dot, clusters = render._draw(module, entry, cut, edges, style, options, [], False, False)
            start = time.perf_counter()
            try:
                render.dot_to_svg(dot, 60)
                took = f"{time.perf_counter() - start:.2f}"
            except render.DotTimeout:
                took = ">60"
            print(f"{len(cut):5d}  {len(clusters):8d}  {style.edge_labels!s:6}  {cost.work:6,}  {cost.virtual_nodes:7,}"
                  f"  {cost.ranks:5d}  {cost.width_in:8.1f}  {took:>5}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--min-instructions", type=int, default=100_000)
    parser.add_argument("--unbudgeted-limit", type=float, default=60.0,
                        help="seconds dot may take on the drawing without the budget (default 60)")
    parser.add_argument("--calibrate", action="store_true", help="print dot's time against the estimated work")
    args = parser.parse_args(argv)
    if args.calibrate:
        calibrate(entry240_text())
        return 0
    cases = [c for c in args.cases.split(",") if c]
    if not cases or set(cases) - set(CASES):
        parser.error(f"--cases: expected some of {', '.join(CASES)}, got {args.cases}")
    met = [run_case(case, case_text(case, args.min_instructions), args.unbudgeted_limit) for case in cases]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
