"""The ``xlainspect`` command: parses options, calls one library function per command, prints the result.

Only this module turns errors into exit codes: an :class:`~xlainspect.errors.XlaInspectError` becomes its one-line
message on stderr and the error's exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from xlainspect import __version__
from xlainspect.errors import XlaInspectError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xlainspect")
def cli() -> None:
    """Inspect what XLA compiled: parse HLO dumps, count kernels, compare frameworks."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per module.")
def stats(paths: tuple[str, ...], as_json: bool) -> None:
    """Count computations, instructions, opcodes, fusions and custom-calls of HLO modules.

    PATHS are HLO text files or folders of them (searched recursively, e.g. an XLA dump folder).
    """
    from xlainspect.analysis.stats import module_stats
    from xlainspect.hlo import read_hlo
    from xlainspect.hlo.files import hlo_files
    from xlainspect.output.format import stats_json, stats_text

    results = [module_stats(module) for path in hlo_files(list(paths)) for module in read_hlo(path)]
    click.echo(stats_json(results) if as_json else stats_text(results))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["graphml", "json"]), default="graphml", show_default=True,
              help="graphml (for Gephi, yEd, networkx) or node-link JSON.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--module", "module_index", type=int, default=0, show_default=True,
              help="Which module of a file holding several (from 0).")
def graph(path: str, fmt: str, output: str, module_index: int) -> None:
    """Write the instruction graph of an HLO module: nodes, operand edges, call edges into called computations."""
    from xlainspect.analysis.graph import to_networkx, write_graph
    from xlainspect.hlo.files import hlo_module_at

    module = hlo_module_at(path, module_index)
    module_graph = to_networkx(module)
    write_graph(module_graph, output, fmt)
    click.echo(f"wrote {output}: {module_graph.number_of_nodes()} nodes, {module_graph.number_of_edges()} edges "
               f"({fmt}, module {module.name})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per program.")
def programs(as_json: bool) -> None:
    """List the synthetic programs: name, description, shapes, parameters."""
    from xlainspect.output.format import programs_json, programs_text
    from xlainspect.programs import PROGRAMS

    click.echo(programs_json(PROGRAMS.values()) if as_json else programs_text(PROGRAMS.values()))


