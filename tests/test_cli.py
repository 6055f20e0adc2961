"""Tests for the CLI: output, JSON shape, exit codes and one-line errors."""

from __future__ import annotations

import json
import textwrap

import networkx as nx
import pytest

from xlainspect.cli import main

GOOD = textwrap.dedent("""\
    HloModule good

    %body (p: f32[2]) -> f32[2] {
      %p = f32[2]{0} parameter(0)
      ROOT %e = f32[2]{0} exponential(%p)
    }

    ENTRY %main (x: f32[2]) -> f32[2] {
      %x = f32[2]{0} parameter(0)
      %f = f32[2]{0} fusion(%x), kind=kLoop, calls=%body
      ROOT %c = f32[2]{0} custom-call(%f), custom_call_target="my_target"
    }
    """)

TWO_MODULES = GOOD + "// -----\n" + GOOD.replace("HloModule good", "HloModule second")


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.hlo"
    path.write_text(GOOD)
    return path


def test_stats_json(capsys, tmp_path, good):
    two = tmp_path / "two.txt"
    two.write_text(TWO_MODULES)
    status, out, err = run(capsys, "stats", str(good), str(two), "--json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert [(item["file"], item["index"], item["module"]) for item in data] == [
        (str(good), 0, "good"), (str(two), 0, "good"), (str(two), 1, "second")]
    first = data[0]
    assert first["computations"] == 2 and first["instructions"] == 5
    assert first["opcodes"] == {"parameter": 2, "exponential": 1, "fusion": 1, "custom-call": 1}
    assert first["fusions"] == {"total": 1, "by_kind": {"kLoop": 1}}
    assert first["custom_calls"] == {"my_target": 1}


def test_stats_text(capsys, good):
    status, out, _ = run(capsys, "stats", str(good))
    assert status == 0
    assert out.splitlines()[0] == f"{good} [0] good"
    assert "  fusions       1 (kLoop 1)" in out.splitlines()
    assert "  custom-calls  1 (my_target 1)" in out.splitlines()


def test_stats_directory_skips_files_that_are_not_hlo(capsys, tmp_path, good):
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "module_0001.jit_f.cpu_after_optimizations.txt").write_text(GOOD)
    (dump / "module_0001.jit_f.cpu_after_optimizations-buffer-assignment.txt").write_text(
        "BufferAssignment:\nallocation 0: size 8\n")
    (dump / "module_0001.jit_f.ir-no-opt.ll").write_text("; ModuleID\n")
    status, out, _ = run(capsys, "stats", str(dump), "--json")
    assert status == 0
    assert [item["file"] for item in json.loads(out)] == [str(dump / "module_0001.jit_f.cpu_after_optimizations.txt")]


def test_parse_error_is_one_line_with_location_and_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.hlo"
    bad.write_text(GOOD.replace("%x = f32[2]{0} parameter(0)", "%x = f32[2]{0} parameter(zero)"))
    status, out, err = run(capsys, "stats", str(bad))
    assert status == 1 and out == ""
    assert err == f"{bad}:9:28: expected a parameter number in parameter(zero)\n"


def test_missing_path_is_one_line(capsys, tmp_path):
    status, _, err = run(capsys, "stats", str(tmp_path / "nope.hlo"))
    assert status == 1
    assert err == f"xlainspect: {tmp_path / 'nope.hlo'}: no such file or directory; give an HLO text file or a " \
                  "folder of them\n"


def test_empty_directory_is_one_line(capsys, tmp_path):
    status, _, err = run(capsys, "stats", str(tmp_path))
    assert status == 1
    assert err == f"xlainspect: {tmp_path}: no HLO text files (*.txt, *.hlo) in this directory; give a dump folder " \
                  "or an HLO file\n"


