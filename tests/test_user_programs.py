"""Users' own programs through ``--program FILE.py:NAME``: dump, diff, time, memory and report on programs written
for the purpose (docs/examples, and small ones here), never the built-in registry; and every bad ``--program`` value
gets one line.

The examples are dumped once per session (``user_dumps``); each check reads them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.hlo import read_hlo
from xlainspect.programs import choose_program
from xlainspect.runners.children import child_python
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
TRANSFORMER = REPO / "docs" / "examples" / "transformer.py"
REGRESSION = REPO / "docs" / "examples" / "regression.py"

pytestmark = pytest.mark.slow


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _error_line(err: str) -> str:
    """The one error line of a failed command (progress lines aside); no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("xlainspect:") or "Error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def user_dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transformer example (JAX) and the regression example (JAX and TF), dumped through the CLI."""
    out = tmp_path_factory.mktemp("user-dumps")
    for spec, framework in ((f"{TRANSFORMER}:step", "jax"), (f"{TRANSFORMER}:step_unrolled", "jax"),
                            (f"{REGRESSION}:step", "all")):
        assert main(["dump", "--program", spec, "--framework", framework, "--out", str(out)]) == 0
    return out


# -- dump: the user's step is filed, not a helper ---------------------------------------------------------------


@pytest.mark.requires_jax
def test_the_dumped_module_is_the_users_step_not_a_helper(user_dumps):
    folder = user_dumps / "cpu" / "transformer.step" / "jax"
    manifest = DumpManifest.read(folder / "manifest.json")
    # The entry made its inputs with jax.random, so the child also compiled random-number helper modules.
    assert manifest.module_name == "jit_train_step"
    module = read_hlo(folder / "after_optimizations.txt")[0]
    assert module.name == "jit_train_step"
    assert any(i.opcode == "while" for i in module.instructions())  # the lax.scan over the layers
    assert manifest.description == "A 2-layer transformer block's SGD step, the layers run by lax.scan."
    # Inputs named after the step's own parameters, pytree paths included, in JAX's order.
    assert manifest.shapes["params.qkv"] == (2, 64, 192)
    assert manifest.shapes["x"] == (8, 32, 64)
    assert manifest.parameters["batch_size"] == 8
    assert manifest.regenerate.startswith(f"xlainspect dump --program {TRANSFORMER}:step --framework jax")


@pytest.mark.requires_jax
def test_batch_size_reaches_the_users_function(tmp_path, capsys):
    status, _, err = _run(["dump", "--program", f"{TRANSFORMER}:step", "--framework", "jax", "--batch-size", "3",
                           "--out", str(tmp_path)], capsys)
    assert status == 0, err
    manifest = DumpManifest.read(tmp_path / "cpu" / "transformer.step" / "jax" / "manifest.json")
    assert manifest.shapes["x"] == (3, 32, 64) and manifest.parameters["batch_size"] == 3
    assert "f32[3,32,64]" in (tmp_path / "cpu" / "transformer.step" / "jax" / "after_optimizations.txt").read_text()


@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_a_pair_of_functions_is_dumped_in_both_frameworks_and_diffed(user_dumps, capsys):
    tf_manifest = DumpManifest.read(user_dumps / "cpu" / "regression.step" / "tf" / "manifest.json")
    assert tf_manifest.module_name.startswith("a_inference_tf_step_")
    assert tf_manifest.shapes["params.w1"] == (32, 64)
    status, out, err = _run(["diff", "jax", "tf", "--program", f"{REGRESSION}:step", "--dumps", str(user_dumps),
                             "--json"], capsys)
    assert status == 0, err
    result = json.loads(out)
    jax_module = read_hlo(user_dumps / "cpu" / "regression.step" / "jax" / "after_optimizations.txt")[0]
    assert result["a"]["kernels"] == len(census(jax_module).kernels)


@pytest.mark.requires_jax
def test_diff_tells_two_variants_apart_and_a_variant_from_itself_not(user_dumps, capsys):
    scan = user_dumps / "cpu" / "transformer.step" / "jax"
    unrolled = user_dumps / "cpu" / "transformer.step_unrolled" / "jax"
    assert main(["diff", str(scan), str(unrolled), "--fail-on-diff"]) == 3  # a loop against unrolled layers
    copy = user_dumps / "scan-again"
    copy.mkdir(exist_ok=True)
    (copy / "after_optimizations.txt").write_text((scan / "after_optimizations.txt").read_text())
    assert main(["diff", str(scan), str(copy), "--fail-on-diff"]) == 0
    capsys.readouterr()


