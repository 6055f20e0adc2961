"""Running PyTorch code from the test suite: in the PyTorch environment's interpreter, never in the test process.

The tests run in ``.venv/``, which has no torch: torch 2.9.0's CUDA wheels pin NVIDIA libraries older than the ones
jax's CUDA plugin in ``.venv/`` needs, so PyTorch lives in ``.venv-torch/`` (``make torch-env``). A test marked
``requires_torch`` or ``requires_torch_xla`` hands its PyTorch work to that interpreter through
:func:`run_torch_python` and reads back JSON (and ``.npz`` files it names).

Where the environment is missing, those tests skip with the command that makes it, except where it is required
(``CI=true``, or ``XLAINSPECT_REQUIRE_TORCH=1`` as ``.ci/run`` sets): there a missing environment fails the run, as a
missing HLO corpus does, so that CI never passes with the PyTorch tests silently skipped.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TORCH_PYTHON_VARIABLE = "XLAINSPECT_TORCH_PYTHON"
REQUIRE_TORCH_VARIABLE = "XLAINSPECT_REQUIRE_TORCH"
# What each marker needs importable in the PyTorch environment.
MARKER_PACKAGES = {"requires_torch": ("torch", "opacus"), "requires_torch_xla": ("torch", "torch_xla")}


def torch_python() -> Path:
    """The PyTorch environment's interpreter: ``$XLAINSPECT_TORCH_PYTHON``, else ``.venv-torch/bin/python``."""
    override = os.environ.get(TORCH_PYTHON_VARIABLE)
    return Path(override) if override else REPO / ".venv-torch" / "bin" / "python"


def torch_required() -> bool:
    """Whether a missing PyTorch environment fails the run instead of skipping its tests (on CI)."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRE_TORCH_VARIABLE) == "1"


@functools.cache
def _missing_packages(python: Path) -> tuple[str, ...] | None:
    """The packages of MARKER_PACKAGES that ``python`` cannot find; None when ``python`` does not run at all."""
    packages = sorted({name for names in MARKER_PACKAGES.values() for name in names})
    try:
        result = subprocess.run([str(python), "-c", "import importlib.util, sys; print(' '.join(name for name in "
                                 "sys.argv[1:] if importlib.util.find_spec(name) is None))", *packages],
                                capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return tuple(result.stdout.split())


def torch_environment_problem(packages: tuple[str, ...] = ("torch", "torch_xla", "opacus")) -> str | None:
    """Why ``packages`` cannot run in the PyTorch environment, in one line; None when they can."""
    python = torch_python()
    if not python.exists():
        return f"no PyTorch environment at {python}: run 'make torch-env' (or set {TORCH_PYTHON_VARIABLE})"
    missing = _missing_packages(python)
    if missing is None:
        return f"{python} does not run: run 'make torch-env' (or set {TORCH_PYTHON_VARIABLE})"
    absent = [name for name in packages if name in missing]
    if absent:
        return f"{', '.join(absent)} not installed for {python}: run 'make torch-env'"
    return None


def run_torch_python(args: list[str], *, timeout: float, cwd: Path | None = None) -> dict[str, Any]:
    """Runs ``python ARGS`` under the PyTorch environment's interpreter with the checkout on ``PYTHONPATH``.

    Returns the JSON object the child prints as its last line of stdout. A child that fails, or prints no JSON,
    raises ``AssertionError`` with its output, so that a broken child fails the test rather than skipping it.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO), PJRT_DEVICE="CPU", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XLA_FLAGS", None)  # the test process's flags (dump folders) are not the child's
    result = subprocess.run([str(torch_python()), *args], capture_output=True, text=True, timeout=timeout,
                            env=env, cwd=cwd or REPO, check=False)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, (f"{torch_python()} {' '.join(args)} failed with status "
                                              f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
    return json.loads(lines[-1])