@pytest.mark.parametrize("fmt", ["graphml", "json"])
def test_graph_writes_a_readable_graph(capsys, tmp_path, good, fmt):
    out_file = tmp_path / f"g.{fmt}"
    status, out, err = run(capsys, "graph", str(good), "--format", fmt, "-o", str(out_file))
    assert (status, err) == (0, "")
    assert out == f"wrote {out_file}: 5 nodes, 4 edges ({fmt}, module good)\n"
    if fmt == "graphml":
        graph = nx.read_graphml(out_file, force_multigraph=True)
    else:
        graph = nx.node_link_graph(json.loads(out_file.read_text()), edges="edges")
    assert graph.nodes["f"]["fusion_kind"] == "kLoop"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_graph_module_index_out_of_range(capsys, tmp_path, good):
    status, _, err = run(capsys, "graph", str(good), "--module", "3", "-o", str(tmp_path / "g.graphml"))
    assert status == 1
    assert err == (f"xlainspect: {good}: has 1 module(s); --module 3 must be 0 to 0, or a regular expression on the "
                   "name\n")
    assert not (tmp_path / "g.graphml").exists()


def test_graph_into_missing_folder_is_one_line(capsys, tmp_path, good):
    status, _, err = run(capsys, "graph", str(good), "-o", str(tmp_path / "missing" / "g.graphml"))
    assert status == 1
    assert err.startswith(f"xlainspect: {tmp_path / 'missing' / 'g.graphml'}: cannot write here:")
    assert err.count("\n") == 1


# -- usage errors: exit 2, one "Error:" line naming the options, before any work ----------------------------------