@pytest.mark.requires_jax
def test_a_jax_only_program_skips_tf_with_a_note_and_fails_when_tf_alone_is_asked(tmp_path, capsys):
    status, _, err = _run(["dump", "--program", f"{TRANSFORMER}:step", "--out", str(tmp_path)], capsys)
    assert status == 0 and "tf: skipped" in err
    assert not (tmp_path / "cpu" / "transformer.step" / "tf").exists()
    status, _, err = _run(["dump", "--program", f"{TRANSFORMER}:step", "--framework", "tf", "--out",
                           str(tmp_path / "b")], capsys)
    assert status == 1
    assert "gives only a JAX function, no TF one" in _error_line(err)


# -- time and memory ------------------------------------------------------------------------------------------


@pytest.mark.requires_jax
def test_time_attributes_the_users_step_to_its_kernels(user_dumps, capsys):
    status, out, err = _run(["time", "--program", f"{TRANSFORMER}:step", "--framework", "jax", "--repeats", "3",
                             "--warmup", "1", "--profile-runs", "2", "--json"], capsys)
    assert status == 0, err
    record = json.loads(out)
    assert record["program"] == "transformer.step" and record["batch_size"] == 8
    timing = record["frameworks"]["jax"]
    assert timing["module"] == "jit_train_step"
    kernels = {kernel["hlo_op"] for kernel in timing["kernels"]}
    filed = read_hlo(user_dumps / "cpu" / "transformer.step" / "jax" / "after_optimizations.txt")[0]
    names = {kernel.name for kernel in census(filed).kernels}
    assert kernels and kernels <= names | {i.name for i in filed.instructions()}
    assert any(kernel.startswith("while") or "fusion" in kernel for kernel in kernels)


@pytest.mark.requires_jax
def test_memory_figures_equal_jaxs_own_memory_analysis_of_the_same_function(tmp_path, capsys):
    status, out, err = _run(["memory", "--program", f"{TRANSFORMER}:step", "--framework", "jax", "--json"], capsys)
    assert status == 0, err
    figures = json.loads(out)["frameworks"]["jax"]["figures"]
    # JAX's own figures for the user's own jitted step, under the jax the children run (the compatibility run's
    # jax 0.10.2, else this one), with no xlainspect in that process.
    script = textwrap.dedent(f"""\
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("example", {str(TRANSFORMER)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        train_step, args = module.step()
        own = train_step.lower(*args).compile().memory_analysis()
        print(json.dumps([own.argument_size_in_bytes, own.output_size_in_bytes, own.alias_size_in_bytes,
                          own.temp_size_in_bytes]))
        """)
    own = subprocess.run([child_python(), "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"}).stdout.splitlines()[-1]
    assert [figures["argument"], figures["output"], figures["alias"], figures["temp"]] == json.loads(own)
    # Not equal to anything whatever: another batch size gives other figures.
    status, out, _ = _run(["memory", "--program", f"{TRANSFORMER}:step", "--framework", "jax", "--batch-size", "2",
                           "--json"], capsys)
    smaller = json.loads(out)["frameworks"]["jax"]["figures"]
    assert smaller["argument"] < figures["argument"] and smaller["batch_size"] == 2


@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_report_names_every_kernel_of_a_users_program(user_dumps, tmp_path, capsys):
    page = tmp_path / "report.html"
    status, _, err = _run(["report", "--program", f"{REGRESSION}:step", "--dumps", str(user_dumps), "-o", str(page)],
                          capsys)
    assert status == 0, err
    html = page.read_text()
    for framework in ("jax", "tf"):
        module = read_hlo(user_dumps / "cpu" / "regression.step" / framework / "after_optimizations.txt")[0]
        for kernel in census(module).kernels:
            assert kernel.name in html, kernel.name


@pytest.mark.requires_jax
def test_shapes_only_compile_and_refuse_to_time(tmp_path, capsys):
    program = tmp_path / "abstract.py"
    program.write_text(textwrap.dedent("""\
        import jax, jax.numpy as jnp

        def step():
            return jax.jit(lambda w, x: jnp.tanh(x @ w)), (jax.ShapeDtypeStruct((512, 256), jnp.float32),
                                                          jax.ShapeDtypeStruct((64, 512), jnp.float32))
        """))
    status, _, err = _run(["dump", "--program", f"{program}:step", "--framework", "jax", "--out",
                           str(tmp_path / "d")], capsys)
    assert status == 0, err
    text = (tmp_path / "d" / "cpu" / "abstract.step" / "jax" / "after_optimizations.txt").read_text()
    assert "f32[64,256]" in text
    status, _, err = _run(["time", "--program", f"{program}:step", "--framework", "jax"], capsys)
    assert status == 1 and "shapes only" in _error_line(err)


# -- bad --program values: one line each ------------------------------------------------------------------------

