"""How long drawing the kernel graph of a 100,000-instruction module takes (target: under 10 s on this machine).

Builds (or reuses from the cache that ``parse_speed.py`` shares) a real optimized module, a transformer training
step compiled by JAX, large enough to hold at least ``--min-instructions`` instructions, then times each stage of
``xlainspect render``: parsing, choosing what to draw and building its DOT (with the ``graphviz`` package), and
graphviz's ``dot`` laying it out.

Usage::

    python bench/render_speed.py [--min-instructions 100000] [--max-nodes 300] [--out render.svg]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

from bench.parse_speed import default_cache_path, load_module_text  # noqa: E402

TARGET_S = 10.0
MB_PER_INSTRUCTION = 15.5 / 94_224  # measured on the parse benchmark's module: size grows with instructions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-instructions", type=int, default=100_000)
    parser.add_argument("--max-nodes", type=int, default=300)
    parser.add_argument("--out", default=None, help="Keep the SVG here.")
    args = parser.parse_args(argv)

    from xlainspect import parse_hlo
    from xlainspect.output.render import RenderOptions, dot_to_svg, kernel_graph

    min_mb = round(args.min_instructions * MB_PER_INSTRUCTION * 1.05, 1)
    text = load_module_text(default_cache_path(min_mb), min_mb)
    start = time.perf_counter()
    module = parse_hlo(text)
    parsed = time.perf_counter()
    rendering = kernel_graph(module, RenderOptions(max_nodes=args.max_nodes))
    chosen = time.perf_counter()
    svg = dot_to_svg(rendering.dot)
    drawn = time.perf_counter()
    if args.out:
        Path(args.out).write_text(svg, encoding="utf-8")
    total = drawn - start
    print(f"module: {module.instruction_count:,} instructions ({len(text) / 1e6:.1f} MB), entry "
          f"{len(module.entry.instructions):,} instructions, {rendering.total_nodes:,} drawable nodes")
    print(f"drew {len(rendering.nodes)} nodes; the picture says what it left out:")
    for note in rendering.left_out:
        print(f"  - {note}")
    print(f"parse {parsed - start:.2f} s, choose and build DOT {chosen - parsed:.2f} s, dot {drawn - chosen:.2f} s, "
          f"total {total:.2f} s (target under {TARGET_S:.0f} s: {'met' if total < TARGET_S else 'MISSED'}); "
          f"SVG {len(svg) / 1e3:.0f} kB")
    if module.instruction_count < args.min_instructions:
        print(f"warning: the module has fewer than {args.min_instructions:,} instructions", file=sys.stderr)
        return 1
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
