"""The ``xlainspect`` command: parses options, calls one library function per command, prints the result.

Only this module turns errors into exit codes: an :class:`~xlainspect.errors.XlaInspectError` becomes its one-line
message on stderr and the error's exit code, never a traceback. Options that do not apply together are a usage error
(exit 2) naming both, so no option is ever silently ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import click
from click.core import ParameterSource

from xlainspect import __version__
from xlainspect.cliparams import BATCH_SIZES, ByteSize, CommaList
from xlainspect.errors import XlaInspectError
from xlainspect.measure.bench import ABLATION_BATCH_SIZE, DEFAULT_BATCH_SIZES, MODELS
from xlainspect.output.render import DOT_TIME_LIMIT_S
from xlainspect.runners.capture import ALL_FRAMEWORKS, BACKENDS, COMPILERS, FRAMEWORKS, XLA_FRAMEWORKS
from xlainspect.runners.gpu_targets import DEFAULT_TARGET

_FRAMEWORK_OR_ALL = click.Choice([*FRAMEWORKS, "all"])  # memory: JAX's and TF's modules only
# dump and time take the PyTorch frameworks too; "both" (the default) is the seed's pair, "all" adds PyTorch's.
_ANY_FRAMEWORK = click.Choice([*ALL_FRAMEWORKS, "both", "all"])
_FRAMEWORK_HELP = ("both: jax and tf (the seed's pair); all: also torch_xla (PyTorch/XLA){}. PyTorch runs in its own "
                   "environment, .venv-torch/ ('make torch-env').")


def _chosen_frameworks(framework: str, everything: tuple[str, ...]) -> tuple[str, ...]:
    return FRAMEWORKS if framework == "both" else everything if framework == "all" else (framework,)
_PROGRAM_HELP = ("A name from 'xlainspect programs', or your own: FILE.py:NAME or package.module:NAME, a function "
                 "returning (function, example_args) or {'jax': ..., 'tf': ...}.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xlainspect")
def cli() -> None:
    """Inspect what XLA compiled: parse HLO dumps, count kernels, compare frameworks."""


# -- options that do not apply together ----------------------------------------------------------------------------


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave parameter ``name`` (on the command line or in the environment), not left its default."""
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                                              ParameterSource.PROMPT)


def _flag(ctx: click.Context, name: str) -> str:
    """How parameter ``name`` is spelled on the command line: its longest option string."""
    (param,) = [p for p in ctx.command.params if p.name == name]
    return max(param.opts, key=len)


def _refuse(ctx: click.Context, message: str) -> None:
    raise click.UsageError(message, ctx)


def _first_given(ctx: click.Context, names: Sequence[str]) -> str | None:
    """How the first of parameters ``names`` that the user gave is spelled (``--dumps``); None when none was."""
    return next((_flag(ctx, name) for name in names if _given(ctx, name)), None)


def _not_with(ctx: click.Context, option: str, others: Sequence[str], why: str) -> None:
    """A usage error naming ``option`` and the first of ``others`` the user also gave: they do not apply together."""
    if (other := _first_given(ctx, others)) is not None:
        _refuse(ctx, f"{option} cannot be used with {other}: {why}")


def _target_needs_gpu(ctx: click.Context, target: str | None, backend: str) -> None:
    if target is not None and backend != "gpu":
        _refuse(ctx, "--target needs --backend gpu: it names the GPU to compile for")


def _filed_dump_options(ctx: click.Context, sides: Mapping[str, str]) -> None:
    """Refuses --program, --dumps, --backend and --target when no side (by argument name) names a framework's filed
    dump: they would pick nothing."""
    from xlainspect.runners.sides import names_framework

    if any(names_framework(spec) for spec in sides.values()):
        return
    names = list(sides)
    if (option := _first_given(ctx, ("program_name", "dumps_dir", "backend", "target"))) is not None:
        _refuse(ctx, f"{option} picks the filed dumps that {' or '.join(names)} "
                     f"name{'s' if len(names) == 1 else ''} (jax, tf, tf_via_jax, torch_xla, torch_xla_via_jax); here {' and '.join(names)} "
                     f"{'is a path' if len(names) == 1 else 'are paths'}")


def _options(*options):  # noqa: ANN002, ANN202 - click decorators
    """One decorator applying ``options`` in the order given, as if written one above the other."""
    def decorate(command):  # noqa: ANN001, ANN202
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


# Where a framework's filed dump is: diff, render and report take jax/tf/tf_via_jax/torch_xla with these.
def _filed_dump_options_decorator(program_help: str):  # noqa: ANN202 - a click decorator
    return _options(
        click.option("--program", "program_name", default=None, help=program_help),
        click.option("--dumps", "dumps_dir", default="dumps", show_default=True, type=click.Path(file_okay=False)),
        click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
                     help="gpu: dumps compiled on a GPU, else the deviceless gpu-<target> ones."),
        click.option("--target", default=None, help="With --backend gpu: the deviceless target's dumps (h100, "
                                                    "a100)."),
    )


def _progress(line: str) -> None:
    click.echo(line, err=True)


# --module on every command that reads HLO: one meaning everywhere (xlainspect.hlo.files.module_location).
_MODULE_HELP = ("Which module: its position (in compile order in an XLA dump folder, in the file otherwise; see "
                "'stats --list') or a regular expression on its name that matches one. Default: a dump folder's main "
                "module (the largest optimized one, JAX's helpers excluded), else the file's first.")


