"""``xlainspect dump -- CMD``: user scripts written for the tests, run through the CLI as a user would run them."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlainspect.cli import main
from xlainspect.hlo.dump_folder import dumped_modules
from xlainspect.runners import version_probe
from xlainspect.runners.command_capture import default_out_dir, merged_xla_flags
from xlainspect.runners.command_manifest import CommandManifest

REPO = Path(__file__).resolve().parents[1]
USERS_FLAG = "--xla_cpu_enable_fast_math=false"

# A user's training script: eager jnp calls compile helper modules (conversions, broadcasts) before the step.
JAX_TRAIN = textwrap.dedent("""\
    import os
    import jax, jax.numpy as jnp

    def users_train_step(params, x, y):
        def loss(params):
            h = x
            for w in params[:-1]:
                h = jnp.tanh(h @ w)
            return jnp.mean((h @ params[-1] - y) ** 2) + 1e-3 * sum(jnp.sum(w * w) for w in params)
        loss_value, grads = jax.value_and_grad(loss)(params)
        return [w - 0.01 * g / (jnp.sqrt(jnp.mean(g * g)) + 1e-6) for w, g in zip(params, grads)], loss_value

    params = [jnp.ones((16, 32)) / 16, jnp.ones((32, 32)) / 32, jnp.ones((32, 32)) / 32, jnp.ones((32, 4)) / 32]
    x = jnp.arange(8 * 16, dtype=jnp.float32).reshape(8, 16) / 100
    y = jnp.zeros((8, 4))
    step = jax.jit(users_train_step)
    for _ in range(3):
        params, loss_value = step(params, x, y)
    print("XLA_FLAGS seen:", os.environ.get("XLA_FLAGS"), flush=True)
    """)
TF_TRAIN = textwrap.dedent("""\
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def tf_train_step(w, x):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = tf.reduce_mean(tf.tanh(x @ w) ** 2)
        return w - 0.1 * tape.gradient(loss, w)

    print(tf_train_step(tf.ones((8, 4)), tf.ones((16, 8))).shape)
    """)
FAILS = textwrap.dedent("""\
    import jax, jax.numpy as jnp

    @jax.jit
    def doomed_step(x):
        return jnp.tanh(x) @ x.T

    doomed_step(jnp.ones((4, 4))).block_until_ready()
    raise RuntimeError("diverged at step 2")
    """)
NOTHING = 'import sys\nprint("no XLA here")\nsys.exit(3)\n'
# Compiles, says so, then waits to be interrupted.
WAITS = textwrap.dedent("""\
    import time
    import jax, jax.numpy as jnp

    jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(4)).block_until_ready()
    print("compiled", flush=True)
    time.sleep(120)
    """)


def run_xlainspect(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m xlainspect ARGS`` in ``cwd``, as a user runs it, with the user's own XLA_FLAGS set."""
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", XLA_FLAGS=USERS_FLAG,
               TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "xlainspect", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user")
    for name, text in {"jax_train.py": JAX_TRAIN, "tf_train.py": TF_TRAIN, "fails.py": FAILS,
                       "nothing.py": NOTHING, "waits.py": WAITS}.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def jax_run(work: Path) -> subprocess.CompletedProcess:
    return run_xlainspect(["dump", "--", sys.executable, "jax_train.py"], work)


@pytest.fixture(scope="module")
def tf_run(work: Path) -> subprocess.CompletedProcess:
    return run_xlainspect(["dump", "--", sys.executable, "tf_train.py"], work)


# -- JAX ------------------------------------------------------------------------------------------------------------


@pytest.mark.requires_jax
@pytest.mark.slow
def test_the_jax_step_is_the_main_module_and_helpers_are_listed(jax_run, work):
    assert jax_run.returncode == 0, jax_run.stderr
    folder = work / "dumps" / "run" / "jax_train"  # the default --out: dumps/run/<script stem>
    manifest = CommandManifest.read(folder / "manifest.json")
    main_module = manifest.main_module
    assert main_module is not None and "users_train_step" in main_module.name
    assert main_module.instructions == max(module.instructions for module in manifest.modules)
    helpers = [module for module in manifest.modules if "users_train_step" not in module.name]
    assert helpers and not any(module.main for module in helpers)
    assert any(module.name == "jit_convert_element_type" for module in helpers)
    assert [module.number for module in manifest.modules] == sorted(module.number for module in manifest.modules)
    assert main_module.kernels is not None and main_module.kernels > max(h.kernels or 0 for h in helpers)
    assert manifest.backends == ("cpu",) and manifest.exit_status == 0
    # Every module's two files are filed under XLA's own names, and nothing else but the manifest.
    assert {p.name for p in folder.iterdir()} == {"manifest.json"} | {
        name for module in manifest.modules for name in (module.before, module.after)}
    assert len(dumped_modules(folder)) == len(manifest.modules)
    # The table, on stderr, marks the step as main.
    (row,) = [line for line in jax_run.stderr.splitlines() if "users_train_step" in line]
    assert row.split()[-1] == "main" and row.split()[1] == main_module.name


