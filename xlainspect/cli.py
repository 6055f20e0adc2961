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
    from xlainspect.files import hlo_files
    from xlainspect.format import stats_json, stats_text
    from xlainspect.parse import read_hlo
    from xlainspect.stats import module_stats

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
    from xlainspect.errors import InputError
    from xlainspect.graph import to_networkx, write_graph
    from xlainspect.parse import read_hlo

    modules = read_hlo(path)
    if not 0 <= module_index < len(modules):
        raise InputError(f"{path}: has {len(modules)} module(s); --module must be 0 to {len(modules) - 1}")
    module_graph = to_networkx(modules[module_index])
    write_graph(module_graph, output, fmt)
    click.echo(f"wrote {output}: {module_graph.number_of_nodes()} nodes, {module_graph.number_of_edges()} edges "
               f"({fmt}, module {modules[module_index].name})")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="dumps/demo", show_default=True,
              help="Folder for the demo's HLO and graph files.")
def demo(out_dir: str) -> None:
    """Compile the seed's MSE gradient in JAX, then show what XLA made of it."""
    from xlainspect.demo import run_demo

    for line in run_demo(out_dir):
        click.echo(line)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit status; errors become one line on stderr."""
    try:
        cli.main(args=argv, prog_name="xlainspect", standalone_mode=False)
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
    return 0


def _starts_with_location(message: str) -> bool:
    """Whether a message already starts with ``FILE:LINE:COL:`` (parse errors), which stays first on the line."""
    head = message.split(" ", 1)[0]
    return head.count(":") >= 3 and head.endswith(":")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
