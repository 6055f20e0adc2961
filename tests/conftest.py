"""Shared fixtures: the HLO corpus in ``shared/``, HLO dumps generated from JAX programs, and marker-based skips.

Markers (``requires_jax``, ``requires_tf``, ``gpu``, ``slow``) are declared in setup.cfg; they are registered here only
when that declaration is missing, so ``--strict-markers`` works either way. A test marked ``requires_jax`` or
``requires_tf`` is skipped, with the package to install as the reason, when that package is not importable; ``gpu``
tests are skipped when no NVIDIA GPU is visible. ``requires_torch`` (torch and Opacus) and ``requires_torch_xla``
(torch and torch_xla) look in the PyTorch environment, ``.venv-torch/`` or ``$XLAINSPECT_TORCH_PYTHON``, where their
tests run PyTorch (see ``torch_helpers.py``); under ``CI=true`` or ``XLAINSPECT_REQUIRE_TORCH=1`` a missing one stops
the run instead of skipping them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from torch_helpers import MARKER_PACKAGES, REQUIRE_TORCH_VARIABLE, torch_environment_problem, torch_required
from xlainspect.runners.capture import gpu_visible

TESTS_DIR = Path(__file__).resolve().parent
MAKE_DUMPS = TESTS_DIR / "programs" / "make_dumps.py"

_MARKERS = {
    "requires_jax": "needs jax (and jaxlib) installed; skipped otherwise",
    "requires_tf": "needs tensorflow installed; skipped otherwise",
    "gpu": "needs an NVIDIA GPU; skipped otherwise",
    "requires_chromium": "needs Debian's chromium (make test installs it); skipped otherwise",
    "requires_explorer": "needs Model Explorer (the [explorer] extra); skipped otherwise",
    "requires_jax_cuda": "needs jax's CUDA plugin (the [gpu] extra) for deviceless GPU compiles; skipped otherwise",
    "requires_torch": "needs the PyTorch environment with torch and opacus (make torch-env); skipped otherwise",
    "requires_torch_xla": "needs the PyTorch environment with torch_xla (make torch-env); skipped otherwise",
    "slow": "compiles programs in child processes, seconds to a minute each",
}

# Only these lines separate modules in XLA's test files; `// ------------` rules are prose.
_SEPARATOR_RE = re.compile(r"^// -----$", re.MULTILINE)


REQUIRE_CORPUS_VARIABLE = "XLAINSPECT_REQUIRE_CORPUS"


def pytest_configure(config: pytest.Config) -> None:
    # CI sets XLAINSPECT_REQUIRE_CORPUS=1: there the XLA-oracle tests must run, never skip for a missing corpus.
    if os.environ.get(REQUIRE_CORPUS_VARIABLE) == "1" and not find_corpus_files():
        where = os.environ.get("XLAINSPECT_SHARED") or str(TESTS_DIR.parent.parent / "shared")
        raise pytest.UsageError(f"xlainspect: the HLO corpus is required ({REQUIRE_CORPUS_VARIABLE}=1) but "
                                f"{where}/hlo-corpus/ is missing or empty; put the shared/ folder beside the "
                                "repository or set XLAINSPECT_SHARED to its path")
    # On CI the PyTorch tests must run too: a missing PyTorch environment stops the run, as a missing corpus does.
    if torch_required():
        problem = torch_environment_problem()
        if problem is not None:
            raise pytest.UsageError(f"xlainspect: the PyTorch environment is required (CI=true or "
                                    f"{REQUIRE_TORCH_VARIABLE}=1) but {problem}")
    # With jax's CUDA plugin installed (the [gpu] extra) but no GPU, every in-process jax start logs a cuInit
    # failure before falling back to the CPU. Deviceless GPU compiles run in children that set their own platform.
    if not gpu_visible():
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    declared = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, description in _MARKERS.items():
        if name not in declared:
            config.addinivalue_line("markers", f"{name}: {description}")


def _importable(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_jax") and not _importable("jax"):
        pytest.skip("jax is not installed: pip install jax")
    if item.get_closest_marker("requires_tf") and not _importable("tensorflow"):
        pytest.skip("tensorflow is not installed: pip install tensorflow-cpu")
    if item.get_closest_marker("requires_jax_cuda") and not _importable("jax_plugins.xla_cuda12"):
        pytest.skip("jax's CUDA plugin is not installed: make install-gpu (pip install 'xlainspect[gpu]')")
    if item.get_closest_marker("requires_chromium") and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed: sudo apt-get install chromium (make test does it)")
    for marker, packages in MARKER_PACKAGES.items():
        if item.get_closest_marker(marker):
            problem = torch_environment_problem(packages)
            if problem is not None:
                pytest.skip(problem)
    if item.get_closest_marker("requires_explorer") and not _importable("model_explorer"):
        pytest.skip("Model Explorer is not installed: pip install 'xlainspect[explorer]'")
    if item.get_closest_marker("gpu") and not gpu_visible():
        pytest.skip("no NVIDIA GPU visible (nvidia-smi -L lists none)")


# -- the shared corpus ----------------------------------------------------------------------------------------------


def find_shared_dir() -> Path | None:
    """``$XLAINSPECT_SHARED``, else the ``shared/`` folder beside the repository; None if it does not exist."""
    override = os.environ.get("XLAINSPECT_SHARED")
    path = Path(override) if override else TESTS_DIR.parent.parent / "shared"
    return path if path.is_dir() else None


def find_corpus_files() -> list[Path]:
    """Every file under ``shared/hlo-corpus/`` except its README, sorted; empty when there is no shared folder."""
    shared = find_shared_dir()
    if shared is None:
        return []
    return sorted(p for p in (shared / "hlo-corpus").rglob("*") if p.is_file() and p.name != "README.md")


def split_xla_test_file(text: str) -> list[str]:
    """The module texts of an XLA test file: pieces between lines that are exactly ``// -----``.

    Pieces holding nothing but blank lines and ``//`` comment lines are dropped, as xlainspect's parser drops them.
    """
    pieces = _SEPARATOR_RE.split(text)
    return [piece for piece in pieces
            if any(line.strip() and not line.strip().startswith("//") for line in piece.splitlines())]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes ``corpus_file`` over the corpus, so each file passes or fails on its own line."""
    if "corpus_file" in metafunc.fixturenames:
        files = find_corpus_files()
        if files:
            metafunc.parametrize("corpus_file", files, ids=[p.name for p in files])
        else:
            metafunc.parametrize("corpus_file", [pytest.param(None, marks=pytest.mark.skip(
                reason="no HLO corpus: shared/hlo-corpus/ beside the repository is missing (set XLAINSPECT_SHARED)"))])


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared/`` folder beside the repository, or ``$XLAINSPECT_SHARED``."""
    shared = find_shared_dir()
    if shared is None:
        pytest.skip("no shared/ folder beside the repository (set XLAINSPECT_SHARED to its path)")
    return shared


@pytest.fixture(scope="session")
def corpus_files(shared_dir: Path) -> list[Path]:
    """Every HLO file of ``shared/hlo-corpus/`` (README.md excluded), sorted."""
    files = find_corpus_files()
    if not files:
        pytest.skip(f"{shared_dir / 'hlo-corpus'} holds no HLO files")
    return files


@pytest.fixture(scope="session", name="split_xla_test_file")
def split_xla_test_file_fixture():
    """:func:`split_xla_test_file`, for tests (conftest is not imported by tests directly)."""
    return split_xla_test_file


# -- dumps generated from JAX programs --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jax_dumps(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """HLO texts (before and after optimization) of the programs in ``tests/programs/make_dumps.py``, sorted.

    The script runs once per session in a child interpreter, because XLA reads its dump flags only when it starts.
    """
    if not _importable("jax"):
        pytest.skip("jax is not installed: pip install jax")
    outdir = tmp_path_factory.mktemp("jax_dumps")
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(MAKE_DUMPS), str(outdir)], capture_output=True, text=True,
                            timeout=600, env=env)
    if result.returncode != 0:
        pytest.fail(f"make_dumps.py failed with status {result.returncode}:\n{result.stdout}\n{result.stderr}")
    dumps = sorted(p for p in outdir.iterdir()
                   if p.name.endswith(".before_optimizations.txt") or p.name.endswith("_after_optimizations.txt"))
    if not dumps:
        pytest.fail(f"make_dumps.py wrote no HLO texts to {outdir}:\n{result.stdout}")
    return dumps


@pytest.fixture(scope="session")
def linear_grad_pass_dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dumps folder holding ``linear_grad`` of both frameworks made with ``--pass-dumps``, captured once a session.

    Read-only for the tests that share it (pass timelines, the HTML report).
    """
    if not (_importable("jax") and _importable("tensorflow")):
        pytest.skip("needs jax and tensorflow: pip install jax tensorflow-cpu")
    from xlainspect.runners.capture import dump_program

    folder = tmp_path_factory.mktemp("linear_grad_pass_dumps")
    outcome = dump_program("linear_grad", ("jax", "tf"), folder, pass_dumps=True)
    assert outcome.failures == (), outcome.failures
    return folder