@pytest.mark.parametrize("args, message", [
    (["stats"], "Missing argument 'PATHS...'."),
    (["memory"], "Missing option '--program'."),
    (["memory", "--program", "dpsgd_ffnn", "--check-peak", "256", "--framework", "tf"],
     ("--check-peak cannot be used with --framework: the peak check runs JAX steps on this machine's CPU at its own "
      "batch sizes (now 'xlainspect memory check-peak')")),
    (["memory", "--program", "dpsgd_ffnn", "--check-peak", "256", "--backend", "gpu"],
     ("--check-peak cannot be used with --backend: the peak check runs JAX steps on this machine's CPU at its own "
      "batch sizes (now 'xlainspect memory check-peak')")),
    (["memory", "--program", "dpsgd_ffnn", "--check-peak", "256", "--target", "h100"],
     ("--check-peak cannot be used with --target: the peak check runs JAX steps on this machine's CPU at its own "
      "batch sizes (now 'xlainspect memory check-peak')")),
    (["memory", "--program", "dpsgd_ffnn", "--max-batch", "--check-peak", "256"],
     ("--check-peak cannot be used with --max-batch: the peak check runs JAX steps on this machine's CPU at its own "
      "batch sizes (now 'xlainspect memory check-peak')")),
    (["memory", "--program", "dpsgd_ffnn", "--max-batch", "--batch-size", "8", "--device-memory", "1GiB"],
     ("--max-batch cannot be used with --batch-size: it searches for the batch size (now 'xlainspect memory "
      "max-batch')")),
    (["memory", "--program", "dpsgd_ffnn", "--start", "8"],
     "--start needs --max-batch: it belongs to the largest-batch search ('xlainspect memory max-batch')"),
    (["memory", "--program", "dpsgd_ffnn", "--target", "h100"],
     "--target needs --backend gpu: it names the GPU to compile for"),
    (["memory", "--program", "dpsgd_ffnn", "check-peak", "--batch-sizes", "256"],
     "--program goes after the subcommand: xlainspect memory check-peak --program ..."),
    (["memory", "check-peak", "--program", "dpsgd_ffnn", "--batch-sizes", "256", "--framework", "jax"],
     "No such option '--framework'."),
    (["memory", "--program", "dpsgd_ffnn", "--check-peak", "x"],
     "Invalid value for '--check-peak': 'x' is not a valid positive integer."),
    (["memory", "check-peak", "--program", "dpsgd_ffnn", "--batch-sizes", "16,x"],
     "Invalid value for '--batch-sizes': 'x' is not a valid positive integer (in '16,x')"),
    (["memory", "max-batch", "--program", "dpsgd_ffnn"],
     "the largest batch needs --device-memory SIZE (e.g. 80GiB) or --target NAME: the memory to fit"),
    (["memory", "max-batch", "--program", "dpsgd_ffnn", "--batch-size", "8"], "No such option '--batch-size'."),
    (["memory", "max-batch", "--program", "dpsgd_ffnn", "--device-memory", "1GiB", "--target", "h100"],
     ("--target cannot be used with --device-memory unless --backend gpu: on the CPU the target would only give the "
      "memory, which --device-memory already sets")),
    (["memory", "max-batch", "--program", "dpsgd_ffnn", "--device-memory", "80XB"],
     "Invalid value for '--device-memory': '80XB' is not a size; give one such as 80GiB, 40GB or 17179869184"),
    (["memory", "max-batch", "--program", "dpsgd_ffnn", "--device-memory", "1.2.3"],
     "Invalid value for '--device-memory': '1.2.3' is not a size; give one such as 80GiB, 40GB or 17179869184"),
    (["memory", "max-batch", "--program", "dpsgd_ffnn", "--device-memory", "0GiB"],
     "Invalid value for '--device-memory': '0GiB' is no memory at all; give a positive size such as 80GiB"),
    (["bench", "--batch-sizes", "16,x"],
     "Invalid value for '--batch-sizes': 'x' is not a valid positive integer (in '16,x')"),
    (["bench", "--batch-sizes", "16,0"], "Invalid value for '--batch-sizes': 0 is not in the range x>=1 (in '16,0')"),
    (["bench", "--batch-sizes", "16,,32"],
     "Invalid value for '--batch-sizes': '16,,32' has an empty item; separate the values with single commas"),
    (["bench", "--batch-sizes", "16,32,16"], "Invalid value for '--batch-sizes': '16' is given twice (in '16,32,16')"),
    (["bench", "--frameworks", "jax,pytorch"],
     "Invalid value for '--frameworks': 'pytorch' is not one of 'jax', 'tf', 'torch', 'torch_xla' (in "
     "'jax,pytorch')"),
    (["bench", "--models", "ffnn,resnet"],
     "Invalid value for '--models': 'resnet' is not one of 'logreg', 'ffnn', 'mnist', 'embedding', 'lstm', "
     "'cifar10' (in 'ffnn,resnet')"),
    (["bench", "--no-sweep"], "--no-sweep needs --ablation: without the sweep only the ablation is left to run"),
    (["bench", "--no-sweep", "--ablation", "--batch-sizes", "16"],
     "--no-sweep cannot be used with --batch-sizes: --batch-sizes are the sweep's"),
    (["bench", "--ablation-batch-size", "64"],
     "--ablation-batch-size needs --ablation: it sets the ablation's batch size"),
    (["dump", "--program", "matvec", "--target", "h100"],
     "--target needs --backend gpu: it names the GPU to compile for"),
    (["dump", "--program", "matvec", "--framework", "jax", "--compiler", "jax"],
     "--compiler jax cannot be used with --framework jax: it compiles TF's (or PyTorch/XLA's) module with JAX's "
     "XLA"),
    (["dump", "--program", "matvec", "--backend", "tpu"],
     "Invalid value for '--backend': 'tpu' is not one of 'cpu', 'gpu'."),
    (["diff", "jax", "tf", "--program", "matvec", "--target", "h100"],
     "--target needs --backend gpu: it names the GPU to compile for"),
    (["diff", "jax", "tf", "--program", "matvec", "--backend", "tpu"],
     "Invalid value for '--backend': 'tpu' is not one of 'cpu', 'gpu'."),
    (["diff", "jax", "tf", "--program", "matvec", "--ignore-layout"],
     "--ignore-layout needs --fail-on-diff: it only relaxes the verdict that sets the exit status"),
    (["diff", "a.txt", "b.txt", "--program", "matvec"],
     "--program picks the filed dumps that A or B name (jax, tf, tf_via_jax, torch_xla, torch_xla_via_jax); here A and "
     "B are paths"),
    (["diff", "a.txt", "b.txt", "--backend", "gpu"],
     "--backend picks the filed dumps that A or B name (jax, tf, tf_via_jax, torch_xla, torch_xla_via_jax); here A and "
     "B are paths"),
    (["time", "--program", "matvec", "--tf-via-jax", "--framework", "jax"],
     "--tf-via-jax cannot be used with --framework jax: it times TF's module"),
    (["time", "--program", "matvec", "--tf-via-jax", "--no-compile"],
     "--tf-via-jax cannot be used with --no-compile: it times TF's compiled module, not an ablation build"),
    (["time", "--program", "matvec", "--no-compile", "--profile-runs", "2"],
     "--no-compile cannot be used with --profile-runs: without compiling there is no module to profile per kernel"),
    (["time", "--program", "matvec", "--repeats", "0"], "Invalid value for '--repeats': 0 is not in the range x>=1."),
    (["render", "x.txt", "-o", "x.svg", "--computation", "c", "--fusion", "f"],
     "--computation cannot be used with --fusion: --fusion draws its own fused computation"),
    (["render", "x.txt", "-o", "x.svg", "--radius", "1"],
     "--radius needs --around: it counts hops from that instruction"),
    (["render", "x.txt", "-o", "x.svg", "--color", "time"],
     "--color time needs --timing FILE: per-kernel times from 'xlainspect time --json'"),
    (["render", "x.txt", "-o", "x.png"],
     "--output x.png: render writes SVG; name the file *.svg (a browser or 'rsvg-convert' turns it into a PNG)"),
    (["report", "--program", "matvec", "-o", "r.html", "--backend", "tpu"],
     "Invalid value for '--backend': 'tpu' is not one of 'cpu', 'gpu'."),
    (["report", "--program", "matvec", "-o", "r.html", "--target", "h100"],  # as diff says it
     "--target needs --backend gpu: it names the GPU to compile for"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_usage_errors_exit_2_with_one_line_naming_the_options(capsys, args, message):
    status, out, err = run(capsys, *args)
    assert (status, out) == (2, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"Usage: xlainspect {args[0]}")  # click's usage message, as the README says
    assert [line for line in lines if line.startswith("Error:")] == [f"Error: {message}"]
    assert lines[-1] == f"Error: {message}"


def test_options_the_user_did_not_give_are_never_refused(capsys, tmp_path, good):
    # The refusals look at what was given, not at values: defaults equal to a refused value pass.
    status, out, _ = run(capsys, "diff", str(good), str(good), "--fail-on-diff", "--ignore-layout")
    assert status == 0 and "verdict: " in out
    assert run(capsys, "render", str(good), "-o", str(tmp_path / "g.svg"), "--around", "f", "--radius", "0")[0] == 0


# -- memory: the report and its two subcommands, old flags dispatching to the same work -------------------------


class Calls:
    """Stands in for the measuring functions: records each call and returns canned results."""

    def __init__(self, monkeypatch):
        from xlainspect.measure import memory
        from xlainspect.measure.records import FrameworkMemory, MaxBatch, PeakCheck
        from xlainspect.output import plots
        from xlainspect.runners.protocol import MemoryFigures

        self.calls = []
        figures = MemoryFigures(16, 1000, 200, 0, 3000)

        def record(name, result):
            def fake(*args, **kwargs):
                kwargs.pop("progress", None)
                self.calls.append((name, args, kwargs))
                return result
            return fake

        monkeypatch.setattr(memory, "check_peaks", record("check_peaks", [PeakCheck("jax", 256, 1000, 1100)]))
        monkeypatch.setattr(memory, "max_batch", record("max_batch", ([MaxBatch(
            "jax", "JAX, on this machine's CPU", 2**30, 16, True, (figures,))], [])))
        monkeypatch.setattr(memory, "memory_report", record("memory_report", ([FrameworkMemory(
            "jax", "JAX, on this machine's CPU", "cpu", "jit_step", figures)], [])))
        monkeypatch.setattr(plots, "plot_curve", lambda results, stem, title: [])


@pytest.fixture
def calls(monkeypatch):
    return Calls(monkeypatch)


def test_memory_check_peak_subcommand_and_the_old_flag_do_the_same(capsys, calls):
    new = run(capsys, "memory", "check-peak", "--program", "dpsgd_mnist", "--batch-sizes", "256,1024")
    old = run(capsys, "memory", "--program", "dpsgd_mnist", "--check-peak", "256,1024")
    assert new == old and new[0] == 0
    assert new[1].splitlines()[1] == "  jax           256       1000B      1.1KiB    +10%"
    assert calls.calls == [("check_peaks", ("dpsgd_mnist", (256, 1024)), {})] * 2
    status, out, _ = run(capsys, "memory", "check-peak", "--program", "dpsgd_mnist", "--batch-sizes", "256", "--json")
    assert status == 0 and json.loads(out) == [
        {"framework": "jax", "batch_size": 256, "predicted": 1000, "measured": 1100, "error": 0.1}]


def test_memory_max_batch_subcommand_and_the_old_flag_do_the_same(capsys, calls, tmp_path):
    args = ["--program", "dpsgd_ffnn", "--framework", "jax", "--device-memory", "1GiB", "--start", "4", "--force",
            "--out", str(tmp_path)]
    new = run(capsys, "memory", "max-batch", *args)
    old = run(capsys, "memory", *args, "--max-batch")
    assert new == old and new[0] == 0
    assert new[1].splitlines()[1] == ("  jax                    16    0.1%       4.1KiB      1.0GiB  JAX, on this machine's "
                                      "CPU")
    assert calls.calls == [("max_batch", ("dpsgd_ffnn", 2**30, ("jax",), "cpu", None, 4),
                            {"python": None, "resolution": None})] * 2
    assert (tmp_path / "dpsgd_ffnn-cpu.csv").read_text().splitlines()[1].startswith("jax,16,1000,200,0,3000,4200,1")
    assert run(capsys, "memory", "max-batch", *args, "--resolution", "128")[0] == 0  # the seed's --thresh 128
    assert calls.calls[-1][2] == {"python": None, "resolution": 128}


def test_python_reaches_the_memory_functions_after_the_subcommand_only(capsys, calls, tmp_path):
    args = ["--program", "dpsgd_ffnn", "--framework", "jax", "--device-memory", "1GiB", "--start", "4",
            "--out", str(tmp_path)]
    assert run(capsys, "memory", "max-batch", *args, "--python", "/envs/old/bin/python")[0] == 0
    assert run(capsys, "memory", "--program", "dpsgd_ffnn", "--python", "/envs/old/bin/python")[0] == 0
    assert [kwargs["python"] for _, _, kwargs in calls.calls] == ["/envs/old/bin/python"] * 2
    status, _, err = run(capsys, "memory", "--python", "/envs/old/bin/python", "max-batch", *args)
    assert status == 2 and "--python goes after the subcommand: xlainspect memory max-batch --python ..." in err


def test_memory_report_stays_the_plain_command(capsys, calls):
    status, out, _ = run(capsys, "memory", "--program", "dpsgd_ffnn", "--framework", "jax", "--batch-size", "16")
    assert status == 0 and out.startswith("jax, batch 16: jit_step (JAX, on this machine's CPU; device cpu)\n")
    assert calls.calls == [("memory_report", ("dpsgd_ffnn", ("jax",), "cpu", 16, None), {"python": None})]
    status, out, _ = run(capsys, "memory", "--program", "dpsgd_ffnn", "--json")
    assert status == 0 and json.loads(out)["frameworks"]["jax"]["peak"] == 4200


def test_the_memory_group_help_lists_the_subcommands_and_hides_the_old_flags(capsys):
    status, out, _ = run(capsys, "memory", "-h")
    assert status == 0
    assert "  check-peak  " in out and "  max-batch   " in out
    assert "--check-peak" not in out and "--max-batch" not in out and "--device-memory" not in out


@pytest.mark.parametrize("value, message", [
    ("16,x", "'x' is not a valid positive integer (in '16,x')"),
    ("16,0", "0 is not in the range x>=1 (in '16,0')"),
    ("16,,32", "'16,,32' has an empty item; separate the values with single commas"),
    ("256,256", "'256' is given twice (in '256,256')"),
    ("-16", "-16 is not in the range x>=1."),
])
def test_comma_lists_are_checked_before_any_work(capsys, calls, value, message):
    status, out, err = run(capsys, "memory", "check-peak", "--program", "dpsgd_mnist", "--batch-sizes", value)
    assert (status, out, calls.calls) == (2, "", [])
    assert err.splitlines()[-1] == f"Error: Invalid value for '--batch-sizes': {message}"
    status, _, err = run(capsys, "memory", "check-peak", "--program", "dpsgd_mnist", "--batch-sizes", " 16, 32 ")
    assert status == 0 and calls.calls == [("check_peaks", ("dpsgd_mnist", (16, 32)), {})]  # spaces are fine
