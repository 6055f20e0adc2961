"""Folders that XLA's own ``--xla_dump_to`` wrote, read as they are: every module file, none of XLA's side files,
the program's own module picked for commands that read one, and ``--module`` to pick another."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlainspect import read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.hlo.files import hlo_files, is_dumped_module, main_module_file

# Users' programs, not built-ins: a small MLP train step, with helpers around it (jax.random, jnp.asarray), whose
# helper modules JAX compiles beside the step; jax.random.normal's is larger than the step itself.
JAX_PROGRAM = textwrap.dedent("""\
    import jax, jax.numpy as jnp

    def mlp_train_step(params, x, y):
        def loss(params):
            h = jnp.tanh(x @ params["w1"] + params["b1"])
            return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)
        grads = jax.grad(loss)(params)
        return jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w1": jax.random.normal(k1, (16, 32)), "b1": jnp.zeros(32),
              "w2": jax.random.normal(k2, (32, 4)), "b2": jnp.zeros(4)}
    x = jnp.asarray([[float(i + j) for j in range(16)] for i in range(8)])
    print(jax.jit(mlp_train_step)(params, x, jax.random.normal(k3, (8, 4)))["w1"].shape)
    """)
TF_PROGRAM = textwrap.dedent("""\
    import tensorflow as tf
    w1 = tf.Variable(tf.random.normal((16, 32)))
    w2 = tf.Variable(tf.random.normal((32, 4)))

    @tf.function(jit_compile=True)
    def mlp_train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((tf.tanh(x @ w1) @ w2 - y) ** 2)
        g1, g2 = tape.gradient(loss, [w1, w2])
        w1.assign_sub(0.01 * g1)
        w2.assign_sub(0.01 * g2)
        return loss

    @tf.function(jit_compile=True)
    def scale(x):
        return x * 2.0

    print(float(mlp_train_step(scale(tf.random.normal((8, 16))), tf.random.normal((8, 4)))))
    """)
FLAGS = "--xla_dump_hlo_as_text --xla_dump_hlo_as_proto"
PASS_FLAGS = "--xla_dump_hlo_as_text --xla_dump_hlo_pass_re=.*"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What XLA writes for each program with the real dump flags, side files and all, uncurated: ``jax``, ``tf``,
    and ``jax_passes`` with every pass's module. Each compiles in its own process (XLA reads XLA_FLAGS once)."""
    pytest.importorskip("jax")
    root = tmp_path_factory.mktemp("xla_dumps")
    jobs = {"jax": (JAX_PROGRAM, FLAGS), "jax_passes": (JAX_PROGRAM, PASS_FLAGS)}
    if importlib.util.find_spec("tensorflow") is not None:  # TF's tests are skipped without it (requires_tf)
        jobs["tf"] = (TF_PROGRAM, FLAGS)
    running = {}
    for name, (program, flags) in jobs.items():
        script = root / f"{name}_program.py"
        script.write_text(program)
        env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={root / (name + '_dump')} {flags}", JAX_PLATFORMS="cpu",
                   TF_CPP_MIN_LOG_LEVEL="2")
        running[name] = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    return {name: root / (name + "_dump") for name in running}


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def listing(capsys: pytest.CaptureFixture[str], folder: Path) -> list[dict]:
    status, out, err = cli(capsys, "stats", "--list", "--json", folder)
    assert (status, err) == (0, "")
    return json.loads(out)


@pytest.mark.slow
@pytest.mark.requires_jax
def test_every_module_file_is_read_and_no_side_file(raw):
    for folder in raw.values():
        names = sorted(p.name for p in folder.iterdir())
        side_files = [n for n in names if n.endswith(("-buffer-assignment.txt", "-memory-usage-report.txt"))]
        assert side_files and any(n.endswith("debug_options") for n in names)  # XLA's side files are really there
        modules = [n for n in names if n.endswith(("before_optimizations.txt", "after_optimizations.txt"))]
        assert len(modules) >= 4  # the step and at least one helper, each before and after optimization
        if folder != raw["jax_passes"]:
            assert any(n.endswith(".hlo.pb") for n in names)
            assert [p.name for p in hlo_files([str(folder)])] == modules
        assert main(["stats", str(folder)]) == 0


