"""``xlainspect demo`` (what ``make demo`` runs): the main job end to end, and it never touches a user's folder."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from xlainspect.cli import main
from xlainspect.demo import run_demo
from xlainspect.errors import InputError


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_demo_dumps_diffs_draws_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict: A has 3 kernels" in printed or "verdict: same kernels" in printed
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