def _module_option(help_text: str = _MODULE_HELP):  # noqa: ANN202 - a click decorator
    return click.option("--module", "module", default=None, metavar="SELECTOR", help=help_text)


def _two_sides_options(where: str):  # noqa: ANN202 - a click decorator
    """``--module``, ``--module-b``, ``--label-a``, ``--label-b``: which module of each side, and its name ``where``."""
    return _options(
        _module_option(_MODULE_HELP + " Applies to both sides unless --module-b is given."),
        click.option("--module-b", default=None, metavar="SELECTOR",
                     help="B's module, when it differs from A's --module."),
        click.option("--label-a", default=None,
                     help=f"A's name {where} (default: the framework, or the folder or file name)."),
        click.option("--label-b", default=None, help=f"B's name {where}."),
    )


# -- commands --------------------------------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per module.")
@_module_option("Only this module of each PATH: its position (see --list) or a regular expression on its name "
                "that matches one. Default: every module.")
@click.option("--list", "list_only", is_flag=True,
              help="Just list the modules: position, XLA's module number (compile order), instructions, stages "
                   "(before/after optimization) and which is the main one.")
@click.pass_context
def stats(ctx: click.Context, paths: tuple[str, ...], as_json: bool, module: str | None, list_only: bool) -> None:
    """Count computations, instructions, opcodes, fusions and custom-calls of HLO modules.

    PATHS are HLO text files or folders of them (searched recursively, e.g. an XLA dump folder).
    """
    from xlainspect.analysis.stats import module_stats
    from xlainspect.hlo import read_hlo
    from xlainspect.hlo.files import hlo_files, hlo_module_at, list_modules
    from xlainspect.output.format import module_list_json, module_list_text, stats_json, stats_text

    if list_only:
        _not_with(ctx, "--list", ["module"], "--list shows every module, to pick one from")
        listings = [list_modules(path) for path in paths]
        click.echo(module_list_json(listings) if as_json else module_list_text(listings))
        return
    if module is not None:
        results = [module_stats(hlo_module_at(path, module)) for path in paths]
    else:
        results = [module_stats(item) for path in hlo_files(list(paths)) for item in read_hlo(path)]
    click.echo(stats_json(results) if as_json else stats_text(results))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["graphml", "json"]), default="graphml", show_default=True,
              help="graphml (for Gephi, yEd, networkx) or node-link JSON.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
@_module_option()
def graph(path: str, fmt: str, output: str, module: str | None) -> None:
    """Write the instruction graph of an HLO module: nodes, operand edges, call edges into called computations."""
    from xlainspect.analysis.graph import to_networkx, write_graph
    from xlainspect.hlo.files import hlo_module_at

    chosen = hlo_module_at(path, module)
    module_graph = to_networkx(chosen)
    write_graph(module_graph, output, fmt)
    click.echo(f"wrote {output}: {module_graph.number_of_nodes()} nodes, {module_graph.number_of_edges()} edges "
               f"({fmt}, module {chosen.name})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per program.")
def programs(as_json: bool) -> None:
    """List the synthetic programs: name, description, shapes, parameters."""
    from xlainspect.output.format import programs_json, programs_text
    from xlainspect.programs import PROGRAMS

    click.echo(programs_json(PROGRAMS.values()) if as_json else programs_text(PROGRAMS.values()))


# --python on every command that runs a framework: how one xlainspect compares jax (or TF) versions.
_python_option = click.option(
    "--python", "python", type=click.Path(dir_okay=False), default=None, metavar="PATH",
    help="Run the framework under this interpreter, e.g. another virtual environment's bin/python with an older or "
         "newer jax; it needs only the framework and numpy (default: $XLAINSPECT_PYTHON, else xlainspect's own).")


# Options of `dump` that only say how to compile a --program; a command compiles as it likes.
_PROGRAM_ONLY = ("framework", "backend", "target", "compiler", "batch_size", "dtype", "python")
_COMMAND_ONLY = ("module", "as_json")


@cli.command(context_settings={"allow_interspersed_args": False})
@click.option("--program", "program_name", default=None,
              help=_PROGRAM_HELP + " Or give a command after -- instead.")
@click.option("--framework", type=_ANY_FRAMEWORK, default="both", show_default=True,
              help=_FRAMEWORK_HELP.format(""))
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
              help="gpu: on this machine's GPU, or without one deviceless for --target (needs the [gpu] extra).")
@click.option("--target", default=None,
              help=f"With --backend gpu: the GPU to compile for without one: h100, a100, or a GpuTargetConfigProto "
                   f"text file (default {DEFAULT_TARGET}).")
@click.option("--compiler", type=click.Choice(COMPILERS), default="native", show_default=True,
              help="jax: compile TF's or PyTorch/XLA's module with JAX's XLA too (filed as tf_via_jax, "
                   "torch_xla_via_jax), to separate front end from XLA version.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="dumps", show_default=True,
              help="The dumps folder; files go to OUT/<backend>/<program>/<framework>/ (backend gpu-<target> when "
                   "deviceless). With a command: the folder to file into (default dumps/run/<script stem>).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (default: the program's).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--pass-dumps", is_flag=True, help="Also keep XLA's module after every pass, under passes/.")
