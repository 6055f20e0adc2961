"""``xlainspect demo`` (what ``make demo`` runs): the main job end to end, and it never touches a user's folder."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from references import REPO, reference_dumps

from xlainspect import read_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.cli import main
from xlainspect.demo import run_demo
from xlainspect.errors import InputError
from xlainspect.runners.manifest import DumpManifest


def reference_verdict() -> str:
    """The verdict on the committed linear_grad dumps that the children's frameworks reproduce (test_capture)."""
    folders = [reference_dumps("cpu") / "linear_grad" / "jax", REPO / "dumps" / "cpu" / "linear_grad" / "tf"]
    censuses = [census(read_hlo(folder / "after_optimizations.txt")[0]) for folder in folders]
    versions = [DumpManifest.read(folder / "manifest.json").xla_version for folder in folders]
    return diff_census(*censuses, *versions).verdict()


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_demo_dumps_diffs_draws_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # JAX and TF compile the MSE gradient differently: JAX leaves the dot unfused, TF fuses the bias add into it.
    verdict = reference_verdict()
    assert verdict.startswith("A has 3 kernels (3 launches), B has 3 (3 launches): 0 identical, 0 same math with a "
                              "different layout, 2 similar, 1 only in A, 1 only in B; "), verdict
    assert f"verdict: {verdict}\n" in printed
    for framework in ("jax", "tf"):
        assert (out / "cpu" / "linear_grad" / framework / "after_optimizations.txt").is_file()
        ET.parse(out / f"linear_grad-{framework}.svg")  # valid XML
    assert "<h2>Kernel graphs</h2>" in (out / "linear_grad-report.html").read_text()
    # Its own folder it may replace on a re-run; the marker says whose it is.
    assert (out / ".xlainspect-demo").is_file()


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(InputError, match="exists and is not a demo folder"):
        list(run_demo(str(tmp_path)))
    assert (tmp_path / "mine.txt").read_text() == "a user's file"


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_every_next_step_the_demo_suggests_runs(tmp_path, monkeypatch, capsys):
    import re
    import shutil

    from xlainspect.cli import main
    from xlainspect.demo import NEXT_STEPS

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "dumps", tmp_path / "dumps")  # a fresh clone's committed dumps, in a folder of our own
    monkeypatch.chdir(tmp_path)
    commands = re.findall(r"'xlainspect ([^']+)'", NEXT_STEPS)
    assert len(commands) == 4
    for command in commands[:2]:  # time and memory are exercised by their own tests
        assert main(command.split()) == 0, command
    assert (tmp_path / "my-dumps" / "cpu" / "dpsgd_mnist" / "jax" / "after_optimizations.txt").is_file()
    capsys.readouterr()
