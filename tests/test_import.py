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


def test_every_stage_imports_without_a_heavy_package():
    stages = ("hlo", "analysis", "runners", "measure", "output")
    code = ("import sys, json; import " + ", ".join(f"xlainspect.{stage}" for stage in stages)
            + "; print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    assert {f"xlainspect.{stage}" for stage in stages} <= set(loaded)
    assert sorted(name for name in loaded if name.split(".")[0] in HEAVY) == []


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "xlainspect", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("xlainspect, version ")


# The pipeline order of the subpackages: a module may import its own stage and the stages before it, never after.
STAGES = ("errors", "hlo", "analysis", "programs", "runners", "measure", "output")
TOP = ("cli", "demo", "testing", "__init__", "__main__")


def _stage_of(module: str) -> int:
    """The rank of ``xlainspect.X...`` in the pipeline; the top-level modules come after every stage."""
    part = module.split(".")[1] if module.count(".") else "__init__"
    return STAGES.index(part) if part in STAGES else len(STAGES)


def test_dependencies_point_one_way():
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "xlainspect"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        module = ".".join(relative.parts)
        own = _stage_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("xlainspect.") and _stage_of(name) > own:
                    wrong.append(f"{module} imports {name}")
    assert wrong == []
