"""Folders that XLA's own ``--xla_dump_to`` wrote, read as they are: every module file, none of XLA's side files,
and the program's own module picked for commands that read one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlainspect import read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.hlo.files import hlo_files, is_dumped_module, main_module_file

# A user's program, not a built-in: its jit compiles helper modules (conversions, broadcasts) beside the step.
PROGRAM = textwrap.dedent("""\
    import jax, jax.numpy as jnp

    def users_step(w, x):
        def loss(w):
            return jnp.mean(jnp.tanh(x @ w) ** 2)
        return w - 0.1 * jax.grad(loss)(w)

    w = jnp.ones((8, 4), jnp.float32) * 0.5
    x = jnp.arange(16 * 8, dtype=jnp.float32).reshape(16, 8) / 100
    print(jax.jit(users_step)(w, x).shape)
    """)


@pytest.fixture(scope="module")
def raw_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What XLA writes for the program with the real dump flags, side files and all, uncurated."""
    folder = tmp_path_factory.mktemp("xla_dump")
    script = folder.parent / "users_program.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={folder} --xla_dump_hlo_as_text", JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, str(script)], check=True, env=env, capture_output=True, timeout=300)
    return folder


@pytest.mark.requires_jax
def test_every_module_file_is_read_and_no_side_file(raw_dump):
    names = sorted(p.name for p in raw_dump.iterdir())
    side_files = [n for n in names if n.endswith(("-live-range.txt", "-buffer-assignment.txt",
                                                  "-memory-usage-report.txt"))]
    assert side_files and any(n.endswith("debug_options") for n in names)  # XLA's side files are really there
    modules = [n for n in names if n.endswith(("before_optimizations.txt", "after_optimizations.txt"))]
    assert len(modules) >= 4  # the step and at least one helper, each before and after optimization
    assert [p.name for p in hlo_files([str(raw_dump)])] == modules
    assert main(["stats", str(raw_dump)]) == 0


@pytest.mark.requires_jax
def test_the_users_step_is_the_module_read_from_the_folder(raw_dump, tmp_path, capsys):
    chosen = main_module_file(raw_dump)
    assert chosen.name.endswith(".jit_users_step.cpu_after_optimizations.txt")
    helpers = [p for p in raw_dump.glob("*after_optimizations.txt") if "users_step" not in p.name]
    assert helpers  # there was a choice to make
    assert main(["render", str(raw_dump), "-o", str(tmp_path / "step.svg")]) == 0
    assert "of main" in capsys.readouterr().out
    svg = (tmp_path / "step.svg").read_text()
    for kernel in census(read_hlo(chosen)[0]).kernels:
        assert kernel.name in svg
    # diff takes the folder as it takes the module file: the same kernels.
    assert main(["diff", str(raw_dump), str(chosen), "--fail-on-diff"]) == 0
    assert "jit_users_step" in capsys.readouterr().out.splitlines()[0]


def test_side_files_are_told_from_modules_by_name_and_content(tmp_path):
    (tmp_path / "m.cpu_after_optimizations-live-range.txt").write_text("HloLiveRange (max 5):\n  0:w.1\n")
    (tmp_path / "notes.txt").write_text("HloLiveRange (max 5):\n")  # a module's name, not its content
    (tmp_path / "c.txt").write_text("%c (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}\n")
    assert [p.name for p in sorted(tmp_path.iterdir()) if is_dumped_module(p)] == ["c.txt"]


def test_a_folder_without_modules_is_one_line(tmp_path, capsys):
    (tmp_path / "m.debug_options").write_text("xla_dump_to: x\n")
    assert main(["render", str(tmp_path), "-o", str(tmp_path / "x.svg")]) == 1
    assert capsys.readouterr().err == (f"xlainspect: {tmp_path}: no after_optimizations.txt here, nor XLA's "
                                       "*after_optimizations.txt modules; give an HLO file, a folder 'xlainspect "
                                       "dump' filed, or one that --xla_dump_to wrote\n")
