"""Dumps that name no machine: absolute source paths under the repository or working folder made relative.

XLA writes where each op came from into the module text: JAX's ``FileNames`` table (``1 "/home/me/proj/train.py"``)
and TF's ``source_file="..."``. Filed as they are, committed dumps carry the author's checkout path, which means
nothing on another machine and differs between two otherwise equal dumps. When filing, quoted paths under the
root (the working folder, else xlainspect's own checkout) lose that prefix, and the manifest records the root.
"""

from __future__ import annotations

import os
from pathlib import Path

import xlainspect


def source_roots() -> list[str]:
    """Folders whose paths are made relative, most specific first: the working folder, and xlainspect's checkout
    when it runs from one (a ``.git`` beside the package)."""
    roots = [os.getcwd()]
    checkout = Path(xlainspect.__file__).resolve().parents[1]
    if (checkout / ".git").exists():
        roots.append(str(checkout))
    return sorted({str(Path(root).resolve()) for root in roots if Path(root).is_absolute()}, key=len, reverse=True)


def portable_text(text: str, roots: list[str]) -> tuple[str, str | None, int]:
    """``text`` with quoted paths under the first root that has any made relative to it.

    Returns:
        The text, the root used (None when no path was under a root), and how many paths were rewritten.
    """
    for root in roots:
        prefix = '"' + root.rstrip("/") + "/"
        count = text.count(prefix)
        if count:
            return text.replace(prefix, '"'), root, count
    return text, None, 0


def portable_path(path: str, roots: list[str]) -> str:
    """``path`` relative to the first root it lies under (e.g. ``.venv-jax0.10/bin/python``), else as it is."""
    for root in roots:
        if path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1:]
    return path
