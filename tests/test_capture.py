"""Tests for ``xlainspect dump``: child-process capture, module selection, manifests, atomic filing, --force, and
the committed reference dumps (their fusion census must still match what today's frameworks compile)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest
from references import made_by, without_python

from xlainspect import read_hlo
from xlainspect.analysis.census import census as kernel_census
from xlainspect.analysis.stats import module_stats
from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.runners.capture import dump_directory, dump_program
from xlainspect.runners.children import child_python
from xlainspect.runners.manifest import DumpManifest

pytestmark = [pytest.mark.requires_jax, pytest.mark.requires_tf]

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "dumps" / "cpu"


def census(path: Path) -> dict:
    """Top-level fusions by kind and custom-calls by target: what the reference dumps pin down."""
    stats = module_stats(read_hlo(path)[0])
    return {"fusions": stats.fusions_by_kind, "custom_calls": stats.custom_calls}


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> Path:
    """Every program dumped once per session in both frameworks, as `xlainspect dump` would (shared by tests)."""
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    from xlainspect.programs import PROGRAMS

    out = tmp_path_factory.mktemp("dumps")
    for name in PROGRAMS:
        manifest = REFERENCE / name / "jax" / "manifest.json"
        batch_size = DumpManifest.read(manifest).batch_size if manifest.exists() else None
        outcome = dump_program(name, ("jax", "tf"), out, batch_size=batch_size)
        assert outcome.failures == (), outcome.failures
    return out


@pytest.mark.slow
def test_files_and_manifest(regenerated):
    for framework in ("jax", "tf"):
        folder = dump_directory(regenerated, "cpu", "linear_grad", framework)
        assert sorted(p.name for p in folder.iterdir()) == [
            "after_optimizations.txt", "before_optimizations.txt", "manifest.json"]
        manifest = DumpManifest.read(folder / "manifest.json")  # every key there, of its type
        assert (manifest.program, manifest.framework, manifest.backend, manifest.backend_folder) == (
            "linear_grad", framework, "cpu", "cpu")
        assert (manifest.deviceless, manifest.target, manifest.pass_dump_files) == (False, None, None)
        assert manifest.xla_flags == "--xla_dump_to=<dump dir> --xla_dump_hlo_as_text"
        assert without_python(manifest.regenerate) == f"xlainspect dump --program linear_grad --framework " \
                                                      f"{framework} --backend cpu --force"
        assert manifest.shapes == {"w": (5, 5), "b": (5,), "x": (5,), "y": (5,)}
        assert manifest.parameters == {"batch_size": None, "dtype": "float32"}
        # The program's own module was picked, not one of the helper modules the framework also compiles.
        prefix = "jit_linear_grad" if framework == "jax" else "a_inference_linear_grad_"
        assert manifest.module_name.startswith(prefix), manifest.module_name
        assert manifest.original_after.endswith(f".{manifest.module_name}.cpu_after_optimizations.txt")
        module = read_hlo(folder / "after_optimizations.txt")[0]
        assert module.name == manifest.module_name
        assert module.entry.root.shape.is_tuple  # gradients w.r.t. W and b
        assert {leaf.dims for leaf in module.entry.root.shape.leaves()} == {(5, 5), (5,)}
        # Portable: no source path under the checkout stays absolute, and the manifest says what was rewritten.
        checkout = str(REPO)
        for name in ("before_optimizations.txt", "after_optimizations.txt"):
            assert f'"{checkout}/' not in (folder / name).read_text(), name
        assert (manifest.source_root, manifest.source_paths_rewritten > 0) == (checkout, True)
        sources = [s.location for k in kernel_census(module).kernels for s in k.sources if s.location]
        assert all(not location.startswith("/") for location in sources)
        assert sources or framework == "tf"  # TF names only its own ops.py, which is never shown as a source


def test_reference_dumps_are_committed_for_every_program():
    from xlainspect.programs import PROGRAMS

    for name in PROGRAMS:
        for framework in ("jax", "tf"):
            folder = REFERENCE / name / framework
            assert (folder / "before_optimizations.txt").is_file(), folder
            assert (folder / "after_optimizations.txt").is_file(), folder
            assert DumpManifest.read(folder / "manifest.json").program == name
            assert not [p for p in folder.rglob("*") if p.suffix in (".ll", ".o", ".pb")]


def test_reference_census_still_matches(regenerated):
    """A change in XLA's or a framework's behaviour shows up here: regenerate with `xlainspect dump --force`."""
    from xlainspect.programs import PROGRAMS

    for name in PROGRAMS:
        for framework in ("jax", "tf"):
            fresh_dump = dump_directory(regenerated, "cpu", name, framework)
            fresh_manifest = DumpManifest.read(fresh_dump / "manifest.json")  # the references its XLA made
            reference = made_by("cpu", name, framework, fresh_manifest.xla_version) / name / framework
            committed = census(reference / "after_optimizations.txt")
            fresh = census(fresh_dump / "after_optimizations.txt")
            assert fresh == committed, f"{name}/{framework}: census changed from {reference}'s; regenerate it"


def test_reference_dumps_of_older_jax_name_their_interpreter():
    older = sorted((REPO / "dumps").glob("jax-*/cpu/*/*/manifest.json"))
    assert older, "dumps/jax-0.10.2/ holds the jax 0.10.2 references of the compatibility run"
    for path in older:
        manifest = DumpManifest.read(path)
        version = path.relative_to(REPO / "dumps").parts[0].removeprefix("jax-")
        assert manifest.interpreter is not None and f"--python {manifest.interpreter}" in manifest.regenerate
        assert manifest.xla_version == f"jaxlib {version}", path  # JAX's XLA compiled each, TF's modules too


def test_existing_dump_is_not_replaced_without_force(regenerated):
    folder = dump_directory(regenerated, "cpu", "matvec", "jax")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(InputError) as info:
        dump_program("matvec", ("jax",), regenerated)
    assert str(info.value) == f"{folder}: a dump is already there; add --force to replace it"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_force_replaces_atomically(tmp_path):
    first = dump_program("matvec", ("jax",), tmp_path)
    folder = first.dumps[0].directory
    assert DumpManifest.read(folder / "manifest.json") == first.dumps[0].manifest  # what it returned is what it filed
    dataclasses.replace(first.dumps[0].manifest, host_cpu="an older capture").write(folder / "manifest.json")
    (folder / "stale.txt").write_text("from an older capture")
    second = dump_program("matvec", ("jax",), tmp_path, force=True)
    assert second.failures == ()
    assert not (folder / "stale.txt").exists()
    assert DumpManifest.read(folder / "manifest.json") == second.dumps[0].manifest  # the new capture's, whole
    assert second.dumps[0].manifest.host_cpu != "an older capture"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["jax"]  # no partial or old folders left behind


def _fake_package(root: Path, name: str, body: str) -> None:
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body)


def test_missing_framework_is_named_and_the_other_dump_is_still_written(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "fake"
    _fake_package(fake, "tensorflow", "raise ImportError('No module named tensorflow')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "dumps"
    status = main(["dump", "--program", "matvec", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    python = child_python()
    if python == sys.executable:
        assert err.splitlines()[-1] == ("xlainspect: tf is not installed; install it with pip install "
                                        "'xlainspect[tf]' (tensorflow-cpu) (or run 'make install')")
    else:  # the children run under another interpreter (the jax 0.10.2 run): install it there
        assert err.splitlines()[-1] == (f"xlainspect: tf is not installed for {python}; install it there ({python} "
                                        "-m pip install tensorflow-cpu numpy) or choose another --python")
    assert (dump_directory(out, "cpu", "matvec", "jax") / "after_optimizations.txt").is_file()
    assert not dump_directory(out, "cpu", "matvec", "tf").exists()
    assert "jax: compiling and running matvec in a child process" in err  # progress while the child ran


def test_compile_failure_names_the_framework_and_reason(tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    _fake_package(fake, "tensorflow", "raise RuntimeError('simulated XLA failure')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    outcome = dump_program("matvec", ("tf",), tmp_path / "dumps")
    assert outcome.dumps == ()
    assert [f.framework for f in outcome.failures] == ["tf"]
    assert outcome.failures[0].message == ("tf: compiling and running matvec failed (exit 1): RuntimeError: "
                                           "simulated XLA failure")


def test_unknown_program_is_one_line(capsys, tmp_path):
    status = main(["dump", "--program", "nope", "--out", str(tmp_path)])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("xlainspect: unknown program 'nope'; choose one of: matvec, linear_grad")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_pass_dumps(tmp_path):
    outcome = dump_program("matvec", ("jax",), tmp_path, pass_dumps=True)
    folder = outcome.dumps[0].directory
    passes = sorted((folder / "passes").iterdir())
    assert len(passes) > 10
    manifest = DumpManifest.read(folder / "manifest.json")
    assert manifest.pass_dump_files == len(passes) and manifest == outcome.dumps[0].manifest
    assert "--xla_dump_hlo_pass_re=.*" in manifest.xla_flags
    for path in passes[:5]:
        assert read_hlo(path)  # every pass dump is HLO text we can read