@pytest.mark.requires_jax
@pytest.mark.slow
def test_the_versions_found_are_the_installed_jax_and_the_interpreter_that_ran(jax_run, work):
    manifest = CommandManifest.read(work / "dumps" / "run" / "jax_train" / "manifest.json")
    assert manifest.versions["jax"] == importlib.metadata.version("jax")
    assert manifest.versions["jaxlib"] == importlib.metadata.version("jaxlib")
    assert "tensorflow" not in manifest.versions  # only what the command imported
    assert manifest.xla == (f"jaxlib {importlib.metadata.version('jaxlib')}",)
    assert manifest.interpreter == sys.executable and manifest.processes == 1
    assert manifest.command == (sys.executable, "jax_train.py") and manifest.working_folder == str(work)


@pytest.mark.requires_jax
@pytest.mark.slow
def test_the_users_xla_flags_are_kept_and_their_output_passes_through(jax_run, work):
    (seen,) = [line for line in jax_run.stdout.splitlines() if line.startswith("XLA_FLAGS seen:")]
    flags = seen.split(":", 1)[1].split()
    assert flags[0] == USERS_FLAG and any(flag.startswith("--xla_dump_to=") for flag in flags)
    manifest = CommandManifest.read(work / "dumps" / "run" / "jax_train" / "manifest.json")
    assert manifest.xla_flags == f"{USERS_FLAG} --xla_dump_to=<dump dir> --xla_dump_hlo_as_text"
    assert "instructions" not in jax_run.stdout  # xlainspect's own lines go to stderr


def test_the_users_dump_to_is_replaced_and_their_other_flags_kept_as_written():
    users = '--xla_cpu_enable_fast_math=false --xla_dump_to="/my dumps" --xla_dump_hlo_module_re=step'
    flags, replaced = merged_xla_flags(users, Path("/tmp/d"), pass_dumps=False)
    assert replaced == '--xla_dump_to="/my dumps"'
    assert flags == ("--xla_cpu_enable_fast_math=false --xla_dump_hlo_module_re=step --xla_dump_to=/tmp/d "
                     "--xla_dump_hlo_as_text")
    flags, replaced = merged_xla_flags("--xla_dump_to /theirs", Path("/tmp/d"), pass_dumps=True)
    assert replaced == "--xla_dump_to /theirs" and "/theirs" not in flags and flags.endswith("pass_re=.*")
    assert merged_xla_flags("", Path("/tmp/d"), False) == ("--xla_dump_to=/tmp/d --xla_dump_hlo_as_text", None)


@pytest.mark.requires_jax
@pytest.mark.slow
def test_force_module_and_json_replace_a_dump_only_when_complete(jax_run, work, tmp_path):
    assert jax_run.returncode == 0, jax_run.stderr
    copy = tmp_path / "again"
    shutil.copytree(work / "dumps" / "run" / "jax_train", copy)
    refused = run_xlainspect(["dump", "--out", str(copy), "--", sys.executable, "jax_train.py"], work)
    assert refused.returncode == 1
    assert refused.stderr == (f"xlainspect: {copy}: a dump is already there; add --force to replace it, or choose "
                              "another --out\n")
    result = run_xlainspect(["dump", "--out", str(copy), "--force", "--module", "users_train", "--json", "--",
                             sys.executable, "jax_train.py"], work)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)  # only the JSON on stdout: the script's own print went to stderr
    assert "XLA_FLAGS seen:" in result.stderr
    manifest = CommandManifest.read(copy / "manifest.json")
    assert printed == {"directory": str(copy), **manifest.to_json()}
    assert [module.name for module in manifest.modules] == ["jit_users_train_step"]
    assert manifest.module_filter == "users_train" and manifest.modules[0].main
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no partial or old folder left beside it


@pytest.mark.requires_jax
@pytest.mark.slow
def test_a_module_filter_that_matches_nothing_files_nothing_and_says_so(work, tmp_path):
    result = run_xlainspect(["dump", "--out", str(tmp_path / "none"), "--module", "^no_such_module$", "--",
                             sys.executable, "jax_train.py"], work)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("xlainspect:")]
    assert "no module name matches --module '^no_such_module$', nothing filed" in line
    assert "it compiled" in line and "the largest first: jit_users_train_step," in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.requires_jax
@pytest.mark.slow
def test_a_failing_command_files_what_it_compiled_and_exits_with_its_status(work):
    result = run_xlainspect(["dump", "--", sys.executable, "fails.py"], work)
    assert result.returncode == 1
    assert "RuntimeError: diverged at step 2" in result.stderr  # the command's own stderr passed through
    manifest = CommandManifest.read(work / "dumps" / "run" / "fails" / "manifest.json")
    assert manifest.exit_status == 1
    assert any(module.name == "jit_doomed_step" and module.after for module in manifest.modules)
    assert result.stderr.splitlines()[-1] == (
        f"xlainspect: the command failed (exit 1); filed the {len(manifest.modules)} module(s) it compiled in "
        "dumps/run/fails")


