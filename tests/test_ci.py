"""The CI switch that makes a missing HLO corpus a failure instead of a silent skip of the XLA-oracle tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_pytest(shared: str, require: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XLAINSPECT_SHARED": shared, "XLAINSPECT_REQUIRE_CORPUS": require}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "tests/test_import.py"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_missing_corpus_fails_the_run_when_ci_requires_it(tmp_path):
    missing = str(tmp_path / "no-shared")
    result = run_pytest(missing, "1")
    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"xlainspect: the HLO corpus is required (XLAINSPECT_REQUIRE_CORPUS=1) but {missing}/hlo-corpus/ is "
            "missing or empty") in result.stderr
    # Without the switch, as on a developer's machine, the same checkout runs and the oracle tests would skip.
    assert run_pytest(missing, "").returncode == 0


def test_ci_sets_the_switch():
    assert "export XLAINSPECT_REQUIRE_CORPUS=1" in (REPO / ".ci" / "run").read_text()
