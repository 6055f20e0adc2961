"""The package as pip builds it: every data file shipped, and setuptools with nothing to warn about (a warning used to
fill 'make demo' with 60 lines)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A wheel built from this checkout as pip builds it (without fetching a build backend: the test extra has it)."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    return next(out.glob("xlainspect-*.whl")), build.stdout + build.stderr


def test_the_wheel_ships_every_module_and_the_gpu_targets(wheel_build):
    wheel, _ = wheel_build
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"xlainspect/runners/targets/h100.txtpb", "xlainspect/runners/targets/a100.txtpb"} <= names
    sources = {str(p.relative_to(REPO)) for p in (REPO / "xlainspect").rglob("*.py")}
    assert sources <= names, sorted(sources - names)


def test_setuptools_has_nothing_to_warn_about(wheel_build):
    _, output = wheel_build
    assert "Warning" not in output and "would be ignored" not in output, output
