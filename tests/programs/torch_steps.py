"""Run programs' PyTorch steps on given inputs, in the PyTorch environment (``.venv-torch/``), for the test suite.

The test process (``.venv/``) has no torch: PyTorch's CUDA wheels pin NVIDIA libraries older than the ones jax's CUDA
plugin needs, so the two cannot share an environment. The tests write each case's inputs to an ``.npz`` file and a
request listing the cases; this script builds every step once, runs it once on its inputs, and writes the outputs to
``<out>/<case id>.npz``. One child per framework keeps the suite fast: torch and torch_xla import once, not once per
program.

Usage::

    .venv-torch/bin/python tests/programs/torch_steps.py REQUEST.json OUT_DIR

REQUEST.json holds a list of cases: ``{"id", "program", "framework", "batch_size", "dtype", "hyperparameters",
"inputs"}`` (``inputs``: an ``.npz`` path, its arrays named as the program's inputs). The last line of stdout is a
JSON object: ``{"versions": {...}, "cases": {id: {"seconds": build and first run} or {"error": its last line}}}``. A
failing case is recorded and the others still run (one framework bug must not hide the rest); its test fails with
that error, never passes for want of a result.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PJRT_DEVICE", "CPU")  # PyTorch/XLA on the CPU, before torch_xla is imported


def run_case(case: dict, out_dir: Path) -> float:
    """Builds and runs one case's step, writes its outputs; returns the seconds both took."""
    from xlainspect.programs import get_program

    program = get_program(case["program"])
    if case.get("hyperparameters"):
        program = program.with_hyperparameters(**case["hyperparameters"])
    with np.load(case["inputs"]) as stored:
        inputs = {spec.name: stored[spec.name] for spec in program.input_specs(case["batch_size"])}
    start = time.perf_counter()
    step = program.torch_step(case["framework"], batch_size=case["batch_size"], dtype=case["dtype"])
    outputs = step(inputs)
    seconds = time.perf_counter() - start
    np.savez(out_dir / f"{case['id']}.npz", **dict(zip(program.output_names, outputs)))
    return seconds


def main(argv: list[str]) -> int:
    request, out_dir = Path(argv[1]), Path(argv[2])
    cases = json.loads(request.read_text())
    timings = {}
    for case in cases:
        try:
            timings[case["id"]] = {"seconds": run_case(case, out_dir)}
        except Exception as e:  # recorded for the case's test, which fails with it
            timings[case["id"]] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    versions = {name: importlib.metadata.version(name) for name in ("torch", "torch_xla", "opacus", "numpy")
                if _installed(name)}
    print(json.dumps({"versions": versions, "cases": timings}))
    return 0


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
