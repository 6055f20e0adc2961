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


def test_ci_requires_the_compatibility_environment():
    run = (REPO / ".ci" / "run").read_text()
    assert "export XLAINSPECT_REQUIRE_COMPAT=1" in run
    assert "COMPAT_PYTEST_ARGS=" in run  # the jax 0.10.2 run writes its own report, which CI checks ran


def _fake_bin(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("#!/bin/sh\n" + body + "\n")
    (folder / name).chmod(0o755)


def _make_venv_dry_run(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """``make -n venv`` with only ``bin_dir`` and the system's folders on PATH: which Python would make .venv."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHON", "PYENV_VERSION")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(["make", "--no-print-directory", "-n", "venv", f"VENV={tmp_path}/v"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_make_finds_python_312_through_pyenv_when_the_shim_fails(tmp_path):
    bin_dir, root = tmp_path / "bin", tmp_path / "pyenv-root"
    _fake_bin(bin_dir, "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127")  # pyenv's shim
    _fake_bin(bin_dir, "pyenv", f'case "$1" in root) echo {root};; versions) printf "3.11.7\\n3.12.1\\n3.12.10\\n";; '
                                "esac")
    for version in ("3.12.1", "3.12.10"):
        _fake_bin(root / "versions" / version / "bin", "python3", "exit 0")  # answers the version check
    result = _make_venv_dry_run(tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert f"{root}/versions/3.12.10/bin/python3 -m venv {tmp_path}/v" in result.stdout  # the newest 3.12


def test_make_says_how_to_get_python_312_when_there_is_none(tmp_path):
    bin_dir = tmp_path / "bin"
    _fake_bin(bin_dir, "python3.12", "exit 127")
    _fake_bin(bin_dir, "pyenv", "exit 1")
    result = subprocess.run(["bash", "-c", _make_venv_dry_run(tmp_path, bin_dir).stdout.splitlines()[0]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("xlainspect: Python 3.12 not found (neither python3.12 on PATH nor in pyenv); install "
                             "it (e.g. 'pyenv install 3.12') or run make with PYTHON=/path/to/python3.12\n")


def _pytest_with_torch_python(python: str, ci: str, require: str, target: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "XLAINSPECT_REQUIRE_TORCH")}
    env.update(XLAINSPECT_TORCH_PYTHON=python, CI=ci, XLAINSPECT_REQUIRE_TORCH=require)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:xdist", target], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_missing_torch_environment_fails_the_run_on_ci(tmp_path):
    missing = str(tmp_path / "no-venv" / "bin" / "python")
    message = (f"xlainspect: the PyTorch environment is required (CI=true or XLAINSPECT_REQUIRE_TORCH=1) but no "
               f"PyTorch environment at {missing}: run 'make torch-env' (or set XLAINSPECT_TORCH_PYTHON)")
    for ci, require in (("true", ""), ("", "1")):
        result = _pytest_with_torch_python(missing, ci, require, "tests/test_import.py")
        assert result.returncode == 4, result.stdout + result.stderr
        assert message in result.stderr


def test_a_missing_torch_environment_skips_its_tests_elsewhere(tmp_path):
    missing = str(tmp_path / "no-venv" / "bin" / "python")
    result = _pytest_with_torch_python(missing, "", "", "tests/test_torch_programs.py::test_opacus_clips_at_c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert f"no PyTorch environment at {missing}: run 'make torch-env'" in result.stdout


def test_ci_requires_the_torch_environment():
    assert "export XLAINSPECT_REQUIRE_TORCH=1" in (REPO / ".ci" / "run").read_text()