@pytest.mark.slow
@pytest.mark.requires_jax
def test_the_main_module_is_the_step_not_a_larger_jax_helper(raw, capsys):
    modules = listing(capsys, raw["jax"])
    (main_entry,) = [m for m in modules if m["main"]]
    assert main_entry["name"] == "jit_mlp_train_step" and main_entry["stages"] == ["before", "after"]
    others = [m for m in modules if m is not main_entry]
    assert all(m["helper"] for m in others) and not main_entry["helper"]
    # jax.random.normal's module outgrows the step: "the most instructions" alone would pick it.
    assert max(m["instructions"] for m in others) > main_entry["instructions"]
    assert [m["number"] for m in modules] == sorted(m["number"] for m in modules)  # compile order
    assert [m["position"] for m in modules] == list(range(len(modules)))
    status, out, _ = cli(capsys, "stats", "--list", raw["jax"])
    (line,) = [line for line in out.splitlines() if line.endswith(" jit_mlp_train_step")]
    assert re.fullmatch(rf"\s+{len(modules) - 1}\s+{main_entry['number']:04d}\s+{main_entry['instructions']}\s+"
                        r"before\+after\s+main\s+jit_mlp_train_step", line)
    assert main_module_file(raw["jax"]).name.endswith(".jit_mlp_train_step.cpu_after_optimizations.txt")


@pytest.mark.slow
@pytest.mark.requires_tf
def test_tf_folder_main_module_is_the_step(raw, capsys):
    modules = listing(capsys, raw["tf"])
    (main_entry,) = [m for m in modules if m["main"]]
    assert main_entry["name"].startswith("a_inference_mlp_train_step_") and "." in main_entry["name"]
    others = [m for m in modules if m is not main_entry]
    assert others and all(main_entry["instructions"] > m["instructions"] for m in others)
    assert any(m["name"].startswith("a_inference_scale_") for m in others)


@pytest.mark.slow
@pytest.mark.requires_jax
def test_module_picks_a_helper_by_regex_or_position(raw, capsys):
    modules = listing(capsys, raw["jax"])
    status, out, err = cli(capsys, "stats", raw["jax"], "--module", "unstack", "--json")
    assert (status, err) == (0, "")
    assert [item["module"] for item in json.loads(out)] == ["jit_unstack"]
    position = next(m["position"] for m in modules if m["name"] == "jit_mlp_train_step")
    status, out, _ = cli(capsys, "stats", raw["jax"], "--module", position, "--json")
    assert [item["module"] for item in json.loads(out)] == ["jit_mlp_train_step"]


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.parametrize("command", ["stats", "render", "diff", "graph", "passes"])
def test_bad_selectors_are_one_line(raw, capsys, tmp_path, command):
    folder = raw["jax_passes" if command == "passes" else "jax"]
    modules = listing(capsys, folder)
    count = len(modules)
    normal = ", ".join(f"#{m['position']} {m['name']}" for m in modules if "normal" in m["name"])
    outputs = {"render": ["-o", tmp_path / "x.svg"], "graph": ["-o", tmp_path / "x.graphml"], "diff": [folder]}
    cases = {"(": "xlainspect: --module '(': not a regular expression (missing ), unterminated subpattern at "
                  "position 0); give one, or a position\n",
             "no_such_module": f"xlainspect: {folder}: no module name matches --module 'no_such_module'; the modules "
                               "are jit_stage, jit__threefry_seed, jit__threefry_split, jit_unstack, jit__normal, "
                               "jit_convert_element_type, jit_broadcast_in_dim, jit__normal...\n",
             "normal": f"xlainspect: {folder}: 3 modules match --module 'normal' ({normal}); give one's position "
                       "(--module 3), or a regular expression only its name matches (anchor it with ^ and $)\n",
             str(count): f"xlainspect: {folder}: has {count} module(s); --module {count} must be 0 to {count - 1}, or "
                         "a regular expression on the name\n"}
    for selector, message in cases.items():
        status, out, err = cli(capsys, command, folder, *outputs.get(command, []), "--module", selector)
        assert (status, err) == (1, message), selector
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
@pytest.mark.requires_tf
def test_diff_with_module_and_labels(raw, capsys):
    status, out, err = cli(capsys, "diff", raw["jax"], raw["tf"], "--label-a", "mine-jax", "--label-b", "mine-tf")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("A = mine-jax: ") and lines[0].endswith("(jit_mlp_train_step)")
    assert lines[1].startswith("B = mine-tf: ") and "a_inference_mlp_train_step_" in lines[1]
    assert "?" not in lines[0] + lines[1]
    # --module applies to both sides; --module-b overrides B's. The JSON names the sides by their labels.
    status, out, _ = cli(capsys, "diff", raw["jax"], raw["jax"], "--module", "unstack", "--module-b", "mlp", "--json")
    data = json.loads(out)
    assert (data["a"]["module"], data["b"]["module"]) == ("jit_unstack", "jit_mlp_train_step")
    assert (data["a"]["label"], data["b"]["label"]) == ("jax_dump", "jax_dump")  # default: the folder's name
    status, out, _ = cli(capsys, "diff", raw["jax"], raw["tf"], "--module", "mlp_train_step", "--json",
                         "--label-b", "T")
    data = json.loads(out)
    assert data["b"]["module"].startswith("a_inference_mlp_train_step_") and data["b"]["label"] == "T"


