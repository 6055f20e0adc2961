"""The commands with PyTorch's frameworks: ``dump``, ``diff``, ``time`` and ``bench`` take ``torch_xla`` (and, where
there is no module to read, ``torch``), and refuse in one line what they cannot do.

The numbers themselves are checked in ``test_torch_programs.py``; here, that each command reaches the right child,
reads back what it wrote, and that the module a command reports is the one that ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.hlo import parse_hlo, read_hlo
from xlainspect.measure.bench import speedups
from xlainspect.measure.records import BenchRow
from xlainspect.measure.timing import time_program
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# -- refusals, told before any child starts -----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["dump", "--program", "matvec", "--framework", "torch"],
     "torch: eager PyTorch compiles no XLA module to dump; dump torch_xla (PyTorch/XLA) instead"),
    (["dump", "--program", "dpsgd_lstm", "--framework", "torch_xla"],
     "dpsgd_lstm: PyTorch/XLA's loop (torch_xla.experimental.scan) cannot trace the tensors of functorch's vmap"),
    (["time", "--program", "dpsgd_lstm", "--framework", "torch_xla"],
     "dpsgd_lstm: PyTorch/XLA's loop (torch_xla.experimental.scan) cannot trace"),
    (["time", "--program", "dpsgd_ffnn", "--framework", "torch", "--no-vectorize"],
     "torch: the ablation builds (--no-vectorize, --no-compile) are JAX's and TF's"),
    (["bench", "--frameworks", "jax,torch", "--ablation", "--no-sweep", "--out", "{tmp}/b"],
     "the ablation builds are JAX's and TF's, not torch's"),
    (["diff", "jax", "torch", "--program", "dpsgd_mnist"],
     "torch: eager PyTorch compiles no XLA module; compare PyTorch/XLA's with torch_xla"),
])
def test_what_pytorch_cannot_do_is_one_line(capsys, tmp_path, args, message):
    status, out, err = run(capsys, *[arg.format(tmp=tmp_path) for arg in args])
    assert status != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "b").exists()


def test_default_frameworks_stay_the_seeds_pair():
    # 'both' (the default) is jax and tf; 'all' adds PyTorch's: the default run needs no PyTorch environment.
    from xlainspect.cli import _chosen_frameworks
    from xlainspect.runners.capture import ALL_FRAMEWORKS, XLA_FRAMEWORKS

    assert _chosen_frameworks("both", XLA_FRAMEWORKS) == ("jax", "tf")
    assert _chosen_frameworks("all", XLA_FRAMEWORKS) == ("jax", "tf", "torch_xla")
    assert _chosen_frameworks("all", ALL_FRAMEWORKS) == ("jax", "tf", "torch", "torch_xla")
    assert _chosen_frameworks("torch", ALL_FRAMEWORKS) == ("torch",)


# -- the committed dumps -------------------------------------------------------------------------------------------------


def test_diff_jax_torch_xla_reads_the_committed_dumps_and_names_both_xla_versions(capsys):
    status, out, _ = run(capsys, "diff", "jax", "torch_xla", "--program", "dpsgd_mnist", "--json")
    assert status == 0
    data = json.loads(out)
    jax_module = read_hlo(REPO / "dumps/cpu/dpsgd_mnist/jax/after_optimizations.txt")[0]
    torch_module = read_hlo(REPO / "dumps/cpu/dpsgd_mnist/torch_xla/after_optimizations.txt")[0]
    assert data["a"]["kernels"] == census(jax_module).kernel_count
    assert data["b"]["kernels"] == census(torch_module).kernel_count
    assert data["a"]["kernels"] != data["b"]["kernels"]  # two front ends, two modules
    manifest = DumpManifest.read(REPO / "dumps/cpu/dpsgd_mnist/torch_xla/manifest.json")
    assert manifest.framework == "torch_xla" and "torch_xla" in manifest.xla_version
    status, out, _ = run(capsys, "diff", "jax", "torch_xla", "--program", "dpsgd_mnist")
    assert "compiled by different XLA versions" in out and manifest.xla_version in out


def test_committed_torch_xla_dumps_carry_pytorchs_own_metadata():
    # Dumps ask PyTorch/XLA for its op metadata: every step's kernels name ATen ops and lines of the program.
    module = read_hlo(REPO / "dumps/cpu/dpsgd_ffnn/torch_xla/after_optimizations.txt")[0]
    ops = [i.metadata for i in module.instructions() if i.metadata is not None and i.metadata.op_name]
    assert ops and all(m.op_type.split("__")[0] in ("aten", "xla", "prim") for m in ops if m.op_type)
    assert sum(m.op_type.startswith("aten__") for m in ops) > len(ops) / 2  # mostly ATen ops, as PyTorch names them
    assert any(m.source is not None and m.source.file == "xlainspect/programs/_torch.py" for m in ops)


# -- through PyTorch's environment -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.requires_torch_xla
@pytest.mark.requires_jax
def test_dump_torch_xla_natively_and_through_jaxs_xla(capsys, tmp_path):
    status, out, err = run(capsys, "dump", "--program", "sgd_ffnn", "--framework", "torch_xla", "--out",
                           str(tmp_path), "--batch-size", "16")
    assert status == 0, err
    native = tmp_path / "cpu/sgd_ffnn/torch_xla"
    manifest = DumpManifest.read(native / "manifest.json")
    assert manifest.module_name.startswith("sgd_ffnn_step.") and manifest.parameters["batch_size"] == 16
    assert "PyTorch/XLA's own XLA" in manifest.compiler and manifest.regenerate.endswith("--force")
    status, out, err = run(capsys, "dump", "--program", "sgd_ffnn", "--framework", "torch_xla", "--compiler", "jax",
                           "--out", str(tmp_path), "--batch-size", "16")
    assert status == 0, err
    via_jax = DumpManifest.read(tmp_path / "cpu/sgd_ffnn/torch_xla_via_jax/manifest.json")
    assert "JAX's XLA" in via_jax.compiler and via_jax.framework_version == manifest.framework_version
    # One front end's module, two compilers: the same program (its entry takes the same arrays), another XLA.
    def parameters(folder: str) -> list[str]:
        module = read_hlo(tmp_path / "cpu/sgd_ffnn" / folder / "after_optimizations.txt")[0]
        return sorted(str(i.shape) for i in module.entry.instructions if i.opcode == "parameter")

    assert parameters("torch_xla") == parameters("torch_xla_via_jax")
    assert via_jax.xla_version != manifest.xla_version
    status, out, _ = run(capsys, "dump", "--program", "sgd_ffnn", "--framework", "torch_xla", "--out", str(tmp_path))
    assert status != 0  # no --force: the dump that is there stays


@pytest.mark.slow
@pytest.mark.requires_torch
@pytest.mark.requires_torch_xla
def test_time_torch_and_torch_xla_kernels_are_the_module_that_ran():
    report = time_program("dpsgd_ffnn", ("torch", "torch_xla"), batch_size=16, repeats=3, warmup=1, profile_runs=2)
    assert report.failures == ()
    eager, xla = report.frameworks["torch"], report.frameworks["torch_xla"]
    assert len(eager.runs_ms) == 3 and eager.kernels == () and eager.module_text == ""
    assert "Opacus" in eager.note
    assert xla.module_name.startswith("dpsgd_ffnn_step.") and xla.kernels
    kernels = {kernel.name for kernel in census(parse_hlo(xla.module_text)).kernels}
    # PyTorch/XLA's profile, read without its protobuf classes: every op it timed is a kernel of the module that ran.
    assert {kernel.hlo_op for kernel in xla.kernels} <= kernels
    assert "outside XLA" not in xla.note  # no ATen op fell back to the CPU


@pytest.mark.slow
@pytest.mark.requires_torch
@pytest.mark.requires_jax
def test_bench_writes_rows_for_torch_and_the_speedup_over_opacus(capsys, tmp_path):
    status, out, err = run(capsys, "bench", "--frameworks", "jax,torch", "--models", "logreg", "--batch-sizes", "8",
                           "--repeats", "2", "--out", str(tmp_path))
    assert status == 0, err
    lines = (tmp_path / "bench.csv").read_text().splitlines()
    assert sum(",torch," in line for line in lines) == 2 and sum(",jax," in line for line in lines) == 2
    assert "jax over torch (eager PyTorch, Opacus for DP-SGD)" in out and "the seed claimed 5x" in out


def test_speedups_pair_the_same_configuration_only():
    rows = [_row("jax", True, 16, 2.0), _row("torch", True, 16, 10.0), _row("jax", False, 16, 1.0),
            _row("torch", True, 32, 50.0), _row("tf", False, 16, 3.0)]
    assert speedups(rows) == {("mnist", True, 16): 5.0}  # no torch SGD at 16, no jax at 32
    assert speedups(rows, "jax", "tf") == {("mnist", False, 16): 3.0}


def _row(framework: str, private: bool, batch: int, median: float) -> BenchRow:
    return BenchRow("mnist", private, framework, batch, median, median, median, 0.0, 1)


@pytest.mark.slow
@pytest.mark.requires_torch_xla
def test_memory_of_torch_xla_comes_from_its_own_buffer_assignment():
    from xlainspect.measure.memory import memory_report
    from xlainspect.programs import PROGRAMS

    results, failures = memory_report("dpsgd_mnist", ("torch_xla",), batch_size=8)
    assert failures == [] and len(results) == 1
    figures = results[0].figures
    program = PROGRAMS["dpsgd_mnist"]
    # The step returns the new parameters: its outputs are exactly their float32 bytes, nothing XLA packed beside.
    assert figures.output == 4 * program.parameter_count()
    # Its arguments hold the parameters, the noise (as many again) and the 8 images.
    assert figures.argument >= 4 * (2 * program.parameter_count() + 8 * 28 * 28)
    # The per-example filter gradients of the convolutions are materialised (docs/pytorch.md): found by shape.
    assert results[0].per_example_bytes and 0 < results[0].per_example_bytes <= figures.temp
    assert results[0].largest and results[0].largest[0].size <= figures.temp


def test_committed_torch_xla_dumps_return_exactly_the_steps_outputs():
    # A PyTorch/XLA graph compiled while intermediates were alive returns them too (dpsgd_embedding's once returned
    # 31 arrays for its 5 parameters): every filed step returns what the program returns, nothing more.
    from xlainspect.hlo.dump_folder import DumpedModule, result_arrays
    from xlainspect.programs import PROGRAMS

    checked = 0
    for name, program in PROGRAMS.items():
        path = REPO / "dumps/cpu" / name / "torch_xla/after_optimizations.txt"
        if path.is_file():
            module = DumpedModule(0, name, None, path, 0)
            assert result_arrays(module) == len(program.output_names), name
            checked += 1
    assert checked == 13  # every program but dpsgd_lstm, which PyTorch/XLA cannot run