@click.option("--force", is_flag=True, help="Replace existing dumps.")
@_python_option
@click.option("--module", default=None, metavar="RE",
              help="With a command: file only the modules whose name matches this regular expression.")
@click.option("--json", "as_json", is_flag=True,
              help="With a command: print the manifest as JSON on stdout (the command's stdout goes to stderr).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- CMD [ARGS]...]")
@click.pass_context
def dump(ctx: click.Context, program_name: str | None, framework: str, backend: str, target: str | None,
         compiler: str, out_dir: str, batch_size: int | None, dtype: str, pass_dumps: bool, force: bool,
         python: str | None, module: str | None, as_json: bool, command: tuple[str, ...]) -> None:
    """Compile a program in JAX and TF2+XLA, each in a child process, and file their HLO with a manifest; or run
    any command (after --) with XLA's dumper on and file every module it compiled."""
    if command and program_name is not None:
        _refuse(ctx, "--program cannot be used with a command: give a built-in program or a command after --")
    if not command and program_name is None:
        _refuse(ctx, "give --program NAME or a command after --, e.g. xlainspect dump -- python train.py")
    if command:
        _not_with(ctx, "a command", _PROGRAM_ONLY, "it only says how to compile a --program")
        _dump_command(command, out_dir if _given(ctx, "out_dir") else None, module, force, pass_dumps, as_json)
        return
    if (option := _first_given(ctx, _COMMAND_ONLY)) is not None:
        _refuse(ctx, f"{option} cannot be used with --program: it applies to a command after --")
    _target_needs_gpu(ctx, target, backend)
    if compiler == "jax" and framework == "jax":
        _refuse(ctx, "--compiler jax cannot be used with --framework jax: it compiles TF's (or PyTorch/XLA's) module "
                     "with JAX's XLA")
    from xlainspect.errors import CaptureError
    from xlainspect.runners.capture import dump_program

    frameworks = _chosen_frameworks(framework, XLA_FRAMEWORKS)
    outcome = dump_program(program_name, frameworks, out_dir, backend, batch_size, dtype, pass_dumps, force,
                           progress=_progress, target=target or DEFAULT_TARGET, compiler=compiler, python=python)
    for item in outcome.dumps:
        click.echo(f"{item.framework}: {item.directory} ({item.module_name}; {item.manifest.compiler})")
    if outcome.failures:
        raise CaptureError("; ".join(failure.message for failure in outcome.failures))



def _dump_command(command: tuple[str, ...], out_dir: str | None, module: str | None, force: bool, pass_dumps: bool,
                  as_json: bool) -> None:
    from xlainspect.output.format import command_dump_json, command_dump_text
    from xlainspect.runners.command_capture import dump_command

    filed = dump_command(command, out_dir, module, force, pass_dumps, progress=_progress, stdout_to_stderr=as_json)
    manifest = filed.manifest
    if as_json:
        click.echo(command_dump_json(str(filed.directory), manifest))
    else:
        click.echo(command_dump_text(str(filed.directory), manifest), err=True)
    if manifest.exit_status != 0:
        _progress(f"xlainspect: the command failed (exit {manifest.exit_status}); filed the {len(manifest.modules)} "
                  f"module(s) it compiled in {filed.directory}")
        raise click.exceptions.Exit(manifest.exit_status)


@cli.command()
@click.argument("a")
@click.argument("b")
@_filed_dump_options_decorator("Program whose dumps A and B name (jax, tf): a built-in name or FILE.py:NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--fail-on-diff", is_flag=True,
              help="Exit 3 unless both sides launch the same kernels: the same math and layouts, as often (for CI).")
@click.option("--ignore-layout", is_flag=True,
              help="With --fail-on-diff: accept kernels that compute the same values with different memory layouts.")
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --json' for the same program: attach per-kernel times (A, B = jax, tf).")
@click.option("--passes", "with_passes", is_flag=True,
              help="Also name the first XLA pass after which the two sides' fusions differ (needs --pass-dumps dumps).")
@_two_sides_options("in the output")
@click.pass_context
def diff(ctx: click.Context, a: str, b: str, program_name: str | None, dumps_dir: str, backend: str,
         target: str | None, as_json: bool, fail_on_diff: bool, ignore_layout: bool, timing_file: str | None,
         with_passes: bool, module: str | None, module_b: str | None, label_a: str | None,
         label_b: str | None) -> None:
    """Compare the kernels of two compiled modules: A and B are jax/tf (with --program), dump folders or files."""
    _target_needs_gpu(ctx, target, backend)
    if ignore_layout and not fail_on_diff:
        _refuse(ctx, "--ignore-layout needs --fail-on-diff: it only relaxes the verdict that sets the exit status")
    _filed_dump_options(ctx, {"A": a, "B": b})
    from xlainspect.analysis.census import census
    from xlainspect.analysis.diff import diff_census
    from xlainspect.output.format import diff_json, diff_text, divergence_text
    from xlainspect.runners.sides import resolve_side

    side_a = resolve_side(a, program_name, dumps_dir, backend, target, module, label_a)
    side_b = resolve_side(b, program_name, dumps_dir, backend, target, module_b or module, label_b)
    module_a, module_b_read = side_a.read(), side_b.read()
    result = diff_census(census(module_a), census(module_b_read), side_a.compiler, side_b.compiler)
    divergence = None
    if with_passes:
        from xlainspect.analysis.passes import first_divergence, pass_timeline

        divergence = first_divergence(pass_timeline(side_a.path.parent, side_a.pass_module),
                                      pass_timeline(side_b.path.parent, side_b.pass_module),
                                      (side_a.label, side_b.label))
    timing_a = timing_b = None
    if timing_file is not None:
        from xlainspect.measure.timing import timing_for_dump

        timing_a = timing_for_dump(timing_file, a, side_a.path, module_a)
        timing_b = timing_for_dump(timing_file, b, side_b.path, module_b_read)
    if as_json:
        click.echo(diff_json(result, timing_a, timing_b, divergence, with_passes, side_a.label, side_b.label))
    else:
        click.echo(diff_text(result, side_a.label, side_b.label, str(side_a.path), str(side_b.path), timing_a,
                             timing_b))
        if with_passes:
            click.echo(divergence_text(divergence))
    if fail_on_diff and not (result.same_math if ignore_layout else result.same_structure):
        raise click.exceptions.Exit(3)


