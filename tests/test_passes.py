"""Tests for xlainspect.analysis.passes: pass dump names in JAX's and TF's shapes, timelines read from xlainspect.programs folders, the
alignment of two timelines, and one real --pass-dumps capture of linear_grad in both frameworks."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from xlainspect import HloParseError, InputError, parse_hlo, read_hlo
from xlainspect.analysis.passes import (
    Divergence,
    PassDumpName,
    PassStep,
    first_divergence,
    fusion_structure,
    missing_steps,
    parse_pass_dump_name,
    pass_timeline,
)
from xlainspect.analysis.stats import module_stats

TF_MODULE = "a_inference_linear_grad_38__XlaMustCompile_true_config_proto_135_executor_type_111_.2"

UNFUSED = textwrap.dedent("""\
    HloModule jit_f, entry_computation_layout={(f32[4]{0}, f32[4]{0})->f32[4]{0}}

    ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
      %x = f32[4]{0} parameter(0)
      %y = f32[4]{0} parameter(1)
      %a = f32[4]{0} add(%x, %y)
      ROOT %m = f32[4]{0} multiply(%a, %y)
    }
    """)

ONE_LOOP = textwrap.dedent("""\
    HloModule jit_f, entry_computation_layout={(f32[4]{0}, f32[4]{0})->f32[4]{0}}

    %fused_computation (p0: f32[4], p1: f32[4]) -> f32[4] {
      %p0 = f32[4]{0} parameter(0)
      %p1 = f32[4]{0} parameter(1)
      %a = f32[4]{0} add(%p0, %p1)
      ROOT %m = f32[4]{0} multiply(%a, %p1)
    }

    ENTRY %main (x: f32[4], y: f32[4]) -> f32[4] {
      %x = f32[4]{0} parameter(0)
      %y = f32[4]{0} parameter(1)
      ROOT %add_multiply_fusion = f32[4]{0} fusion(%x, %y), kind=kLoop, calls=%fused_computation
    }
    """)

LOOP_AND_OUTPUT = textwrap.dedent("""\
    HloModule jit_f, entry_computation_layout={(f32[4]{0}, f32[4,4]{1,0})->(f32[4]{0}, f32[4]{0})}

    %fused_computation (p0: f32[4]) -> f32[4] {
      %p0 = f32[4]{0} parameter(0)
      ROOT %n = f32[4]{0} negate(%p0)
    }

    %fused_computation.1 (q0: f32[4,4], q1: f32[4]) -> f32[4] {
      %q0 = f32[4,4]{1,0} parameter(0)
      %q1 = f32[4]{0} parameter(1)
      %d = f32[4]{0} dot(%q0, %q1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
      ROOT %s = f32[4]{0} add(%d, %q1)
    }

    ENTRY %main (x: f32[4], w: f32[4,4]) -> (f32[4], f32[4]) {
      %x = f32[4]{0} parameter(0)
      %w = f32[4,4]{1,0} parameter(1)
      %loop = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation
      %out = f32[4]{0} fusion(%w, %loop), kind=kOutput, calls=%fused_computation.1
      ROOT %t = (f32[4]{0}, f32[4]{0}) tuple(%loop, %out)
    }
    """)


# -- file names ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    # JAX's module names have no dots.
    ("module_0004.jit_f.0012.simplification.after_algsimp.before_simplify-sorts.txt",
     PassDumpName(4, "jit_f", 12, "simplification", "algsimp", next_pass="simplify-sorts")),
    ("module_0000.jit_f.0000.async-collective.after_pipeline-start.before_async-collective-replacer.txt",
     PassDumpName(0, "jit_f", 0, "async-collective", "pipeline-start", next_pass="async-collective-replacer")),
    # TF's end in a counter after a dot; the step number is the last all-digit field, even a counter of 4 digits.
    (f"module_0000.{TF_MODULE}.0016.HLO_passes_after_layout_assignment.after_fusion.before_fusion-wrapper.txt",
     PassDumpName(0, TF_MODULE, 16, "HLO_passes_after_layout_assignment", "fusion", next_pass="fusion-wrapper")),
    ("module_0568.a_inference_step_814__.1234.0001.sharding-removal.after_dce.before_pipeline-end.txt",
     PassDumpName(568, "a_inference_step_814__.1234", 1, "sharding-removal", "dce", next_pass="pipeline-end")),
    # Written inside a pass: the name carries the pass and a step, no pipeline.
    ("module_0000.jit_f.0023.copy-insertion.after_adding_copies_to_resolve_interference.txt",
     PassDumpName(0, "jit_f", 23, "", "copy-insertion", step="after_adding_copies_to_resolve_interference")),
    (f"module_0000.{TF_MODULE}.0020.copy-insertion.after_adding_special-case_copies.txt",
     PassDumpName(0, TF_MODULE, 20, "", "copy-insertion", step="after_adding_special-case_copies")),
    # --xla_dump_include_timestamp puts a number in front; step numbers past 9999 take more digits.
    ("1712345678.module_0001.jit_f.10000.fusion-pipe.after_fusion.before_dce.txt",
     PassDumpName(1, "jit_f", 10000, "fusion-pipe", "fusion", next_pass="dce")),
])
def test_pass_dump_names(name, expected):
    assert parse_pass_dump_name(name) == expected


@pytest.mark.parametrize("name", [
    "module_0000.jit_f.before_optimizations.txt",
    "module_0000.jit_f.cpu_after_optimizations.txt",
    "module_0000.jit_f.cpu_after_optimizations-buffer-assignment.txt",
    "module_0000.jit_f.cpu_after_optimizations-memory-usage-report.txt",
    "module_0000.a_inference_f_1__.1234.sm_9.0a_gpu_after_optimizations.txt",
    "module_0000.a_inference_f_1__.1234.cpu_after_optimizations-live-range.txt",
    "module_0000.jit_f.debug_options",
    "module_0000.jit_f.fusion_kernel_module.ir-with-opt.ll",
    "module_0000.jit_f.0005.simplification.after_algsimp.before_dce.dot",
    "before_optimizations.txt",
    "manifest.json",
    "notes.txt",
])
def test_other_names_are_not_pass_dumps(name):
    assert parse_pass_dump_name(name) is None


# -- timelines -----------------------------------------------------------------------------------------------------


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def jax_name(index: str, suffix: str) -> str:
    return f"module_0002.jit_f.{index}.{suffix}.txt"


@pytest.fixture
def dump_folder(tmp_path) -> Path:
    """A dump folder as `xlainspect dump --pass-dumps` files it, pass files written out of order."""
    dump = tmp_path / "cpu" / "f" / "jax"
    write(dump, {"before_optimizations.txt": UNFUSED, "after_optimizations.txt": LOOP_AND_OUTPUT,
                 "manifest.json": "{}"})
    write(dump / "passes", {
        jax_name("10000", "copy-insertion.after_adding_copies_to_resolve_interference"): LOOP_AND_OUTPUT,
        jax_name("0001", "simplification.after_algsimp.before_dce"): UNFUSED,
        jax_name("9999", "fusion-pipe.after_multi_output_fusion.before_dce"): LOOP_AND_OUTPUT,
        jax_name("0000", "simplification.after_pipeline-start.before_algsimp"): UNFUSED,
        jax_name("0020", "fusion-pipe.after_fusion.before_multi_output_fusion"): ONE_LOOP,
        "module_0002.jit_f.cpu_after_optimizations-buffer-assignment.txt": "not HLO",
        "README": "not HLO",
    })
    return dump


def test_timeline_order_names_and_counts(dump_folder):
    steps = pass_timeline(dump_folder)
    # Sorted by step number, not by file name (10000 sorts before 9999 as text).
    assert [(s.index, s.pipeline, s.pass_name, s.next_pass, s.step) for s in steps] == [
        (0, "simplification", "pipeline-start", "algsimp", ""),
        (1, "simplification", "algsimp", "dce", ""),
        (20, "fusion-pipe", "fusion", "multi_output_fusion", ""),
        (9999, "fusion-pipe", "multi_output_fusion", "dce", ""),
        (10000, "", "copy-insertion", "", "after_adding_copies_to_resolve_interference"),
    ]
    assert [(s.instructions, s.computations, s.fusions, s.fusions_by_kind) for s in steps] == [
        (4, 1, 0, {}),
        (4, 1, 0, {}),
        (7, 2, 1, {"kLoop": 1}),
        (11, 3, 2, {"kLoop": 1, "kOutput": 1}),
        (11, 3, 2, {"kLoop": 1, "kOutput": 1}),
    ]
    assert [s.structure for s in steps] == [
        (), (),
        (("kLoop", ("add", "multiply")),),
        (("kLoop", ("negate",)), ("kOutput", ("add", "dot"))),
        (("kLoop", ("negate",)), ("kOutput", ("add", "dot"))),
    ]
    assert Path(steps[2].file) == dump_folder / "passes" / jax_name("0020", "fusion-pipe.after_fusion.before_multi_"
                                                                             "output_fusion")
    assert [s.label for s in steps[2:]] == [
        "fusion (fusion-pipe)", "multi_output_fusion (fusion-pipe)",
        "copy-insertion, step after_adding_copies_to_resolve_interference"]
    # The passes/ folder itself reads the same.
    assert pass_timeline(dump_folder / "passes") == steps
    assert missing_steps(steps) == (*range(2, 20), *range(21, 9999))
    assert missing_steps(steps[:2]) == missing_steps([]) == ()


def test_counts_match_module_stats(dump_folder):
    for step in pass_timeline(str(dump_folder)):
        stats = module_stats(read_hlo(step.file)[0])
        assert (step.instructions, step.computations, step.fusions, step.fusions_by_kind) == (
            stats.instructions, stats.computations, stats.fusions, stats.fusions_by_kind)


def test_structure_ignores_names_and_parameters():
    renamed = (ONE_LOOP.replace("%fused_computation", "%fc.7").replace("%add_multiply_fusion", "%fusion.3")
               .replace("%a ", "%add.17 ").replace("(%a,", "(%add.17,"))
    assert fusion_structure(parse_hlo(renamed)) == fusion_structure(parse_hlo(ONE_LOOP)) == (
        ("kLoop", ("add", "multiply")),)


def test_tf_names_in_a_raw_xla_folder(tmp_path):
    # XLA's own --xla_dump_to folder: several modules, pass dumps beside everything else.
    write(tmp_path, {
        f"module_0000.{TF_MODULE}.0001.simplification.after_algsimp.before_dce.txt": UNFUSED,
        f"module_0000.{TF_MODULE}.0002.fusion-pipe.after_fusion.before_dce.txt": ONE_LOOP,
        f"module_0000.{TF_MODULE}.before_optimizations.txt": UNFUSED,
        f"module_0000.{TF_MODULE}.cpu_after_optimizations.txt": ONE_LOOP,
        "module_0001.jit_convert_element_type.0001.simplification.after_algsimp.before_dce.txt": UNFUSED,
    })
    steps = pass_timeline(tmp_path, module=TF_MODULE)
    assert [(s.index, s.pass_name, s.fusions) for s in steps] == [(1, "algsimp", 0), (2, "fusion", 1)]
    assert pass_timeline(tmp_path, module="module_0000") == steps
    # Without module=, the folder's main module (the largest optimized one); a position or an expression also pick.
    assert pass_timeline(tmp_path) == pass_timeline(tmp_path, module="0") == pass_timeline(tmp_path, "inference") \
        == steps
    assert missing_steps(steps) == ()
    with pytest.raises(InputError) as error:
        pass_timeline(tmp_path, module="jit_g")
    assert str(error.value) == f"{tmp_path}: no module name matches --module 'jit_g'; the modules are {TF_MODULE}"
    # A module XLA dumped without pass dumps is named, with what to do.
    (tmp_path / "module_0003.jit_h.cpu_after_optimizations.txt").write_text(UNFUSED)
    with pytest.raises(InputError) as error:
        pass_timeline(tmp_path, module="jit_h")
    assert str(error.value) == (f"{tmp_path}: module_0003 jit_h has no pass dumps; dump with "
                                "--xla_dump_hlo_pass_re=.* or pick another with --module")


def test_a_program_compiled_twice(tmp_path):
    write(tmp_path, {"module_0002.jit_f.0001.p.after_a.before_b.txt": UNFUSED,
                     "module_0006.jit_f.0001.p.after_a.before_b.txt": ONE_LOOP})
    message = (f"{tmp_path}: pass dumps of 2 modules (module_0002 jit_f, module_0006 jit_f); pick one with module= "
               "(its name or module_NNNN), or give a folder holding one module's")
    for module in (None, "jit_f"):
        with pytest.raises(InputError) as error:
            pass_timeline(tmp_path, module=module)
        assert str(error.value) == message
    assert [s.fusions for s in pass_timeline(tmp_path, module="module_0006")] == [1]


def test_no_pass_dumps(tmp_path):
    dump = write(tmp_path / "jax", {"before_optimizations.txt": UNFUSED, "after_optimizations.txt": ONE_LOOP})
    with pytest.raises(InputError) as error:
        pass_timeline(dump)
    assert str(error.value) == f"{dump}: no XLA pass dumps found; make the dump with --pass-dumps"
    (dump / "passes").mkdir()
    with pytest.raises(InputError) as error:
        pass_timeline(dump)
    assert str(error.value) == f"{dump / 'passes'}: no XLA pass dumps found; make the dump with --pass-dumps"


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(InputError) as error:
        pass_timeline(tmp_path / "nope")
    assert str(error.value) == (f"{tmp_path / 'nope'}: no such directory; give a dump folder made with --pass-dumps, "
                                "or its passes/")
    file = write(tmp_path, {"a.txt": UNFUSED}) / "a.txt"
    with pytest.raises(InputError) as error:
        pass_timeline(file)
    assert str(error.value) == f"{file}: not a directory; give a dump folder made with --pass-dumps, or its passes/"


def test_bad_hlo_and_several_modules(tmp_path):
    name = jax_name("0001", "p.after_a.before_b")
    bad = write(tmp_path / "bad", {name: "HloModule m\n\nENTRY %e {\n  %x = f32["})
    with pytest.raises(HloParseError) as error:
        pass_timeline(bad)
    assert error.value.path == str(bad / name)
    two = write(tmp_path / "two", {name: UNFUSED + "\n// -----\n" + ONE_LOOP})
    with pytest.raises(InputError) as error:
        pass_timeline(two)
    assert str(error.value) == f"{two / name}: holds 2 modules; an XLA pass dump holds one"


# -- divergence ----------------------------------------------------------------------------------------------------

LOOP_ADD = ("kLoop", ("add",))
LOOP_MUL = ("kLoop", ("multiply",))
OUTPUT_DOT = ("kOutput", ("add", "dot"))
YNN_DOT = ("__ynn_fusion", ("dot",))
NAMES = ("jax", "tf")


def step(index: int, pass_name: str, *structure, pipeline: str = "p") -> PassStep:
    kinds = Counter(kind for kind, _ in structure)
    return PassStep(index, pipeline, pass_name, f"{index:04d}.{pass_name}.txt", instructions=10 + index,
                    fusions=len(structure), fusions_by_kind=dict(sorted(kinds.items())), computations=1,
                    structure=tuple(sorted(structure)))


def test_identical_timelines_never_diverge():
    timeline = [step(0, "pipeline-start"), step(1, "algsimp"), step(2, "fusion", LOOP_ADD, OUTPUT_DOT)]
    assert first_divergence(timeline, list(timeline)) is None
    assert first_divergence([], []) is None
    # Extra passes on one side that leave the fusions alone are no divergence.
    extra = [step(0, "pipeline-start", pipeline="async-collective")] + timeline + [step(9, "scheduling", LOOP_ADD,
                                                                                        OUTPUT_DOT)]
    assert first_divergence(extra, timeline, NAMES) is None
    assert first_divergence(timeline, extra, NAMES) is None


def test_divergence_at_an_aligned_pass():
    jax = [step(0, "pipeline-start"), step(1, "algsimp"), step(2, "fusion", LOOP_ADD, LOOP_MUL),
           step(3, "copy-insertion", LOOP_ADD, LOOP_MUL)]
    tf = [step(0, "pipeline-start"), step(5, "fusion", LOOP_ADD, LOOP_MUL, OUTPUT_DOT),
          step(6, "copy-insertion", LOOP_ADD, LOOP_MUL, OUTPUT_DOT)]
    divergence = first_divergence(jax, tf, NAMES)
    assert divergence == Divergence(
        pass_name="fusion", pipeline="p", a=jax[2], b=tf[1], only_in=None,
        description="after fusion (p): jax has 2 fusions (kLoop 2), tf has 3 (kLoop 2, kOutput 1)",
        fusions_only_in_a=(), fusions_only_in_b=(OUTPUT_DOT,))


def test_same_counts_different_ops_and_default_names():
    a = [step(0, "fusion", LOOP_ADD)]
    b = [step(0, "fusion", LOOP_MUL)]
    divergence = first_divergence(a, b)
    assert divergence.description == ("after fusion (p): a has 1 fusion (kLoop 1), b has 1 (kLoop 1); same kinds and "
                                      "counts, but 1 fusion fuses different ops")
    assert (divergence.fusions_only_in_a, divergence.fusions_only_in_b) == ((LOOP_ADD,), (LOOP_MUL,))


def test_divergence_at_a_pass_only_one_side_dumped():
    jax = [step(0, "pipeline-start"), step(1, "dot-library-rewriter", YNN_DOT, pipeline="dot-library-passes"),
           step(2, "fusion", YNN_DOT, LOOP_ADD)]
    tf = [step(0, "pipeline-start"), step(1, "fusion", LOOP_ADD)]
    divergence = first_divergence(jax, tf, NAMES)
    assert (divergence.pass_name, divergence.pipeline, divergence.a, divergence.b, divergence.only_in) == (
        "dot-library-rewriter", "dot-library-passes", jax[1], tf[0], "jax")
    assert divergence.description == ("after dot-library-rewriter (dot-library-passes), only in jax's dumps: jax has "
                                      "1 fusion (__ynn_fusion 1), tf has 0")
    # The same from the other side.
    divergence = first_divergence(tf, jax, NAMES[::-1])
    assert (divergence.pass_name, divergence.a, divergence.b, divergence.only_in) == (
        "dot-library-rewriter", tf[0], jax[1], "jax")
    assert divergence.description == ("after dot-library-rewriter (dot-library-passes), only in jax's dumps: tf has "
                                      "0 fusions, jax has 1 (__ynn_fusion 1)")


def test_one_sided_passes_that_end_equal_do_not_diverge():
    # Both sides fuse the same kernel in a pass of a different name (a renamed pass in another XLA version).
    a = [step(0, "pipeline-start"), step(1, "fusion", LOOP_ADD), step(2, "dce", LOOP_ADD)]
    b = [step(0, "pipeline-start"), step(1, "priority-fusion", LOOP_ADD), step(2, "dce", LOOP_ADD)]
    assert first_divergence(a, b) is None
    # When they end different, the one-sided step after which they stay different is the divergence.
    b[1:] = [step(1, "priority-fusion", LOOP_MUL), step(2, "dce", LOOP_MUL)]
    divergence = first_divergence(a, b, NAMES)
    assert (divergence.pass_name, divergence.a, divergence.b, divergence.only_in) == ("fusion", a[1], b[0], "jax")


def test_pipeline_is_part_of_the_alignment():
    # algsimp runs in two pipelines; tf's simplification algsimp must not align with jax's later one.
    jax = [step(0, "algsimp", pipeline="simplification"), step(1, "algsimp", LOOP_ADD, pipeline="late")]
    tf = [step(0, "algsimp", LOOP_ADD, pipeline="late")]
    assert first_divergence(jax, tf, NAMES) is None


def test_long_timelines_with_repeated_passes_align():
    # Beyond 200 steps difflib's junk heuristic would drop keys as frequent as pipeline-start and algsimp from the
    # matching, leaving two unaligned runs; aligned, the steps are compared one to one.
    def timeline(fused):
        return [step(i, "algsimp" if i % 2 else "pipeline-start", *([fused] if i >= 201 else [])) for i in range(300)]

    a = [step(0, "pipeline-start", pipeline="async-collective")] + timeline(LOOP_ADD)
    b = timeline(LOOP_MUL)
    divergence = first_divergence(a, b, NAMES)
    assert (divergence.pass_name, divergence.a, divergence.b, divergence.only_in) == ("algsimp", a[202], b[201], None)


# -- a real capture --------------------------------------------------------------------------------------------------


@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_linear_grad_pass_dumps(linear_grad_pass_dumps, capsys):
    from xlainspect.runners.capture import dump_directory

    tmp_path = linear_grad_pass_dumps  # read only: the report tests share it
    timelines = {}
    for framework in ("jax", "tf"):
        folder = dump_directory(tmp_path, "cpu", "linear_grad", framework)
        steps = pass_timeline(folder)
        assert steps, framework
        assert [s.index for s in steps] == sorted(s.index for s in steps)
        # Every file in passes/ is a pass dump that was read: capture files nothing else there.
        assert len(steps) == len(list((folder / "passes").iterdir()))
        # The last pass dump against an independent count of the final module. JAX's last dump (the module entering
        # HLO_passes_after_scheduling) is the final module's text. TF's XLA dumps nothing after copy-insertion, so its
        # last dump precedes scheduling, which only reorders instructions: counts and fusions are the same.
        final = read_hlo(folder / "after_optimizations.txt")[0]
        stats = module_stats(final)
        last = steps[-1]
        assert (last.instructions, last.computations, last.fusions, last.fusions_by_kind) == (
            stats.instructions, stats.computations, stats.fusions, stats.fusions_by_kind), framework
        assert last.structure == fusion_structure(final), framework
        timelines[framework] = steps
    assert timelines["jax"][-1].fusions_by_kind == {"kLoop": 2}
    assert timelines["tf"][-1].fusions_by_kind == {"kLoop": 2, "kOutput": 1}
    divergence = first_divergence(timelines["jax"], timelines["tf"], NAMES)
    assert isinstance(divergence, Divergence)
    assert (divergence.pass_name, divergence.only_in) == ("fusion", None)
    assert divergence.description.startswith("after fusion (")
    assert divergence.description.endswith("): jax has 2 fusions (kLoop 2), tf has 3 (kLoop 2, kOutput 1)")
    assert [kind for kind, _ in divergence.fusions_only_in_b].count("kOutput") == 1

    # The same through the CLI: the diff names the pass, `passes` prints one row per pass dump.
    from xlainspect.cli import main

    assert main(["diff", "jax", "tf", "--program", "linear_grad", "--dumps", str(tmp_path), "--passes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "first divergence: " + divergence.description
    assert main(["passes", str(dump_directory(tmp_path, "cpu", "linear_grad", "tf"))]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == len(timelines["tf"]) + 2  # header, one row per step, legend
    assert [row for row in rows if row[5:6] == "*"][0].split()[1] == "fusion"


def test_passes_cli_json_and_error(dump_folder, tmp_path, capsys):
    import json

    from xlainspect.cli import main

    assert main(["passes", str(dump_folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["index"] for row in data] == [s.index for s in pass_timeline(dump_folder)]
    assert data[-1]["fusions"] == {"total": 2, "by_kind": {"kLoop": 1, "kOutput": 1}}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["passes", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make the dump with --pass-dumps" in err