@cli.command()
@click.option("--program", "program_name", required=True, help="A name from 'xlainspect programs'.")
@click.option("--framework", type=click.Choice(["jax", "tf", "all"]), default="all", show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: on this machine's GPU, or without one deviceless for --target (needs the [gpu] extra).")
@click.option("--target", default="h100", show_default=True,
              help="GPU to compile for without one: h100, a100, or a GpuTargetConfigProto text file.")
@click.option("--compiler", type=click.Choice(["native", "jax"]), default="native", show_default=True,
              help="jax: compile TF's module with JAX's XLA too (filed as tf_via_jax), to separate front end from "
                   "XLA version.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="dumps", show_default=True,
              help="The dumps folder; files go to OUT/<backend>/<program>/<framework>/ (backend gpu-<target> when "
                   "deviceless).")
@click.option("--batch-size", type=int, default=None, help="Batch size (default: the program's).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--pass-dumps", is_flag=True, help="Also keep XLA's module after every pass, under passes/.")
@click.option("--force", is_flag=True, help="Replace existing dumps.")
def dump(program_name: str, framework: str, backend: str, target: str, compiler: str, out_dir: str,
         batch_size: int | None, dtype: str, pass_dumps: bool, force: bool) -> None:
    """Compile a program in JAX and TF2+XLA, each in a child process, and file their HLO with a manifest."""
    from xlainspect.errors import CaptureError
    from xlainspect.runners.capture import FRAMEWORKS, dump_program

    frameworks = FRAMEWORKS if framework == "all" else (framework,)
    outcome = dump_program(program_name, frameworks, out_dir, backend, batch_size, dtype, pass_dumps, force,
                           progress=lambda line: click.echo(line, err=True), target=target, compiler=compiler)
    for item in outcome.dumps:
        click.echo(f"{item.framework}: {item.directory} ({item.module_name}; {item.manifest['compiler']})")
    if outcome.failures:
        raise CaptureError("; ".join(failure.message for failure in outcome.failures))


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--program", "program_name", default=None, help="Program whose dumps A and B name (jax, tf).")
@click.option("--dumps", "dumps_dir", default="dumps", show_default=True, type=click.Path(file_okay=False))
@click.option("--backend", default="cpu", show_default=True,
              help="cpu or gpu (gpu: dumps compiled on a GPU, else the deviceless gpu-<target> ones).")
@click.option("--target", default=None, help="With --backend gpu: the deviceless target's dumps (h100, a100).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--fail-on-diff", is_flag=True,
              help="Exit 3 unless both sides launch the same kernels: the same math and layouts, as often (for CI).")
@click.option("--ignore-layout", is_flag=True,
              help="With --fail-on-diff: accept kernels that compute the same values with different memory layouts.")
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --json' for the same program: attach per-kernel times (A, B = jax, tf).")
@click.option("--passes", "with_passes", is_flag=True,
              help="Also name the first XLA pass after which the two sides' fusions differ (needs --pass-dumps dumps).")
def diff(a: str, b: str, program_name: str | None, dumps_dir: str, backend: str, target: str | None, as_json: bool,
         fail_on_diff: bool, ignore_layout: bool, timing_file: str | None, with_passes: bool) -> None:
    """Compare the kernels of two compiled modules: A and B are jax/tf (with --program), dump folders or files."""
    import json

    from xlainspect.analysis.census import census
    from xlainspect.analysis.diff import diff_census
    from xlainspect.hlo import read_hlo
    from xlainspect.output.format import diff_text
    from xlainspect.runners.sides import resolve_side

    side_a = resolve_side(a, program_name, dumps_dir, backend, target)
    side_b = resolve_side(b, program_name, dumps_dir, backend, target)
    result = diff_census(census(read_hlo(side_a.path)[0]), census(read_hlo(side_b.path)[0]), side_a.compiler,
                         side_b.compiler)
    divergence = None
    if with_passes:
        from xlainspect.analysis.passes import first_divergence, pass_timeline

        divergence = first_divergence(pass_timeline(side_a.path.parent), pass_timeline(side_b.path.parent), (a, b))
    times_a = times_b = None
    if timing_file is not None:
        from xlainspect.measure.timing import kernel_times_by_name

        times_a, times_b = kernel_times_by_name(timing_file, a), kernel_times_by_name(timing_file, b)
    if as_json:
        from xlainspect.analysis.diff import timed_json

        data = timed_json(result, times_a, times_b) if times_a is not None else result.to_json()
        if with_passes:
            data["first_divergence"] = None if divergence is None else {
                "pass": divergence.pass_name, "pipeline": divergence.pipeline, "only_in": divergence.only_in,
                "description": divergence.description}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(diff_text(result, a, b, str(side_a.path), str(side_b.path), times_a, times_b))
        if with_passes:
            click.echo("first divergence: " + (divergence.description if divergence is not None else
                                               "none: the two sides' fusions never differ after any pass"))
    if fail_on_diff and not (result.same_math if ignore_layout else result.same_structure):
        raise click.exceptions.Exit(3)


@cli.command(name="time")
@click.option("--program", "program_name", required=True, help="A name from 'xlainspect programs'.")
@click.option("--framework", type=click.Choice(["jax", "tf", "all"]), default="all", show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu needs a visible GPU (and jax's CUDA plugin); command buffers are turned off to profile.")
@click.option("--batch-size", type=int, default=None, help="Batch size (default: the program's).")
@click.option("--repeats", type=int, default=20, show_default=True, help="Timed steady-state runs.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed runs after compiling.")
@click.option("--profile-runs", type=int, default=5, show_default=True,
              help="Runs profiled for per-kernel time (0: none).")
@click.option("--no-vectorize", is_flag=True,
              help="Ablation: per-example gradients in a Python loop, not vmap / vectorized_map (DP-SGD only).")
@click.option("--no-compile", is_flag=True, help="Ablation: no jax.jit (op by op) / no XLA (a plain tf.function).")
@click.option("--tf-via-jax", is_flag=True,
              help="Time TF's HLO compiled and run by JAX's XLA (when TF's profiler gives no per-op times).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def time_command(program_name: str, framework: str, backend: str, batch_size: int | None, repeats: int, warmup: int,
                 profile_runs: int, no_vectorize: bool, no_compile: bool, tf_via_jax: bool, as_json: bool) -> None:
    """Time a program in JAX and TF2+XLA, each in its own process: compile time, step time, time per kernel."""
    import json

    from xlainspect.errors import CaptureError
    from xlainspect.measure.timing import time_program
    from xlainspect.output.format import timing_text

    frameworks = ("jax", "tf") if framework == "all" else (framework,)
    report = time_program(program_name, frameworks, batch_size, repeats, warmup, profile_runs,
                          progress=lambda line: click.echo(line, err=True), vectorize=not no_vectorize,
                          compiled=not no_compile, backend=backend, tf_via_jax=tf_via_jax)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else timing_text(report))
    if report.failures:
        raise CaptureError("; ".join(message for _, message in report.failures))


@cli.command()
@click.option("--models", default="ffnn,mnist", show_default=True, help="Comma-separated: ffnn, mnist.")
@click.option("--frameworks", default="jax,tf", show_default=True, help="Comma-separated: jax, tf.")
@click.option("--batch-sizes", default="16,32,64,128,256", show_default=True, help="Comma-separated batch sizes.")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed steady-state runs per configuration.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench-results", show_default=True)
@click.option("--force", is_flag=True, help="Replace the results of an earlier run in --out.")
@click.option("--ablation", is_flag=True,
              help="Add the seed's ablation: DP-SGD with and without vmap/vectorized_map and jit/XLA.")
@click.option("--ablation-batch-size", type=int, default=128, show_default=True)
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Run the batch-size sweep (--no-sweep with --ablation runs the ablation alone).")
def bench(models: str, frameworks: str, batch_sizes: str, repeats: int, out_dir: str, force: bool, ablation: bool,
          ablation_batch_size: int, sweep: bool) -> None:
    """The seed's runtime experiment: step time against batch size, DP-SGD and SGD, JAX and TF; CSV and plots."""
    from xlainspect.errors import InputError
    from xlainspect.measure.bench import (
        ablation_slowdowns,
        overhead_factors,
        run_ablation,
        run_bench,
    )
    from xlainspect.output.format import ablation_text, bench_text
    from xlainspect.output.plots import plot_ablation, plot_bench

    try:
        sizes = [int(size) for size in batch_sizes.split(",")]
    except ValueError:
        raise InputError(f"--batch-sizes must be comma-separated integers, got {batch_sizes!r}") from None
    if not sweep and not ablation:
        raise InputError("--no-sweep leaves nothing to run; add --ablation")

    def progress(done: int, total: int, note: str) -> None:
        filled = 30 * done // max(total, 1)
        click.echo(f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {note}", err=True)

    if sweep:
        rows = run_bench(out_dir, models.split(","), frameworks.split(","), sizes, repeats, force, progress)
        paths = plot_bench(rows, out_dir) if rows else []
        click.echo(bench_text(rows, overhead_factors(rows)))
        click.echo(f"wrote {out_dir}/bench.csv" + "".join(f", {p}" for p in paths))
    if ablation:
        ablated = run_ablation(out_dir, models.split(","), frameworks.split(","), ablation_batch_size, repeats, force,
                               progress)
        paths = plot_ablation(ablated, out_dir) if ablated else []
        click.echo(ablation_text(ablated, ablation_slowdowns(ablated)))
        click.echo(f"wrote {out_dir}/ablation.csv" + "".join(f", {p}" for p in paths))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="SVG file to write.")
@click.option("--module", "module_index", type=int, default=0, show_default=True,
              help="Which module of a file that holds several.")
@click.option("--computation", default=None, help="Draw this computation (a loop body, say) instead of the entry.")
@click.option("--fusion", default=None, help="Draw the fused ops of this fusion instruction.")
@click.option("--color", type=click.Choice(["kind", "time"]), default="kind", show_default=True)
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --json': kernels show their time (with --color time, coloured by it).")
@click.option("--max-nodes", type=int, default=300, show_default=True,
              help="Above this, fusions collapse and the graph is cut to a neighbourhood.")
@click.option("--around", default=None, help="Cut to the neighbourhood of this instruction.")
@click.option("--radius", type=int, default=2, show_default=True, help="Hops from --around.")
def render(path: str, output: str, module_index: int, computation: str | None, fusion: str | None, color: str,
           timing_file: str | None, max_nodes: int, around: str | None, radius: int) -> None:
    """Draw a module's kernel graph as a self-contained SVG: fusions, custom-calls, unfused ops, shapes on edges."""
    from xlainspect.hlo.files import atomic_write_text, hlo_module_at
    from xlainspect.measure.timing import kernel_times_for_module
    from xlainspect.output.render import RenderOptions, render_svg

    module = hlo_module_at(path, module_index)
    times = kernel_times_for_module(timing_file, module.name) if timing_file else {}
    options = RenderOptions(computation=computation, fusion=fusion, color=color, kernel_times=times,
                            max_nodes=max_nodes, around=around, radius=radius)
    svg, rendering = render_svg(module, options)
    atomic_write_text(output, svg)
    click.echo(f"wrote {output}: {len(rendering.nodes)} of {rendering.total_nodes} nodes of {rendering.computation}")
    for note in rendering.left_out:
        click.echo(f"  not shown: {note}")


@cli.command()
@click.option("--program", "program_name", required=True, help="A name from 'xlainspect programs'.")
@click.option("--dumps", "dumps_dir", default="dumps", show_default=True, type=click.Path(file_okay=False))
@click.option("--backend", default="cpu", show_default=True)
@click.option("--timing", "timing_file", type=click.Path(dir_okay=False), default=None,
              help="JSON from 'xlainspect time --program P --json': adds step and per-kernel times.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
def report(program_name: str, dumps_dir: str, backend: str, timing_file: str | None, output: str) -> None:
    """One self-contained HTML page: versions, both censuses, the diff, timing, both kernel graphs, pass timeline."""
    from xlainspect.hlo.files import atomic_write_text
    from xlainspect.output.report import build_report

    page = build_report(program_name, dumps_dir, backend, timing_file)
    atomic_write_text(output, page)
    click.echo(f"wrote {output} ({len(page) / 1e3:.0f} kB); open it in any browser, no server needed")


@cli.command()
@click.option("--program", "program_name", required=True, help="A name from 'xlainspect programs'.")
@click.option("--framework", type=click.Choice(["jax", "tf", "all"]), default="all", show_default=True)
@click.option("--backend", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: this machine's GPU, or deviceless for --target without one.")
@click.option("--target", default=None, help="GPU target (h100, a100 or a description file): compile deviceless.")
@click.option("--batch-size", type=int, default=None, help="Batch size (default: the program's).")
@click.option("--max-batch", "find_max", is_flag=True, help="Bisect on the batch size for the largest that fits.")
@click.option("--device-memory", default=None,
              help="With --max-batch: the memory to fit, e.g. 80GiB (default: the --target's own memory).")
@click.option("--start", type=int, default=16, show_default=True, help="With --max-batch: the first batch tried.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="memory-results", show_default=True,
              help="With --max-batch: where the curve's CSV and plots go.")
@click.option("--force", is_flag=True, help="With --max-batch: replace an earlier curve in --out.")
@click.option("--check-peak", default=None, metavar="BATCHES",
              help="Run JAX steps at these batch sizes (e.g. 256,1024) and compare resident memory with the figures.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def memory(program_name: str, framework: str, backend: str, target: str | None, batch_size: int | None,
           find_max: bool, device_memory: str | None, start: int, out_dir: str, force: bool, check_peak: str | None,
           as_json: bool) -> None:
    """Compile-time memory of a program in JAX and TF: bytes, largest temporaries and owners, largest batch."""
    import dataclasses
    import json

    from xlainspect.errors import CaptureError, InputError
    from xlainspect.measure.memory import max_batch, memory_report, write_curve
    from xlainspect.output.format import max_batch_text, memory_text
    from xlainspect.output.plots import plot_curve

    frameworks = ("jax", "tf") if framework == "all" else (framework,)
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    failures: list[str] = []
    if check_peak is not None:
        from xlainspect.measure.memory import check_peaks
        from xlainspect.output.format import peak_check_text

        try:
            sizes = [int(size) for size in check_peak.split(",")]
        except ValueError:
            raise InputError(f"--check-peak must be comma-separated batch sizes, got {check_peak!r}") from None
        checks = check_peaks(program_name, sizes, progress=progress)
        click.echo(json.dumps([{**dataclasses.asdict(c), "error": round(c.error, 4)} for c in checks], indent=2)
                   if as_json else peak_check_text(checks))
    elif not find_max:
        results, failures = memory_report(program_name, frameworks, backend, batch_size, target,
                                          progress=progress)
        if as_json:
            click.echo(json.dumps({"program": program_name, "frameworks": {
                r.framework: {**dataclasses.asdict(r), "peak": r.figures.peak} for r in results},
                "failures": failures}, indent=2))
        else:
            click.echo(memory_text(results, failures))
    else:
        from xlainspect.measure.memory import curve_stem, device_limit

        limit = device_limit(device_memory, target)
        stem = curve_stem(out_dir, program_name, backend, target, force)
        results, failures = max_batch(program_name, limit, frameworks, backend, target, start, progress=progress)
        written = [write_curve(results, stem.with_name(stem.name + ".csv"))]
        written += plot_curve(results, stem, f"{program_name}: compile-time peak against batch size")
        if as_json:
            click.echo(json.dumps({"program": program_name, "limit": limit, "frameworks": {
                r.framework: {"max_batch": r.max_batch, "exact": r.exact, "route": r.route,
                              "curve": [{**dataclasses.asdict(p), "peak": p.peak} for p in r.curve]}
                for r in results}, "failures": failures}, indent=2))
        else:
            click.echo(max_batch_text(results))
            click.echo("wrote " + ", ".join(str(p) for p in written))
            for message in failures:
                click.echo(f"failed: {message}")
    if failures:
        raise CaptureError("; ".join(failures))


@cli.command()
@click.argument("folder", type=click.Path())
@click.option("--module", default=None, help="Which module, when the folder holds pass dumps of several.")
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