@cli.command(name="time")
@click.option("--program", "program_name", required=True, help=_PROGRAM_HELP)
@click.option("--framework", type=_ANY_FRAMEWORK, default="both", show_default=True,
              help=_FRAMEWORK_HELP.format(" and torch (eager PyTorch; Opacus for DP-SGD)"))
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
              help="gpu needs a visible GPU (and jax's CUDA plugin); command buffers are turned off to profile.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (default: the program's).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed steady-state runs.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed runs after compiling.")
@click.option("--profile-runs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Runs profiled for per-kernel time (0: none).")
@click.option("--no-vectorize", is_flag=True,
              help="Ablation: per-example gradients in a Python loop, not vmap / vectorized_map (DP-SGD only).")
@click.option("--no-compile", is_flag=True, help="Ablation: no jax.jit (op by op) / no XLA (a plain tf.function).")
@click.option("--tf-via-jax", is_flag=True,
              help="Time TF's HLO compiled and run by JAX's XLA (when TF's profiler gives no per-op times).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_python_option
@click.pass_context
def time_command(ctx: click.Context, program_name: str, framework: str, backend: str, batch_size: int | None,
                 repeats: int, warmup: int, profile_runs: int, no_vectorize: bool, no_compile: bool, tf_via_jax: bool,
                 as_json: bool, python: str | None) -> None:
    """Time a program in JAX and TF2+XLA, each in its own process: compile time, step time, time per kernel."""
    if tf_via_jax:
        if framework == "jax":
            _refuse(ctx, "--tf-via-jax cannot be used with --framework jax: it times TF's module")
        _not_with(ctx, "--tf-via-jax", ["no_vectorize", "no_compile"],
                  "it times TF's compiled module, not an ablation build")
    if no_compile:
        _not_with(ctx, "--no-compile", ["profile_runs"], "without compiling there is no module to profile per kernel")
    from xlainspect.errors import CaptureError
    from xlainspect.measure.timing import time_program
    from xlainspect.output.format import timing_json, timing_text

    frameworks = _chosen_frameworks(framework, ALL_FRAMEWORKS)
    report = time_program(program_name, frameworks, batch_size, repeats, warmup, profile_runs, progress=_progress,
                          vectorize=not no_vectorize, compiled=not no_compile, backend=backend, tf_via_jax=tf_via_jax,
                          python=python)
    click.echo(timing_json(report) if as_json else timing_text(report))
    if report.failures:
        raise CaptureError("; ".join(message for _, message in report.failures))


@cli.command()
@click.option("--models", type=CommaList(click.Choice(MODELS), "MODEL,..."), default=",".join(MODELS),
              show_default=True, help=f"Comma-separated, from: {', '.join(MODELS)}.")
@click.option("--frameworks", type=CommaList(click.Choice(ALL_FRAMEWORKS), "FRAMEWORK,..."),
              default=",".join(FRAMEWORKS), show_default=True,
              help=f"Comma-separated, from: {', '.join(ALL_FRAMEWORKS)} (torch: eager PyTorch, Opacus for DP-SGD).")
@click.option("--batch-sizes", type=BATCH_SIZES, default=",".join(map(str, DEFAULT_BATCH_SIZES)), show_default=True,
              help="Comma-separated batch sizes of the sweep.")
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True,
              help="Timed steady-state runs per configuration.")
@click.option("--budget-s", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds one configuration may run (compile included); past it, it is timed once instead, and "
                   "past that again it is written as not measured. Each says so in the CSV's note column.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench-results", show_default=True)
@click.option("--force", is_flag=True, help="Replace the results of an earlier run in --out.")
@click.option("--ablation", is_flag=True,
              help="Add the seed's ablation: DP-SGD with and without vmap/vectorized_map and jit/XLA.")
@click.option("--ablation-batch-size", type=click.IntRange(min=1), default=ABLATION_BATCH_SIZE, show_default=True,
              help="With --ablation: its one batch size.")
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Run the batch-size sweep (--no-sweep with --ablation runs the ablation alone).")
@click.option("--program", "program_name", default=None,
              help="Sweep this program instead of the seed's models: a built-in name, or your FILE.py:NAME whose "
                   "NAME takes batch_size.")