@pytest.mark.slow
@pytest.mark.requires_tf
def test_render_module_of_a_tf_folder(raw, capsys, tmp_path):
    status, out, err = cli(capsys, "render", raw["tf"], "--module", "scale", "-o", tmp_path / "scale.svg")
    assert (status, err) == (0, "")
    (scale,) = raw["tf"].glob("module_*.a_inference_scale_*.cpu_after_optimizations.txt")
    kernels = census(read_hlo(scale)[0]).kernels
    svg = (tmp_path / "scale.svg").read_text()
    assert kernels and all(kernel.name in svg for kernel in kernels)
    assert main(["render", str(raw["tf"]), "-o", str(tmp_path / "step.svg")]) == 0
    step = census(read_hlo(main_module_file(raw["tf"]))[0])
    assert len(step.kernels) > len(kernels)
    assert all(kernel.name in (tmp_path / "step.svg").read_text() for kernel in step.kernels)


@pytest.mark.slow
@pytest.mark.requires_tf
def test_report_of_two_raw_folders_with_labels(raw, capsys, tmp_path):
    page_file = tmp_path / "two.html"
    status, _, err = cli(capsys, "report", raw["jax"], raw["tf"], "--label-a", "JAX-mine", "--label-b", "TF-mine",
                         "-o", page_file)
    assert (status, err) == (0, "")
    page = page_file.read_text()
    assert "<h1>JAX-mine against TF-mine</h1>" in page
    assert "<th>JAX-mine kernel</th><th>TF-mine kernel</th>" in page
    assert "?" not in re.search(r"<table>.*?</table>", page, re.S).group(0)  # no made-up versions
    for folder in (raw["jax"], raw["tf"]):
        for kernel in census(read_hlo(main_module_file(folder))[0]).kernels:
            assert kernel.name in page


@pytest.mark.slow
@pytest.mark.requires_jax
def test_report_of_one_side_names_every_kernel(raw, capsys, tmp_path):
    page_file = tmp_path / "one.html"
    status, _, err = cli(capsys, "report", raw["jax"], "-o", page_file)
    assert (status, err) == (0, "")
    page = page_file.read_text()
    kernels = census(read_hlo(main_module_file(raw["jax"]))[0]).kernels
    assert f"{len(kernels)} kernels of jax_dump; the diff needs a second side, so there is nothing to compare" in page
    assert all(f"<td>{kernel.name}</td>" in page for kernel in kernels)
    assert page.count("<svg") == 1
    status, _, err = cli(capsys, "report", raw["jax"], "--label-b", "x", "-o", page_file)
    assert status == 2 and "--label-b needs two sides, A and B" in err


@pytest.mark.slow
@pytest.mark.requires_jax
def test_passes_of_a_raw_folder_read_the_main_module(raw, capsys):
    status, out, err = cli(capsys, "passes", raw["jax_passes"], "--json")
    assert (status, err) == (0, "")
    steps = json.loads(out)
    assert steps and all(".jit_mlp_train_step." in Path(step["file"]).name for step in steps)
    assert steps[-1]["fusions"]["total"] > 0
    modules = listing(capsys, raw["jax_passes"])
    unstack = next(m["position"] for m in modules if m["name"] == "jit_unstack")
    status, out, _ = cli(capsys, "passes", raw["jax_passes"], "--module", unstack, "--json")
    assert all(".jit_unstack." in Path(step["file"]).name for step in json.loads(out))


def test_side_files_are_told_from_modules_by_name_and_content(tmp_path):
    (tmp_path / "m.cpu_after_optimizations-live-range.txt").write_text("HloLiveRange (max 5):\n  0:w.1\n")
    (tmp_path / "notes.txt").write_text("HloLiveRange (max 5):\n")  # a module's name, not its content
    (tmp_path / "c.txt").write_text("%c (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}\n")
    assert [p.name for p in sorted(tmp_path.iterdir()) if is_dumped_module(p)] == ["c.txt"]


def test_a_folder_without_modules_is_one_line(tmp_path, capsys):
    (tmp_path / "m.debug_options").write_text("xla_dump_to: x\n")
    assert main(["render", str(tmp_path), "-o", str(tmp_path / "x.svg")]) == 1
    assert capsys.readouterr().err == (f"xlainspect: {tmp_path}: no after_optimizations.txt here, nor XLA's "
                                       "*after_optimizations.txt modules; give an HLO file, a folder 'xlainspect "
                                       "dump' filed, or one that --xla_dump_to wrote\n")
