"""``xlainspect demo``: the seed paper's smallest case, end to end, on this machine.

It compiles the gradient of ``mean((W @ x + b - y) ** 2)`` with respect to W and b (5x5, float32) with JAX, saves
the HLO before and after XLA's optimizations, and shows what XLA made of it: module statistics and the fused kernels,
plus the instruction graph as GraphML. Later commands (dump, diff) build on the same files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.files import atomic_write_text
from xlainspect.format import stats_text
from xlainspect.graph import to_networkx, write_graph
from xlainspect.parse import parse_hlo
from xlainspect.stats import fusion_kind_label, module_stats, top_level_instructions


def _linear_grad_hlo() -> tuple[str, str, str]:
    """Before- and after-optimization HLO of the MSE gradient, and the jax version that compiled it."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        raise FrameworkUnavailable("the demo compiles with JAX, which is not installed; run 'make install' or "
                                   "'pip install xlainspect[jax]'") from e

    def loss(w, b, x, y):
        return jnp.mean((w @ x + b - y) ** 2)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    args = (jnp.ones((5, 5), jnp.float32), jnp.ones(5, jnp.float32), jnp.ones(5, jnp.float32),
            jnp.ones(5, jnp.float32))
    lowered = grad.lower(*args)
    return lowered.as_text(dialect="hlo"), lowered.compile().as_text(), jax.__version__


def run_demo(out_dir: str) -> Iterator[str]:
    """Runs the demo, yielding the lines to show.

    Raises:
        FrameworkUnavailable: JAX is not installed.
        InputError: the output folder cannot be written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the demo folder: {e.strerror}") from None
    before, after, version = _linear_grad_hlo()
    yield f"Compiled grad(mean((W @ x + b - y)**2)) w.r.t. W, b (W 5x5, float32) with JAX {version} on CPU."
    for stage, text in (("before_optimizations", before), ("after_optimizations", after)):
        path = out / f"linear_grad.jax.{stage}.txt"
        atomic_write_text(path, text)
        module = parse_hlo(text, str(path))
        yield ""
        yield stats_text([module_stats(module)])
    module = parse_hlo(after, str(out / "linear_grad.jax.after_optimizations.txt"))
    yield ""
    yield "Kernels XLA launches (top-level fusions and unfused compute ops of the entry computation):"
    free = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
    for instruction in top_level_instructions(module):
        if instruction.opcode in free:
            continue
        kind = f" {fusion_kind_label(instruction)}" if instruction.opcode == "fusion" else ""
        ops = ""
        if instruction.opcode == "fusion":
            body = module.computation(instruction.called_computations[0].name)
            ops = " fusing " + ", ".join(sorted({i.opcode for i in body.instructions} - {"parameter"}))
        yield f"  {instruction.name:<32} {instruction.opcode}{kind} -> {instruction.shape}{ops}"
    graph_path = out / "linear_grad.jax.after_optimizations.graphml"
    graph = to_networkx(module)
    write_graph(graph, str(graph_path), "graphml")
    yield ""
    yield f"Wrote {out}/: HLO before and after optimization, and {graph_path.name} ({graph.number_of_nodes()} " \
          f"nodes, {graph.number_of_edges()} edges)."