@click.pass_context
def bench(ctx: click.Context, models: tuple[str, ...], frameworks: tuple[str, ...], batch_sizes: tuple[int, ...],
          repeats: int, budget_s: float, out_dir: str, force: bool, ablation: bool, ablation_batch_size: int,
          sweep: bool, program_name: str | None) -> None:
    """The seed's runtime experiment: step time against batch size, DP-SGD and SGD, JAX and TF; CSV and plots."""
    if program_name is not None:
        _not_with(ctx, "--program", ["models", "ablation", "ablation_batch_size", "sweep"],
                  "--program sweeps one program's batch sizes; the other options choose the seed's models and builds")
    if not sweep:
        if not ablation:
            _refuse(ctx, "--no-sweep needs --ablation: without the sweep only the ablation is left to run")
        _not_with(ctx, "--no-sweep", ["batch_sizes"], "--batch-sizes are the sweep's")
    if not ablation and _given(ctx, "ablation_batch_size"):
        _refuse(ctx, "--ablation-batch-size needs --ablation: it sets the ablation's batch size")
    from xlainspect.measure.bench import (
        SEED_SPEEDUP_OVER_OPACUS,
        ablation_slowdowns,
        overhead_factors,
        run_ablation,
        run_bench,
        speedups,
    )
    from xlainspect.measure.records import AblationRow, BenchRow
    from xlainspect.output.format import ablation_text, bench_text, speedup_text, unmeasured_text
    from xlainspect.output.plots import plot_ablation, plot_bench

    def progress(done: int, total: int, note: str) -> None:
        filled = 30 * done // max(total, 1)
        click.echo(f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {note}", err=True)

    if program_name is not None:
        from xlainspect.measure.bench import run_program_bench

        rows = run_program_bench(out_dir, program_name, frameworks, batch_sizes, repeats, force, progress, budget_s)
    elif sweep:
        rows = run_bench(out_dir, models, frameworks, batch_sizes, repeats, force, progress, budget_s)
    if program_name is not None or sweep:
        unmeasured = BenchRow.unmeasured(f"{out_dir}/bench.csv")
        paths = plot_bench(rows, out_dir, unmeasured) if rows else []
        click.echo(bench_text(rows, overhead_factors(rows)))
        if speedup := speedup_text(speedups(rows), SEED_SPEEDUP_OVER_OPACUS):
            click.echo(speedup)
        if unmeasured:
            click.echo(unmeasured_text(unmeasured))
        click.echo(f"wrote {out_dir}/bench.csv" + "".join(f", {p}" for p in paths))
    if ablation:
        ablated = run_ablation(out_dir, models, frameworks, ablation_batch_size, repeats, force, progress, budget_s)
        unmeasured = AblationRow.unmeasured(f"{out_dir}/ablation.csv")
        paths = plot_ablation(ablated, out_dir, unmeasured) if ablated else []
        click.echo(ablation_text(ablated, ablation_slowdowns(ablated)))
        if unmeasured:
            click.echo(unmeasured_text(unmeasured))
        click.echo(f"wrote {out_dir}/ablation.csv" + "".join(f", {p}" for p in paths))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="SVG file to write.")
@_module_option()
@_filed_dump_options_decorator("Program whose dump PATH names (jax, tf, tf_via_jax, torch_xla, torch_xla_via_jax).")
@click.option("--computation", default=None, help="Draw this computation (a loop body, say) instead of the entry.")
@click.option("--fusion", default=None, help="Draw the fused ops of this fusion instruction.")
@click.option("--color", type=click.Choice(["kind", "time"]), default="kind", show_default=True,
              help="time: colour kernels by their share of the step (needs --timing).")
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --json': kernels show their time (with --color time, coloured by it).")
@click.option("--max-nodes", type=click.IntRange(min=1), default=300, show_default=True,
              help="Above this, fusions collapse and the graph is cut to a neighbourhood.")
@click.option("--around", default=None, help="Cut to the neighbourhood of this instruction.")
@click.option("--radius", type=click.IntRange(min=0), default=2, show_default=True,
              help="With --around: hops from it.")
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=DOT_TIME_LIMIT_S, show_default=True,
              metavar="SECONDS", help="How long graphviz may lay out the drawing before a simpler one replaces it.")
@click.pass_context
def render(ctx: click.Context, path: str, output: str, module: str | None, program_name: str | None, dumps_dir: str,
           backend: str, target: str | None, computation: str | None, fusion: str | None, color: str,
           timing_file: str | None, max_nodes: int, around: str | None, radius: int, time_limit: float) -> None:
    """Draw a module's kernel graph as a self-contained SVG: fusions, custom-calls, unfused ops, shapes on edges.

    PATH is an HLO file, a dump folder (xlainspect's or XLA's own --xla_dump_to), or jax/tf/tf_via_jax/torch_xla with
    --program for a filed dump.
    """
    _filed_dump_options(ctx, {"PATH": path})
    _target_needs_gpu(ctx, target, backend)
    if computation is not None and fusion is not None:
        _refuse(ctx, "--computation cannot be used with --fusion: --fusion draws its own fused computation")
    if around is None and _given(ctx, "radius"):
        _refuse(ctx, "--radius needs --around: it counts hops from that instruction")
    if color == "time" and timing_file is None:
        _refuse(ctx, "--color time needs --timing FILE: per-kernel times from 'xlainspect time --json'")
    if not output.lower().endswith(".svg"):
        _refuse(ctx, f"--output {output}: render writes SVG; name the file *.svg (a browser or 'rsvg-convert' "
                     "turns it into a PNG)")
    from xlainspect.hlo.files import atomic_write_text
    from xlainspect.measure.timing import kernel_times_for_module
    from xlainspect.output.render import RenderOptions, render_svg
    from xlainspect.runners.sides import resolve_side

    chosen = resolve_side(path, program_name, dumps_dir, backend, target, module).read()
    times = kernel_times_for_module(timing_file, chosen.name) if timing_file else {}
    options = RenderOptions(computation=computation, fusion=fusion, color=color, kernel_times=times,
                            max_nodes=max_nodes, around=around, radius=radius, time_limit_s=time_limit)
    svg, rendering = render_svg(chosen, options, report=_progress)
    atomic_write_text(output, svg)
    click.echo(f"wrote {output}: {len(rendering.nodes)} of {rendering.total_nodes} nodes of {rendering.computation}")
    for note in rendering.left_out:
        click.echo(f"  not shown: {note}")