# -- big modules for drawing ------------------------------------------------------------------------------------------

LOOP_PAIR = TESTS_DIR / "programs" / "loop_pair.py"
BIG_MODULE = TESTS_DIR.parent / "bench" / "big_module.py"
BIG_MODULE_MB = 15.0


@pytest.fixture(scope="session")
def transformer_step_3_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The optimized HLO of a 3-layer transformer's training step, unrolled: an entry of about 240 drawable nodes
    whose long forward-to-backward edges made graphviz's ``dot`` run for minutes. Built once a session."""
    if not _importable("jax"):
        pytest.skip("jax is not installed: pip install jax")
    out = tmp_path_factory.mktemp("transformer_step_3_layers")
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(LOOP_PAIR), str(out), "--layers", "3"], check=False,
                            capture_output=True,
                            text=True, timeout=600, env=env)
    if result.returncode != 0:
        pytest.fail(f"loop_pair.py failed with status {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return out / "unrolled.txt"


@pytest.fixture(scope="session")
def unrolled_transformer_15mb() -> Path:
    """A 15 MB optimized module (a 163-layer transformer step, unrolled), as the benchmarks build it.

    It lives in the benchmarks' cache (``$TMPDIR/xlainspect-bench/``, shared with ``bench/parse_speed.py``), because
    compiling it takes about a minute; a cached file smaller than 15 MB is rebuilt.
    """
    if not _importable("jax"):
        pytest.skip("jax is not installed: pip install jax")
    version = importlib.metadata.version("jax")  # the name bench/parse_speed.py gives it for this jax
    path = Path(tempfile.gettempdir()) / "xlainspect-bench" / f"big_module_{BIG_MODULE_MB:g}mb-jax{version}.hlo"
    if not path.is_file() or path.stat().st_size < BIG_MODULE_MB * 1e6:
        path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run([sys.executable, str(BIG_MODULE), str(path), "--min-mb", f"{BIG_MODULE_MB:g}"],
                                check=False, capture_output=True, text=True, timeout=900, env=env)
        if result.returncode != 0:
            pytest.fail(f"big_module.py failed with status {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return path