def test_a_command_that_compiles_nothing_is_one_line_with_its_status(work, tmp_path):
    result = run_xlainspect(["dump", "--out", str(tmp_path / "out"), "--", sys.executable, "nothing.py"], work)
    assert result.returncode == 3
    assert result.stdout == "no XLA here\n"
    assert result.stderr.splitlines()[-1].startswith(
        f"xlainspect: {sys.executable} nothing.py failed (exit 3) and compiled nothing with XLA: no module was "
        "dumped, nothing filed")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_command_is_one_line_and_status_127(tmp_path, capsys):
    assert main(["dump", "--out", str(tmp_path / "out"), "--", "no-such-command-xlainspect"]) == 127
    assert capsys.readouterr().err.splitlines()[-1] == (
        "xlainspect: no-such-command-xlainspect: command not found; give a program on PATH or a path to one")


@pytest.mark.requires_jax
@pytest.mark.slow
def test_ctrl_c_reaches_the_command_and_what_it_compiled_is_filed(work, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    out = tmp_path / "interrupted"
    # Its own session stands in for the terminal: Ctrl-C signals the whole foreground process group.
    process = subprocess.Popen([sys.executable, "-m", "xlainspect", "dump", "--out", str(out), "--",
                                sys.executable, "waits.py"], cwd=work, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout.readline() == "compiled\n"
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert CommandManifest.read(out / "manifest.json").exit_status == 130
    assert err.splitlines()[-1].startswith("xlainspect: the command failed (exit 130); filed the")


# -- TF ---------------------------------------------------------------------------------------------------------------


@pytest.mark.requires_tf
@pytest.mark.slow
def test_the_tf_step_is_the_main_module(tf_run, work):
    assert tf_run.returncode == 0, tf_run.stderr
    manifest = CommandManifest.read(work / "dumps" / "run" / "tf_train" / "manifest.json")
    assert manifest.main_module is not None and "tf_train_step" in manifest.main_module.name
    installed = subprocess.run([sys.executable, "-c", "import tensorflow as tf; print(tf.__version__)"],
                               capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    assert manifest.versions["tensorflow"] == installed
    assert f"tensorflow {installed}" in manifest.xla


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.slow
def test_the_filed_folders_work_with_stats_render_and_diff(jax_run, tf_run, work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    jax_folder, tf_folder = Path("dumps/run/jax_train"), Path("dumps/run/tf_train")
    jax_manifest = CommandManifest.read(jax_folder / "manifest.json")
    assert main(["stats", "--json", str(jax_folder)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2 * len(jax_manifest.modules)
    assert main(["render", str(jax_folder), "-o", "step.svg"]) == 0
    assert Path("step.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    capsys.readouterr()
    assert main(["diff", str(jax_folder), str(tf_folder)]) == 0
    out = capsys.readouterr().out
    assert f"({jax_manifest.main_module.name})" in out and "tf_train_step" in out


# -- pieces -----------------------------------------------------------------------------------------------------------


def test_the_default_folder_is_named_after_the_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("train.py").write_text("")
    assert default_out_dir(["python", "-u", "train.py", "--steps", "3"]) == Path("dumps/run/train")
    assert default_out_dir(["python", "-m", "models.trainer", "x.py"]) == Path("dumps/run/trainer")
    assert default_out_dir(["./run.sh", "missing.py"]) == Path("dumps/run/run")


def test_the_probe_reports_frameworks_and_runs_the_users_sitecustomize(tmp_path):
    probe, users = tmp_path / "probe", tmp_path / "users"
    probe.mkdir()
    users.mkdir()
    shutil.copyfile(version_probe.__file__, probe / "sitecustomize.py")
    (users / "sitecustomize.py").write_text("import os\nos.environ['USERS_SITECUSTOMIZE'] = 'ran'\n")
    report = tmp_path / "versions.jsonl"
    code = ("import os, sys, types; torch = types.ModuleType('torch'); torch.__version__ = '9.9'; "
            "sys.modules['torch'] = torch; print(os.environ.get('USERS_SITECUSTOMIZE'), "
            f"{str(probe)!r} in sys.path)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(probe), str(users)]),
               **{version_probe.VERSIONS_FILE_ENV: str(report)})
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert ran.stdout == "ran False\n", ran.stderr
    (line,) = report.read_text().splitlines()
    assert json.loads(line)["versions"] == {"torch": "9.9"}
    assert json.loads(line)["python"] == sys.executable


def test_usage_errors_name_both_options(capsys):
    assert main(["dump", "--framework", "jax", "--", "python", "x.py"]) == 2
    assert re.search(r"a command cannot be used with --framework", capsys.readouterr().err)
    assert main(["dump", "--program", "mse", "--json"]) == 2
    assert "--json cannot be used with --program" in capsys.readouterr().err
    assert main(["dump", "--program", "mse", "--", "python", "x.py"]) == 2
    assert "--program cannot be used with a command" in capsys.readouterr().err
    assert main(["dump"]) == 2
    assert "give --program NAME or a command after --" in capsys.readouterr().err


def test_force_never_replaces_a_folder_it_did_not_file(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["dump", "--out", str(mine), "--force", "--", sys.executable, "-c", "pass"]) == 1
    assert "not a folder 'xlainspect dump -- CMD' filed" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