@cli.command()
@click.argument("sides", nargs=-1, metavar="[A [B]]")
@_filed_dump_options_decorator("Program whose filed dumps to read: both jax and tf without A and B, else those A "
                               "and B name (jax, tf, tf_via_jax, torch_xla, torch_xla_via_jax).")
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --program P --json': adds step and per-kernel times.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@_two_sides_options("on the page")
@click.pass_context
def report(ctx: click.Context, sides: tuple[str, ...], program_name: str | None, dumps_dir: str, backend: str,
           target: str | None, timing_file: str | None, output: str, module: str | None, module_b: str | None,
           label_a: str | None, label_b: str | None) -> None:
    """One self-contained HTML page: versions, both censuses, the diff, timing, both kernel graphs, pass timeline.

    A and B are what diff takes (jax/tf with --program, dump folders, XLA's own --xla_dump_to folders, HLO files);
    without them, --program's filed jax and tf dumps. One side alone gives its kernels, census and graph.
    """
    _target_needs_gpu(ctx, target, backend)
    if len(sides) > 2:
        _refuse(ctx, f"report takes at most two sides (A and B), got {len(sides)}: {' '.join(sides)}")
    if not sides and program_name is None:
        _refuse(ctx, "give --program NAME (its filed jax and tf dumps) or the sides to show: A [B]")
    if sides:
        _filed_dump_options(ctx, dict(zip("AB", sides)))
    for name, needs in (("module_b", 2), ("label_b", 2), ("label_a", 1)):
        if _given(ctx, name) and len(sides) < needs:
            _refuse(ctx, f"{_flag(ctx, name)} needs {'two sides, A and B' if needs == 2 else 'a side A'}: it names "
                         "one of them")
    from xlainspect.hlo.files import atomic_write_text
    from xlainspect.output.report import build_report

    page = build_report(program_name, dumps_dir, backend, timing_file, target, progress=_progress, sides=sides,
                        labels=(label_a, label_b), module=module, module_b=module_b)
    atomic_write_text(output, page)
    click.echo(f"wrote {output} ({len(page) / 1e3:.0f} kB); open it in any browser, no server needed")


# -- memory: the report, and two subcommands ---------------------------------------------------------------------

_MAX_BATCH_ONLY = ("find_max", "device_memory", "start", "out_dir", "force")


@cli.group(invoke_without_command=True)
@click.option("--program", "program_name", default=None, help=_PROGRAM_HELP + " (required)")
@click.option("--framework", type=click.Choice([*XLA_FRAMEWORKS, "both", "all"]), default="both", show_default=True,
              help="both: jax and tf; all: also torch_xla (its own XLA's buffer assignment; one batch size, CPU).")
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
              help="gpu: this machine's GPU, or deviceless for --target without one.")
@click.option("--target", default=None, help="With --backend gpu: compile deviceless for this GPU (h100, a100 or a "
                                              "description file).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size (default: the program's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
# The forms from before the subcommands, kept working: `memory --max-batch ...` and `memory --check-peak N,N`.
@click.option("--max-batch", "find_max", is_flag=True, hidden=True)
@click.option("--device-memory", type=ByteSize(), default=None, hidden=True)
@click.option("--start", type=click.IntRange(min=1), default=16, hidden=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="memory-results", hidden=True)
@click.option("--force", is_flag=True, hidden=True)
@click.option("--check-peak", type=BATCH_SIZES, default=None, hidden=True)
@_python_option
@click.pass_context
def memory(ctx: click.Context, program_name: str | None, framework: str, backend: str, target: str | None,
           batch_size: int | None, as_json: bool, find_max: bool, device_memory: int | None, start: int,
           out_dir: str, force: bool, check_peak: tuple[int, ...] | None, python: str | None) -> None:
    """Compile-time memory of a program in JAX and TF: bytes, largest temporaries and who owns them.

    'memory max-batch' finds the largest batch that fits a device; 'memory check-peak' compares the figures with a
    real step's resident memory.
    """
    if ctx.invoked_subcommand is not None:
        for param in ctx.command.params:
            if _given(ctx, param.name):
                _refuse(ctx, f"{_flag(ctx, param.name)} goes after the subcommand: xlainspect memory "
                             f"{ctx.invoked_subcommand} {_flag(ctx, param.name)} ...")
        return
    if program_name is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "program_name"))
    if check_peak is not None:
        _not_with(ctx, "--check-peak", ["framework", "backend", "target", "batch_size", "python", *_MAX_BATCH_ONLY],
                  "the peak check runs JAX steps on this machine's CPU at its own batch sizes "
                  "(now 'xlainspect memory check-peak')")
        _check_peak(program_name, check_peak, as_json)
    elif find_max:
        _not_with(ctx, "--max-batch", ["batch_size"], "it searches for the batch size (now 'xlainspect memory "
                                                      "max-batch')")
        _max_batch(ctx, program_name, framework, backend, target, device_memory, start, out_dir, force, as_json,
                   python)
    else:
        if (option := _first_given(ctx, _MAX_BATCH_ONLY)) is not None:
            _refuse(ctx, f"{option} needs --max-batch: it belongs to the largest-batch search ('xlainspect memory "
                         "max-batch')")
        _target_needs_gpu(ctx, target, backend)
        _memory_report(program_name, framework, backend, target, batch_size, as_json, python)


