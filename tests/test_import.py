"""``import xlainspect`` must stay light: no jax, tensorflow, networkx or graphviz until a command needs them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("jax", "jaxlib", "tensorflow", "networkx", "graphviz", "matplotlib", "numpy")


def test_import_loads_no_heavy_package():
    code = "import sys, json, xlainspect, xlainspect.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == []


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "xlainspect", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("xlainspect, version ")
