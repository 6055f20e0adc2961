"""Tests for running frameworks under another interpreter (``--python``, ``$XLAINSPECT_PYTHON``) and for the jax
versions xlainspect supports: the "what did my upgrade change?" recipe, end to end with jax 0.10.2 beside today's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.runners import jax_private
from xlainspect.runners.capture import dump_directory, dump_program
from xlainspect.runners.children import PYTHON_ENV, child_python
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
REQUIRE_COMPAT_VARIABLE = "XLAINSPECT_REQUIRE_COMPAT"


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


# -- choosing the interpreter ---------------------------------------------------------------------------------------


def test_without_a_choice_children_run_under_this_interpreter(monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    assert child_python() == sys.executable


def test_the_environment_variable_chooses_when_no_option_does(monkeypatch, tmp_path):
    other = _script(tmp_path / "python", "echo 3 12")
    monkeypatch.setenv(PYTHON_ENV, other)
    assert child_python() == other
    option = _script(tmp_path / "python-option", "echo 3 11")
    assert child_python(option) == option  # the option wins over the variable


def test_a_missing_interpreter_is_one_line(monkeypatch, tmp_path):
    with pytest.raises(InputError) as caught:
        child_python(str(tmp_path / "nope" / "python"))
    assert str(caught.value) == (f"--python {tmp_path}/nope/python: no such Python interpreter; give the path of a "
                                 "virtual environment's bin/python that has the framework installed")
    monkeypatch.setenv(PYTHON_ENV, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=rf"^{PYTHON_ENV}={tmp_path}/gone: no such Python interpreter"):
        child_python()


def test_an_interpreter_that_is_too_old_or_not_python_is_refused(tmp_path):
    with pytest.raises(InputError) as caught:
        child_python(_script(tmp_path / "python3.10", "echo 3 10"))
    assert str(caught.value).endswith("python3.10: Python 3.10 is too old; framework children need Python 3.11 "
                                      "or newer")
    with pytest.raises(InputError) as caught:
        child_python(_script(tmp_path / "notpython", "echo 'bad interpreter' >&2; exit 1"))
    assert str(caught.value).endswith("notpython: it did not run as Python (bad interpreter); give a working "
                                      "Python interpreter")


def test_the_cli_refuses_a_bad_interpreter_before_compiling(tmp_path, capsys):
    status = main(["dump", "--program", "matvec", "--out", str(tmp_path / "d"), "--python", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert status == 1
    assert err == f"xlainspect: --python {tmp_path}/nope: no such Python interpreter; give the path of a virtual " \
                  "environment's bin/python that has the framework installed\n"
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", [["time", "--program", "matvec"], ["memory", "--program", "matvec"],
                                     ["memory", "max-batch", "--program", "dpsgd_ffnn", "--device-memory", "1GiB"]])
def test_time_and_memory_take_python_too(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--python", str(tmp_path / "nope")]) == 1
    assert list(tmp_path.iterdir()) == []  # refused before anything was made (max-batch's results folder)
    assert capsys.readouterr().err == (f"xlainspect: --python {tmp_path}/nope: no such Python interpreter; give the "
                                       "path of a virtual environment's bin/python that has the framework installed\n")


# -- supported jax versions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "supported"), [
    ("0.10.2", True), ("0.11.0", True), ("0.12.0.1", True), ("0.12.9", True),
    ("0.10.1", False), ("0.9.2", False), ("0.13.0", False), ("1.0.0", False)])
def test_supported_range(version, supported):
    assert (jax_private.unsupported_reason(version) is None) == supported


def test_an_unsupported_jax_is_one_line_from_the_child(tmp_path, monkeypatch):
    fake = tmp_path / "fake" / "jax"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '0.9.2'\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    outcome = dump_program("matvec", ("jax",), tmp_path / "dumps")
    assert outcome.dumps == ()
    assert [failure.message for failure in outcome.failures] == [
        "jax: jax 0.9.2 is not supported; xlainspect supports jax 0.10.2 to 0.12.x (pip install "
        "'jax>=0.10.2,<0.13', or point --python at an environment that has one)"]


def test_a_framework_missing_from_the_other_interpreter_names_it(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    outcome = dump_program("matvec", ("jax",), tmp_path / "dumps", python=python)
    assert [failure.message for failure in outcome.failures] == [
        f"jax is not installed for {python}; install it there ({python} -m pip install jax jaxlib numpy) or "
        "choose another --python"]


# -- the upgrade recipe, with a real jax 0.10.2 environment -------------------------------------------------------


@pytest.fixture(scope="session")
def old_jax_python() -> str:
    """The interpreter of an environment with jax 0.10.2 and no xlainspect (``make compat-env`` makes one)."""
    python = os.environ.get("XLAINSPECT_OLD_JAX_PYTHON") or str(REPO / ".venv-jax0.10" / "bin" / "python")
    if not Path(python).exists():
        if os.environ.get(REQUIRE_COMPAT_VARIABLE) == "1":
            pytest.fail(f"{python} is missing but {REQUIRE_COMPAT_VARIABLE}=1: run 'make compat-env'")
        pytest.skip(f"no jax 0.10.2 environment at {python}: run 'make compat-env'")
    return python


@pytest.mark.slow
@pytest.mark.requires_jax
def test_upgrade_recipe_names_both_versions(old_jax_python, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the manifest names the interpreter relative to the working folder
    has_xlainspect = subprocess.run([old_jax_python, "-c", "import xlainspect"], capture_output=True, check=False,
                                    cwd=tmp_path)  # not the checkout's folder, which python -c would import from
    assert has_xlainspect.returncode != 0, "the old environment must not have xlainspect: the child brings its own"
    old, new = tmp_path / "old", tmp_path / "new"
    assert main(["dump", "--program", "linear_grad", "--framework", "jax", "--out", str(old),
                 "--python", old_jax_python]) == 0
    assert dump_program("linear_grad", ("jax",), new, python=sys.executable).failures == ()
    old_dump, new_dump = (dump_directory(root, "cpu", "linear_grad", "jax") for root in (old, new))
    old_manifest, new_manifest = (DumpManifest.read(d / "manifest.json") for d in (old_dump, new_dump))

    versions = subprocess.run([old_jax_python, "-c", "import jaxlib, platform; print(jaxlib.__version__, "
                               "platform.python_version())"], capture_output=True, text=True, check=True, cwd=tmp_path)
    jaxlib_version, python_version = versions.stdout.split()
    assert (old_manifest.xla_version, old_manifest.python) == (f"jaxlib {jaxlib_version}", python_version)
    assert old_manifest.interpreter == os.path.relpath(old_jax_python, REPO)
    assert f"--python {old_manifest.interpreter}" in old_manifest.regenerate
    assert new_manifest.xla_version != old_manifest.xla_version

    capsys.readouterr()
    assert main(["diff", str(old_dump), str(new_dump)]) == 0
    out = capsys.readouterr().out
    assert (f"compiled by different XLA versions ({old_manifest.xla_version} vs {new_manifest.xla_version})"
            in out.splitlines()[-1])
    # Negative: two dumps from one interpreter are not said to differ in version.
    again = tmp_path / "again"
    assert dump_program("linear_grad", ("jax",), again, python=old_jax_python).failures == ()
    capsys.readouterr()
    assert main(["diff", str(old_dump), str(dump_directory(again, "cpu", "linear_grad", "jax"))]) == 0
    assert "different XLA versions" not in capsys.readouterr().out
