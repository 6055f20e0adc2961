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


def made_by(backend_folder: str, program: str, framework: str, xla_version: str) -> Path:
    """The committed dumps of ``backend_folder`` whose ``program``/``framework`` dump ``xla_version`` compiled:
    ``dumps/<backend>/`` (today's jax, and TF's own XLA), else an older jax's ``dumps/jax-<version>/<backend>/``."""
    for root in (DUMPS / backend_folder, *sorted(DUMPS.glob(f"jax-*/{backend_folder}"))):
        manifest = root / program / framework / "manifest.json"
        if manifest.exists() and DumpManifest.read(manifest).xla_version == xla_version:
            return root
    pytest.fail(f"no committed {backend_folder} dump of {program}/{framework} was compiled by {xla_version}; make "
                f"them with 'xlainspect dump --python ...' under dumps/jax-<version>/{backend_folder}")


def reference_dumps(backend_folder: str) -> Path:
    """The committed dumps of ``backend_folder`` (``cpu``, ``gpu-h100``) that the children's jaxlib made."""
    return made_by(backend_folder, "matvec", "jax", f"jaxlib {children_jaxlib()}")


def without_python(command: str) -> str:
    """A ``regenerate`` command without its ``--python PATH``, which a run under another interpreter adds."""
    return re.sub(r" --python \S+", "", command)
