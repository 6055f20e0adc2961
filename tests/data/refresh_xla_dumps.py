"""Re-make ``tests/data/jax-<version>/``: a few real dumps of the running jax, and its XLA parser's verdict on them.

The XLA-oracle tests (``tests/test_parse_oracle.py``) compare xlainspect's parser with XLA's on the dumps of each
jax version xlainspect supports. A test run has one jax, so each version's dumps are committed together with what
that version's XLA parser made of them (``xla_summaries.json``): the comparison then holds for every version, with
whichever jax (or none) is installed, and a run under the version that made them checks the record is still true.

Usage, once per supported jax (each from its own environment)::

    .venv/bin/python tests/data/refresh_xla_dumps.py       # jax 0.10.2 -> tests/data/jax-0.10.2/
    .venv312/bin/python tests/data/refresh_xla_dumps.py    # jax 0.12.0.1 -> tests/data/jax-0.12.0.1/

It runs ``tests/programs/make_dumps.py`` on the CPU and, when jax's CUDA plugin is installed, deviceless for the
H100 of ``shared/gpu_specs/h100.txtpb``; copies the modules named in :data:`SELECTED` without their module numbers
(which depend on what else JAX compiled); makes the absolute path of ``make_dumps.py`` in their ``FileNames`` tables
relative to the repository; and writes XLA's summaries one module a line, each instruction a list of its fields (no text), to keep the folder small.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent
REPO = DATA.parents[1]
MAKE_DUMPS = REPO / "tests" / "programs" / "make_dumps.py"
H100 = REPO.parent / "shared" / "gpu_specs" / "h100.txtpb"

# Modules to keep, by the dump file name after its `module_NNNN.` prefix, and why each: the places jax 0.11's XLA
# writes new syntax (`%t#i` operands, named shardings, `order=`), and their jax 0.10 spelling.
SELECTED = (
    "jit_loops_and_branches.before_optimizations.txt",  # while and conditional bodies reading tuple elements
    "jit_loops_and_branches.cpu_after_optimizations.txt",  # the same, fused
    "jit_logged_loop.cpu_after_optimizations.txt",  # an io_callback custom-call with tuple elements as operands
    "jit_branches.before_optimizations.txt",  # a 3-way switch on a tuple, the rbg PRNG, a triangular solve
    "jit_sorting.before_optimizations.txt",  # the comparators' total order (`type=TOTALORDER`, later `order=TOTAL`)
    "jit_per_shard.cpu_after_optimizations.txt",  # collectives over 8 devices, mesh shardings
    "jit_with_callbacks.cpu_after_optimizations.txt",  # a pure_callback placed on one device
    "jit_loops_and_branches.sm_9.0a_gpu_after_optimizations.txt",  # XLA:GPU for an H100, deviceless
)


def _dump(outdir: Path, gpu: bool) -> None:
    command = [sys.executable, str(MAKE_DUMPS), str(outdir)] + (["--gpu", str(H100)] if gpu else [])
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(command, check=True, env=env, capture_output=True, text=True)


def main() -> int:
    import jaxlib

    sys.path.insert(0, str(REPO / "tests"))
    import xla_oracle

    target = DATA / f"jax-{jaxlib.__version__}"
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cpu, gpu = Path(tmp) / "cpu", Path(tmp) / "gpu"
        _dump(cpu, gpu=False)
        if importlib.util.find_spec("jax_plugins.xla_cuda12") is not None and H100.is_file():
            _dump(gpu, gpu=True)
        found = {re.sub(r"^module_\d+\.", "", p.name): p for d in (cpu, gpu) if d.is_dir() for p in d.iterdir()}
        for name in SELECTED:
            if name not in found:
                print(f"refresh_xla_dumps: no {name} (GPU dumps need jax[cuda12])", file=sys.stderr)
                continue
            text = found[name].read_text().replace(f'"{REPO}/', '"')
            (target / name).write_text(text)
    paths = sorted(target.glob("*.txt"))
    results = xla_oracle.xla_summaries([p.read_text() for p in paths])
    summaries = {}
    for path, result in zip(paths, results, strict=True):
        if not result.ok:
            raise SystemExit(f"refresh_xla_dumps: XLA cannot parse its own dump {path.name}: {result.error}")
        summaries[path.name] = xla_oracle.packed_summary(result.summary)
    record = {"jaxlib": jaxlib.__version__, "fields": list(xla_oracle.FIELDS), "summaries": summaries}
    lines = [f"{json.dumps(name)}: {json.dumps(summary, separators=(',', ':'))}" for name, summary in summaries.items()]
    (target / "xla_summaries.json").write_text(
        f'{{"jaxlib": {json.dumps(record["jaxlib"])}, "fields": {json.dumps(record["fields"])},\n"summaries": {{\n'
        + ",\n".join(lines) + "\n}}\n")
    print(f"refresh_xla_dumps: {len(paths)} dumps and XLA's summaries in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
