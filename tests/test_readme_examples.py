"""The README's "Your own program" section, run as written: every ``xlainspect`` line of its shell blocks, in order,
in a fresh working folder that sees the repository's ``docs/examples``. A command that fails, or an example that
drifts from the code, fails here."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from xlainspect.cli import main

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Your own program\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()
            if line.startswith("xlainspect ")]


def test_the_section_has_examples_of_each_route():
    commands = _commands()
    assert any("--program docs/examples/" in c for c in commands)
    assert any(" -- python " in c for c in commands)
    assert any(c.startswith("xlainspect report") for c in commands)


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.slow
def test_the_readme_examples_run_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs").symlink_to(REPO / "docs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    for command in _commands():
        words = shlex.split(command)[1:]
        words = [sys.executable if word == "python" else word for word in words]
        status = main(words)
        captured = capsys.readouterr()
        assert status == 0, f"{command}: exit {status}\n{captured.err[-2000:]}"
    assert (tmp_path / "regression.html").stat().st_size > 10_000
    assert (tmp_path / "train_step.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert (tmp_path / "dumps" / "run" / "train" / "manifest.json").is_file()


@pytest.mark.requires_jax
@pytest.mark.slow
def test_the_notebook_example_runs_as_written(capsys):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Your own program\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(import jax.*?)```", section, re.S)
    namespace: dict[str, object] = {}
    # `other_step` stands for any other function of the reader's: the step itself, jitted anew.
    exec(compile(block.replace("other_step", "jax.jit(train_step.__wrapped__)"), "README.md", "exec"), namespace)
    result = namespace["result"]
    assert namespace["timing"].median_ms > 0
    assert namespace["svg"].lstrip().startswith(("<?xml", "<svg"))
    html = result._repr_html_()
    assert "<svg" in html and all(kernel.name in html for kernel in result.census.kernels)
