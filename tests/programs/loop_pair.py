"""Write a small transformer's training step twice: layers unrolled, and the same layers in ``jax.lax.scan``.

Tests of ``xlainspect diff`` need a real pair where one side runs a loop body N times and the other spells the N
copies out, to check that loop kernels match their unrolled twins with the launch counts adding up. This script
compiles such a pair quickly (tiny dimensions; what matters is the structure XLA emits, not the tensor sizes) and
writes ``unrolled.txt`` and ``scan.txt`` into OUTDIR, plus the ``manifest.json`` that records how. It fails, naming
the problem, if the scan module lost its loop (no ``while`` whose ``known_trip_count`` is the layer count).

The model, step and variants are those of ``bench/transformer_pair.py`` (imported from this checkout through a path
insert, so there is one definition to keep right); only the sizes are the test's own.

Run it in a fresh process (it sets ``JAX_PLATFORMS=cpu`` before jax is imported)::

    python tests/programs/loop_pair.py OUTDIR [--layers 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # bench/ is a folder of scripts in the checkout, not an installed package.
    sys.path.insert(0, str(REPO_ROOT))

from bench.transformer_pair import build_pair, configure_jax_environment  # noqa: E402  (no jax at import)

SIZES = {"d_model": 32, "n_heads": 2, "d_ff": 128, "seq_len": 8, "batch": 2, "vocab": 64}
"""Model sizes besides the layer count: small enough that both compiles take seconds on two cores."""


def main(argv: list[str] | None = None) -> int:
    """Compile the pair and write it to OUTDIR.

    Args:
        argv: Command-line arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code (a failed build raises, which exits non-zero with a traceback).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder to write unrolled.txt, scan.txt and manifest.json into")
    parser.add_argument("--layers", type=int, default=6, help="decoder blocks, and the scan's trip count (default 6)")
    args = parser.parse_args(argv)
    if args.layers < 2:
        parser.error("--layers must be at least 2: XLA removes a loop of one trip")
    configure_jax_environment(host_devices=False)
    from bench.big_module import ModelConfig

    start = time.perf_counter()
    manifest = build_pair(args.outdir, ModelConfig(n_layers=args.layers, **SIZES), ("unrolled", "scan"))
    sizes = ", ".join(f"{info.file} {info.size_mb * 1e3:.0f} kB" for info in manifest.modules.values())
    print(f"{args.outdir}: {sizes}; {manifest.n_layers} layers, scan while trip counts "
          f"{list(manifest.scan_trip_counts)}; {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
