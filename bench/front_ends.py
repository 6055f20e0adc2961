"""The three XLA front ends' modules side by side: kernels, launches, bytes and FLOPs of every program's filed CPU dump.

Reads ``dumps/<backend>/<program>/{jax,tf,torch_xla}/after_optimizations.txt`` (what ``xlainspect dump`` filed) and
prints a Markdown table, the one in docs/pytorch.md. A missing dump is a dash, never a guess.

    python bench/front_ends.py [--dumps dumps] [--backend cpu]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xlainspect.analysis.census import census
from xlainspect.hlo import read_hlo
from xlainspect.programs import PROGRAMS

FRONT_ENDS = ("jax", "tf", "torch_xla")


def _cell(path: Path) -> str:
    if not path.is_file():
        return "-"
    counted = census(read_hlo(path)[0])
    return (f"{counted.kernel_count} / {counted.launches} / {counted.bytes_read / 1e6:.1f} MB / "
            f"{counted.flops / 1e6:.1f} MFLOP")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dumps", default="dumps")
    parser.add_argument("--backend", default="cpu")
    options = parser.parse_args()
    print("| program | " + " | ".join(FRONT_ENDS) + " |")
    print("| --- |" + " --- |" * len(FRONT_ENDS))
    for program in PROGRAMS:
        folder = Path(options.dumps) / options.backend / program
        print(f"| {program} | " + " | ".join(_cell(folder / f / "after_optimizations.txt") for f in FRONT_ENDS) + " |")
    print("\ncells: kernels / launches per step / bytes read / FLOPs of contractions")


if __name__ == "__main__":
    main()
