"""On a real GPU (marked ``gpu``: skipped where none is visible, as on CI): a user's program dumped, timed per
kernel and inspected on the GPU, each kernel the profiler timed found in the module XLA compiled for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.hlo import read_hlo
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
STEP = f"{REPO / 'docs' / 'examples' / 'transformer.py'}:step"

pytestmark = [pytest.mark.gpu, pytest.mark.requires_jax, pytest.mark.slow]


@pytest.fixture(scope="module")
def gpu_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu")
    assert main(["dump", "--program", STEP, "--framework", "jax", "--backend", "gpu", "--out", str(out)]) == 0
    return out / "gpu" / "transformer.step" / "jax"


def test_a_users_step_is_compiled_and_run_on_the_gpu(gpu_dump):
    manifest = DumpManifest.read(gpu_dump / "manifest.json")
    assert not manifest.deviceless and "GPU" in manifest.compiler and manifest.module_name == "jit_train_step"
    module = read_hlo(gpu_dump / "after_optimizations.txt")[0]
    kernels = census(module).kernels
    assert any(k.opcode in ("custom-call", "fusion") for k in kernels)


def test_time_on_the_gpu_attributes_the_step_to_its_kernels(gpu_dump, capsys):
    status = main(["time", "--program", STEP, "--framework", "jax", "--backend", "gpu", "--repeats", "10", "--json"])
    out = capsys.readouterr().out
    assert status == 0
    timing = json.loads(out)["frameworks"]["jax"]
    timed = {kernel["hlo_op"] for kernel in timing["kernels"]}
    filed = read_hlo(gpu_dump / "after_optimizations.txt")[0]
    assert timed and timed <= {i.name for i in filed.instructions()}
    assert 0 < timing["median_ms"] < 1000


def test_inspect_compiles_and_times_on_the_gpu():
    import importlib.util

    import xlainspect

    spec = importlib.util.spec_from_file_location("_transformer_example", REPO / "docs" / "examples" / "transformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train_step, args = module.step()
    result = xlainspect.inspect(train_step, *args)
    assert "gpu" in result.device.lower() or "h100" in result.device.lower() or "h200" in result.device.lower()
    own = train_step.lower(*args).compile().memory_analysis()
    assert result.memory.temp == own.temp_size_in_bytes
    timing = result.time(repeats=5)
    assert timing.median_ms > 0 and timing.kernels
