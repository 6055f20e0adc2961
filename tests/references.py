"""The committed reference dumps that match the jax the framework children run.

``make test`` runs the suite with today's jax, then the framework-facing tests again with every child under jax
0.10.2 (``XLAINSPECT_PYTHON``). A test that compares a fresh dump with a committed one must then compare it with the
one the same XLA made: ``dumps/<backend>/`` for today's jax, ``dumps/jax-<version>/<backend>/`` for an older one.
TF's own XLA (``dumps/cpu/*/tf``) is the same in both runs.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

from xlainspect.runners.children import child_python
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
DUMPS = REPO / "dumps"


@functools.cache
def children_jaxlib() -> str:
    """The jaxlib version of the interpreter framework children run under."""
    probe = subprocess.run([child_python(), "-c", "import jaxlib; print(jaxlib.__version__)"], capture_output=True,
                           text=True, check=True, cwd=REPO.parent)
    return probe.stdout.strip()


def reference_dumps(backend_folder: str) -> Path:
    """The committed dumps of ``backend_folder`` (``cpu``, ``gpu-h100``) that the children's jaxlib made."""
    version = children_jaxlib()
    for root in (DUMPS / backend_folder, DUMPS / f"jax-{version}" / backend_folder):
        manifest = root / "matvec" / "jax" / "manifest.json"
        if manifest.exists() and DumpManifest.read(manifest).xla_version == f"jaxlib {version}":
            return root
    pytest.fail(f"no committed {backend_folder} dumps were made by jaxlib {version}; make them with 'xlainspect "
                f"dump --python ...' under dumps/jax-{version}/{backend_folder}")


def without_python(command: str) -> str:
    """A ``regenerate`` command without its ``--python PATH``, which a run under another interpreter adds."""
    return re.sub(r" --python \S+", "", command)
