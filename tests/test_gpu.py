"""Deviceless GPU compilation (``dump --backend gpu``) and same-compiler mode (``dump --compiler jax``).

No GPU is needed: JAX compiles for an H100 (or A100) target description with XLA's full GPU pipeline. The tests check
what a user relies on: the dumps are filed where ``diff --backend gpu`` looks, the manifest says plainly which front
end and which compiler made each module, and the modules hold GPU kernels (Triton GEMM fusions, cuDNN or cuBLAS
calls) that census and diff read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from references import reference_dumps, without_python

from xlainspect import HloModule, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.programs import PROGRAMS as ALL_PROGRAMS
from xlainspect.runners.capture import dump_program
from xlainspect.runners.gpu_targets import gpu_target, shipped_targets
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
GPU_REFERENCE = REPO / "dumps" / "gpu-h100"
CPU_REFERENCE = REPO / "dumps" / "cpu"
PROGRAMS = list(ALL_PROGRAMS)


def test_shipped_targets_describe_real_gpus():
    assert set(shipped_targets()) >= {"h100", "a100"}
    h100, a100 = gpu_target("h100"), gpu_target("a100")
    assert (h100.description, h100.compute_capability) == ("NVIDIA H100 80GB HBM3", "9.0")
    assert (a100.description, a100.compute_capability) == ("NVIDIA A100-SXM4-80GB", "8.0")


def test_bad_targets_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="unknown GPU target 'v100'; choose one of a100, h100"):
        gpu_target("v100")
    bogus = tmp_path / "mine.txtpb"
    bogus.write_text("platform_name: \"CUDA\"\n")
    with pytest.raises(InputError, match=r"mine.txtpb:1: not a GpuTargetConfigProto"):
        gpu_target(str(bogus))


def gpu_vocabulary(module: HloModule) -> set[str]:
    """What only XLA:GPU writes into a module: kernels whose backend config is a ``GpuBackendConfig`` (it carries an
    ``operation_queue_id``), Triton fusions, and cuDNN or cuBLAS calls."""
    found = set()
    for kernel in census(module).kernels:
        if kernel.kind.startswith(("__triton", "__cudnn", "__cublas")):
            found.add(kernel.kind.split("$")[0])
    for instruction in module.instructions():
        config = instruction.backend_config
        if isinstance(config, dict) and "operation_queue_id" in config:
            found.add("GpuBackendConfig")
    return found


@pytest.mark.parametrize("program", PROGRAMS)
def test_reference_gpu_dumps_say_how_they_were_made_and_hold_gpu_kernels(program):
    for framework in ("jax", "tf"):
        folder = GPU_REFERENCE / program / framework
        manifest = DumpManifest.read(folder / "manifest.json")
        assert manifest.deviceless is True and manifest.target == "h100", folder
        assert manifest.backend_folder == "gpu-h100" and manifest.device.startswith("NVIDIA H100 80GB HBM3")
        front = "TF front end" if framework == "tf" else "JAX front end"
        assert manifest.compiler.startswith(f"{front}, XLA GPU compiler from jaxlib "), manifest.compiler
        assert "deviceless, target h100 (NVIDIA H100 80GB HBM3, sm_9.0)" in manifest.compiler
        # XLA names the optimized module after the compute capability it compiled for; a CPU compile says cpu_.
        assert manifest.original_after.endswith(".sm_9.0a_gpu_after_optimizations.txt"), manifest.original_after
        module = read_hlo(folder / "after_optimizations.txt")[0]
        assert module.attributes.get("is_scheduled") == "true"
        # XLA:GPU's own vocabulary, which the CPU compile of the same program never has (kLoop or kInput fusions
        # would not tell: both backends make them).
        assert gpu_vocabulary(module), (program, framework)
        assert gpu_vocabulary(read_hlo(CPU_REFERENCE / program / framework / "after_optimizations.txt")[0]) == set()


def test_reference_dpsgd_mnist_on_h100_has_triton_gemms_and_cudnn_convolutions():
    for framework in ("jax", "tf"):
        module = read_hlo(GPU_REFERENCE / "dpsgd_mnist" / framework / "after_optimizations.txt")[0]
        result = census(module)
        assert any(kind.startswith("__triton") for kind in result.fusions_by_kind), result.fusions_by_kind
        assert any(target.startswith("__cudnn$conv") for target in result.custom_calls), result.custom_calls


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.requires_jax_cuda
def test_dump_and_diff_dpsgd_mnist_for_h100_without_a_gpu(tmp_path, capsys):
    outcome = dump_program("dpsgd_mnist", ("jax", "tf"), tmp_path, backend="gpu")
    assert outcome.failures == (), outcome.failures
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/*")) == [
        "gpu-h100/dpsgd_mnist/jax", "gpu-h100/dpsgd_mnist/tf"]
    same_xla = reference_dumps("gpu-h100")
    for framework in ("jax", "tf"):
        fresh = census(read_hlo(tmp_path / "gpu-h100/dpsgd_mnist" / framework / "after_optimizations.txt")[0])
        reference = census(read_hlo(same_xla / "dpsgd_mnist" / framework / "after_optimizations.txt")[0])
        # The same jaxlib compiles the same module: the committed reference is what a user gets.
        assert (fresh.kernel_count, fresh.fusions_by_kind, fresh.custom_calls) == (
            reference.kernel_count, reference.fusions_by_kind, reference.custom_calls), framework
    assert main(["diff", "jax", "tf", "--program", "dpsgd_mnist", "--backend", "gpu", "--dumps", str(tmp_path),
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # Both modules do the CPU step's contractions on the H100 too (zeros cuDNN's filters are padded with not counted).
    jax_reference = census(read_hlo(same_xla / "dpsgd_mnist/jax/after_optimizations.txt")[0])
    tf_on_cpu = census(read_hlo(CPU_REFERENCE / "dpsgd_mnist/tf/after_optimizations.txt")[0])
    assert (data["a"]["flops"], data["b"]["flops"]) == (jax_reference.flops, tf_on_cpu.flops)
    assert "different XLA versions" not in data["verdict"]  # one compiler for both sides


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_jax_cuda
def test_a100_target_compiles_for_sm80(tmp_path):
    outcome = dump_program("linear_grad", ("jax",), tmp_path, backend="gpu", target="a100")
    assert outcome.failures == (), outcome.failures
    manifest = outcome.dumps[0].manifest
    assert manifest.original_after.endswith(".sm_8.0_gpu_after_optimizations.txt")
    assert without_python(manifest.regenerate).endswith("--backend gpu --target a100 --force")
    assert (manifest.target, manifest.deviceless, manifest.backend_folder) == ("a100", True, "gpu-a100")
    assert outcome.dumps[0].directory == tmp_path / "gpu-a100" / "linear_grad" / "jax"


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_same_compiler_mode_separates_front_end_from_xla_version(tmp_path, capsys):
    outcome = dump_program("linear_grad", ("jax", "tf"), tmp_path, compiler="jax")
    assert outcome.failures == (), outcome.failures
    assert sorted(d.directory.name for d in outcome.dumps) == ["jax", "tf_via_jax"]
    via = next(d for d in outcome.dumps if d.directory.name == "tf_via_jax")
    assert via.manifest.compiler.startswith("TF front end, JAX's XLA (jaxlib ")
    assert via.module_name.startswith("a_inference_linear_grad")
    (native,) = dump_program("linear_grad", ("tf",), tmp_path).dumps  # TF's own compile, for the other comparison
    assert (via.manifest.framework, via.manifest.framework_version) == ("tf", native.manifest.framework_version)
    dumps = str(tmp_path)
    assert main(["diff", "jax", "tf_via_jax", "--program", "linear_grad", "--dumps", dumps]) == 0
    assert "different XLA versions" not in capsys.readouterr().out
    assert main(["diff", "tf", "tf_via_jax", "--program", "linear_grad", "--dumps", dumps]) == 0
    assert "compiled by different XLA versions" in capsys.readouterr().out


def test_missing_gpu_dump_says_how_to_make_it(tmp_path, capsys):
    assert main(["diff", "jax", "tf", "--program", "matvec", "--backend", "gpu", "--dumps", str(tmp_path)]) == 1
    assert capsys.readouterr().err.endswith(
        "no dump; make it with 'xlainspect dump --program matvec --framework jax --backend gpu --target h100 "
        f"--out {tmp_path}'\n")