@memory.command(name="max-batch")
@click.option("--program", "program_name", required=True, help=_PROGRAM_HELP)
@click.option("--framework", type=_FRAMEWORK_OR_ALL, default="all", show_default=True)
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
              help="gpu: this machine's GPU, or deviceless for --target without one.")
@click.option("--target", default=None,
              help="A GPU (h100, a100 or a description file): its memory is the limit unless --device-memory is "
                   "given; with --backend gpu, compile deviceless for it.")
@click.option("--device-memory", type=ByteSize(), default=None,
              help="The memory to fit, e.g. 80GiB (default: the --target's own memory).")
@click.option("--start", type=click.IntRange(min=1), default=16, show_default=True, help="The first batch tried.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="memory-results", show_default=True,
              help="Where the curve's CSV and plots go.")
@click.option("--resolution", type=click.IntRange(min=1), default=None,
              help="Stop when the batch that fits and the smallest that does not are at most N examples apart (the "
                   "seed's --thresh). Default: 0.1% of the batch that fits.")
@click.option("--force", is_flag=True, help="Replace an earlier curve in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_python_option
@click.pass_context
def memory_max_batch(ctx: click.Context, program_name: str, framework: str, backend: str, target: str | None,
                     device_memory: int | None, start: int, resolution: int | None, out_dir: str, force: bool,
                     as_json: bool, python: str | None) -> None:
    """The largest batch whose compile-time peak fits a device's memory, by bisection; the curve as CSV and plots."""
    _max_batch(ctx, program_name, framework, backend, target, device_memory, start, out_dir, force, as_json, python,
               resolution)


@memory.command(name="check-peak")
@click.option("--program", "program_name", required=True, help=_PROGRAM_HELP)
@click.option("--batch-sizes", type=BATCH_SIZES, required=True, help="Batch sizes to run, e.g. 256,1024.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def memory_check_peak(program_name: str, batch_sizes: tuple[int, ...], as_json: bool) -> None:
    """Run JAX steps on this machine's CPU and compare their resident memory with the compile-time figures."""
    _check_peak(program_name, batch_sizes, as_json)


def _memory_report(program_name: str, framework: str, backend: str, target: str | None, batch_size: int | None,
                   as_json: bool, python: str | None) -> None:
    from xlainspect.errors import CaptureError
    from xlainspect.measure.memory import memory_report
    from xlainspect.output.format import memory_json, memory_text

    frameworks = _chosen_frameworks(framework, XLA_FRAMEWORKS)
    results, failures = memory_report(program_name, frameworks, backend, batch_size, target, progress=_progress,
                                      python=python)
    click.echo(memory_json(program_name, results, failures) if as_json else memory_text(results, failures))
    if failures:
        raise CaptureError("; ".join(failures))


def _max_batch(ctx: click.Context, program_name: str, framework: str, backend: str, target: str | None,
               device_memory: int | None, start: int, out_dir: str, force: bool, as_json: bool,
               python: str | None, resolution: int | None = None) -> None:
    if device_memory is None and target is None:
        _refuse(ctx, "the largest batch needs --device-memory SIZE (e.g. 80GiB) or --target NAME: the memory to fit")
    if device_memory is not None and target is not None and backend != "gpu":
        _refuse(ctx, "--target cannot be used with --device-memory unless --backend gpu: on the CPU the target "
                     "would only give the memory, which --device-memory already sets")
    from xlainspect.errors import CaptureError
    from xlainspect.measure.memory import curve_stem, device_limit, max_batch, write_curve
    from xlainspect.output.format import max_batch_json, max_batch_text
    from xlainspect.output.plots import plot_curve

    if framework == "torch_xla":
        _refuse(ctx, "the largest-batch search compiles JAX's and TF's modules through JAX's XLA; for torch_xla, "
                     "'xlainspect memory --framework torch_xla --batch-size N' gives one batch size's figures")
    frameworks = FRAMEWORKS if framework in ("all", "both") else (framework,)
    limit = device_memory if device_memory is not None else device_limit(None, target)
    stem = curve_stem(out_dir, program_name, backend, target, force)
    results, failures = max_batch(program_name, limit, frameworks, backend, target, start, progress=_progress,
                                  python=python, resolution=resolution)
    written = [write_curve(results, stem.with_name(stem.name + ".csv"))]
    written += plot_curve(results, stem, f"{program_name}: compile-time peak against batch size")
    if as_json:
        click.echo(max_batch_json(program_name, limit, results, failures))
    else:
        click.echo(max_batch_text(results))
        click.echo("wrote " + ", ".join(str(p) for p in written))
        for message in failures:
            click.echo(f"failed: {message}")
    if failures:
        raise CaptureError("; ".join(failures))


def _check_peak(program_name: str, batch_sizes: Sequence[int], as_json: bool) -> None:
    from xlainspect.measure.memory import check_peaks
    from xlainspect.output.format import peak_check_json, peak_check_text

    checks = check_peaks(program_name, batch_sizes, progress=_progress)
    click.echo(peak_check_json(checks) if as_json else peak_check_text(checks))


@cli.command()
@click.argument("folder", type=click.Path())
@_module_option("Which module, when the folder holds pass dumps of several (an XLA dump folder): its name or "
                "module_NNNN id, its position (see 'stats --list') or a regular expression on its name that "
                "matches one. Default: the main module (the largest optimized one, JAX's helpers excluded).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per pass.")
def passes(folder: str, module: str | None, as_json: bool) -> None:
    """Instruction and fusion counts after every XLA pass of a dump made with --pass-dumps."""
    from xlainspect.analysis.passes import missing_steps, pass_timeline
    from xlainspect.output.format import timeline_json, timeline_text

    steps = pass_timeline(folder, module)
    click.echo(timeline_json(steps) if as_json else timeline_text(steps, missing_steps(steps)))


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="dumps/demo", show_default=True,
              help="The demo's own folder: dumps, kernel graphs and the report.")
def demo(out_dir: str) -> None:
    """The main job on the seed's MSE gradient: dump JAX and TF, diff their kernels, draw them, write the report."""
    from xlainspect.demo import run_demo

    for line in run_demo(out_dir):
        click.echo(line)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit status; errors become one line on stderr."""
    try:
        # Without standalone mode, click returns the code of a ctx.exit() / Exit (e.g. --fail-on-diff's 3).
        status = cli.main(args=argv, prog_name="xlainspect", standalone_mode=False)
    except XlaInspectError as e:
        click.echo(f"xlainspect: {e}" if not _starts_with_location(str(e)) else str(e), err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("xlainspect: interrupted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("xlainspect: interrupted", err=True)
        return 130
    return status if isinstance(status, int) else 0


def _starts_with_location(message: str) -> bool:
    """Whether a message already starts with ``FILE:LINE:COL:`` (parse errors), which stays first on the line."""
    head = message.split(" ", 1)[0]
    return head.count(":") >= 3 and head.endswith(":")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# -- view: Model Explorer ---------------------------------------------------------------------------------------------

@cli.command()
@click.argument("path")
@click.argument("path_b", required=False)
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --json': time per kernel and share of the step as overlays.")
@click.option("--diff", "diff_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect diff --json': matched / only-A / only-B as an overlay (with A B: its pairing "
                   "drives the synced navigation).")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="With A B: also write the diff's whole pairing as a Model Explorer mapping file; loaded with the "
                   "page's Sync > 'Upload mapping from computer', it links a kernel to all its partners, where "
                   "the default sync links one.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=None,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@_module_option(_MODULE_HELP + " Applies to both sides unless --module-b is given.")
@click.option("--module-b", default=None, metavar="SELECTOR", help="PATH_B's module, when it differs from --module.")
def view(path: str, path_b: str | None, timing_file: str | None, diff_file: str | None, mapping_file: str | None,
         port: int | None, no_browser: bool, module: str | None, module_b: str | None) -> None:
    """Open a module in Google's Model Explorer (the [explorer] extra): fusions as layers, overlays from --timing.

    PATH is an HLO file or a dump folder (xlainspect's or XLA's own --xla_dump_to); with PATH_B the two are shown
    side by side, with node ids set from the diff's pairing for Model Explorer's "match node id" sync: click a kernel
    in one graph and the other selects its partner. The server listens on 127.0.0.1 only and stops when view does
    (Ctrl-C).
    """
    import webbrowser

    from xlainspect.output.model_explorer import build_view, serve, write_mapping

    if mapping_file is not None and path_b is None:
        raise click.UsageError("--mapping needs two modules (view A B): it maps A's kernels to B's")
    shown = build_view(path, path_b, timing_file, diff_file, module, module_b)
    if mapping_file is not None and shown.mapping is not None:
        written = write_mapping(shown.mapping, mapping_file)
        groups = shown.mapping["mappingEntries"]
        several = sum(len(g["leftNodeIds"]) + len(g["rightNodeIds"]) > 2 for g in groups)
        click.echo(f"wrote {written}: {len(groups)} groups of paired kernels, {several} of them one-to-many",
                   err=True)
    nodes = sum(len(graph["nodes"]) for model in shown.models for graph in model.graphs.graphs)
    click.echo(f"converted {nodes} nodes in {sum(shown.seconds.values()):.2f} s; starting Model Explorer", err=True)
    with serve(shown, port) as server:
        click.echo(server.url)
        if len(shown.models) == 2:
            click.echo("click a kernel in one graph: the other selects its partner in the diff (picking from the "
                       "search results moves one pane only)"
                       + (f"; for one-to-many pairs, load {mapping_file} with Sync > Upload mapping from computer"
                          if mapping_file else ""), err=True)
        if not no_browser:
            webbrowser.open_new_tab(server.url)
        click.echo("Press Ctrl-C to stop.", err=True)
        server.wait()