_BAD = {
    "not_callable": ("step = 3\n", "is a int, not callable"),
    "wrong_return": ("def step():\n    return 42\n", "returned a int; return (function, example_args)"),
    "args_not_tuple": ("import numpy as np\ndef step():\n    return (lambda x: x), np.ones(3)\n",
                       "the example arguments must be a tuple or list"),
    "raises": ("def step():\n    raise ValueError('no data here')\n", "raised ValueError: no data here"),
    "bad_dict": ("def step():\n    return {'torch': (abs, (1,))}\n", "give 'jax' and/or 'tf'"),
    "fails_to_trace": ("import jax.numpy as jnp, numpy as np\ndef f(x):\n    return x @ jnp.ones((7, 2))\n"
                       "def step():\n    return f, (np.ones((3, 5), np.float32),)\n", "compiling it raised"),
}


@pytest.mark.requires_jax
@pytest.mark.parametrize("case", sorted(_BAD))
def test_a_bad_program_gets_one_line_naming_it(case, tmp_path, capsys):
    source, expected = _BAD[case]
    (tmp_path / f"{case}.py").write_text(source)
    status, _, err = _run(["dump", "--program", f"{tmp_path / case}.py:step", "--framework", "jax", "--out",
                           str(tmp_path / "d")], capsys)
    assert status == 1
    line = _error_line(err)
    assert expected in line and f"{case}.py" in line
    if case in ("raises", "fails_to_trace"):  # at the user's own line
        assert re.search(rf"{case}\.py:\d+:", line), line
    assert not (tmp_path / "d" / "cpu").exists() or not any((tmp_path / "d" / "cpu").rglob("manifest.json"))


@pytest.mark.parametrize(("spec", "expected"), [
    ("missing.py:step", "missing.py: no such file"),
    ("{example}:nothing_here", "defines no 'nothing_here' at its top level"),
    ("{example}:", "give FILE.py:NAME or package.module:NAME"),
    ("no_such_module_xyz:step", "no module no_such_module_xyz"),
    ("{broken}:step", "not valid Python"),
    ("matvecc", "unknown program 'matvecc'"),
])
def test_bad_program_values_are_refused_before_anything_runs(spec, expected, tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("def step(:\n")
    spec = spec.format(example=TRANSFORMER, broken=broken)
    status, _, err = _run(["dump", "--program", spec, "--out", str(tmp_path / "d")], capsys)
    assert status == 1 and expected in _error_line(err)
    if "broken" in spec:
        assert f"{broken}:1:" in err


def test_a_batch_size_for_a_program_without_one_is_refused(tmp_path, capsys):
    program = tmp_path / "fixed.py"
    program.write_text("def step():\n    return abs, (1.0,)\n")
    status, _, err = _run(["dump", "--program", f"{program}:step", "--batch-size", "4", "--out", str(tmp_path)],
                          capsys)
    assert status == 1 and "takes no batch_size parameter" in _error_line(err)


def test_a_batch_size_parameter_needs_a_default(tmp_path):
    program = tmp_path / "nodefault.py"
    program.write_text("def step(batch_size):\n    return abs, (1.0,)\n")
    assert choose_program(f"{program}:step").takes_batch_size is True


@pytest.mark.requires_jax
def test_a_package_module_reference_works_from_the_working_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "steps.py").write_text(textwrap.dedent("""\
        import numpy as np

        def double():
            import jax
            return jax.jit(lambda x: 2 * x), (np.ones(4, np.float32),)
        """))
    monkeypatch.chdir(tmp_path)
    status, _, err = _run(["dump", "--program", "mypkg.steps:double", "--framework", "jax", "--out", "d"], capsys)
    assert status == 0, err
    assert (tmp_path / "d" / "cpu" / "mypkg.steps.double" / "jax" / "after_optimizations.txt").is_file()


@pytest.mark.requires_jax
def test_bench_sweeps_a_users_batch_sizes(tmp_path, capsys):
    status, out, err = _run(["bench", "--program", f"{TRANSFORMER}:step", "--frameworks", "jax", "--batch-sizes",
                             "2,4", "--repeats", "2", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    rows = (tmp_path / "bench.csv").read_text().splitlines()
    assert len(rows) == 3 and all(row.startswith("transformer.step,False,jax,") for row in rows[1:])
    assert [row.split(",")[3] for row in rows[1:]] == ["2", "4"]
    status, _, err = _run(["bench", "--program", f"{TRANSFORMER}:step", "--models", "ffnn"], capsys)
    assert status == 2 and "--program cannot be used with --models" in err


@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_max_batch_of_a_jax_only_program_skips_tf(tmp_path, capsys):
    status, out, err = _run(["memory", "max-batch", "--program", f"{TRANSFORMER}:step", "--device-memory", "64MiB",
                             "--out", str(tmp_path), "--json"], capsys)
    assert status == 0, err
    assert "tf: skipped" in err
    result = json.loads(out)
    assert list(result["frameworks"]) == ["jax"] and result["failures"] == []
    assert result["frameworks"]["jax"]["max_batch"] > 8
