"""Kernel graphs as pictures: a computation's kernels, fusions as clusters of their fused ops, drawn by graphviz.

A module's text is the truth but not a view: a DP-SGD step is hundreds of instructions, a transformer step a
hundred thousand. The picture keeps what decides speed (the kernels and the data between them) and drops the
plumbing (tuples, get-tuple-element, bitcasts, constants), routing edges through it. Each node's tooltip names the
source lines its ops came from (or the framework ops, when no line of the user's is known).

What is drawn is chosen from what graphviz's ``dot`` can lay out in seconds (:mod:`.layout` estimates its work
before it runs): fusions are drawn as clusters of their ops, and edges carry their shapes, only while the estimate
stays within the budget; beyond it fusions collapse to single nodes, edge shapes move to tooltips, and then the
graph is cut to the neighbourhood of one kernel. ``dot`` still runs under a time limit; if it does not finish, a
simpler drawing replaces it. The caption says everything that was left out, so nobody mistakes a cut for the whole.

The DOT is built with the ``graphviz`` package (a ``Digraph``, a cluster subgraph per expanded fusion), which quotes
names and attribute values; the ``dot`` program is run directly, with a time limit (see :func:`dot_to_svg`).
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xlainspect.analysis.census import CONTROL_OPCODES, FREE_OPCODES, kernel_cost
from xlainspect.analysis.stats import fusion_kind_label
from xlainspect.errors import DotTimeout, FrameworkUnavailable, InputError
from xlainspect.hlo import Computation, HloModule, Instruction
from xlainspect.output.layout import LAYOUT_BUDGET, LayoutCost, layout_cost

if TYPE_CHECKING:
    import graphviz

# Fill colours by fusion kind; backend kinds (YNNPACK, Triton, cuDNN) count as kCustom.
KIND_COLOURS = {"kLoop": "#8ecae6", "kInput": "#ffd166", "kOutput": "#f4a261", "kCustom": "#b5e48c"}
CUSTOM_CALL_COLOUR = "#e76f51"
UNFUSED_COLOUR = "#ffffff"
CONTROL_COLOUR = "#d3d3d3"
PARAMETER_COLOUR = "#eeeeee"
NO_TIME_COLOUR = "#f2f2f2"
_PASS_THROUGH = frozenset(FREE_OPCODES - {"parameter"})

DOT_TIME_LIMIT_S = 10.0
"""How long ``dot`` may lay out the chosen drawing before a simpler one replaces it. Drawings within the budget take
under 3 s on two cores (``bench/render_speed.py``), so this is a guard against a bad estimate, not the plan."""
FALLBACK_TIME_LIMIT_S = 20.0
"""How long the simpler drawing may take: a quarter of the budget, straight edges, so normally well under 1 s."""
FALLBACK_BUDGET_SHARE = 4
SCREEN_SIZE_IN = "40,400"
"""graphviz's ``size``: at most 40 inches wide (a wide screen at 1:1 is about 20; the report fits the width) and
tall enough that a deep graph scrolls rather than shrinking to unreadable text."""
CLUSTERS_UP_TO_SHARE = 2
"""Fusions are drawn as clusters only while the drawing has at most 1/2 of ``max_nodes`` nodes: a picture of more
kernels than that is read as a whole, not op by op."""
_PROGRESS_EVERY_S = 2.0
_FALLBACK_STYLE = "straight edges, fusions collapsed, shapes on edges shown on hover only"


@dataclass(frozen=True)
class RenderOptions:
    """What to draw and how.

    Attributes:
        computation: the computation to draw; None for the entry.
        fusion: draw this fusion instruction's fused computation instead (its ops, not kernels).
        color: ``kind`` (fusion kinds) or ``time`` (share of the step, from ``kernel_times``).
        kernel_times: µs per step by instruction name, from ``xlainspect time --json``.
        max_nodes: above this many nodes the graph is cut to a neighbourhood; above half of it fusions collapse.
        around: cut to the neighbourhood of this instruction.
        radius: hops from ``around`` (or from the costliest kernel when the graph is cut for size).
        expand_fusions_up_to: a fusion with at most this many fused ops is drawn as a cluster of them.
        layout_budget: the most layout work (:attr:`.layout.LayoutCost.work`) the drawing may give ``dot``; clusters,
            edge labels and then nodes are dropped to stay within it.
        time_limit_s: how long ``dot`` may run before a simpler drawing replaces this one.
        fallback_time_limit_s: how long the simpler drawing may take before rendering fails.
    """

    computation: str | None = None
    fusion: str | None = None
    color: str = "kind"
    kernel_times: Mapping[str, float] = field(default_factory=dict)
    max_nodes: int = 300
    around: str | None = None
    radius: int = 2
    expand_fusions_up_to: int = 12
    layout_budget: int = LAYOUT_BUDGET
    time_limit_s: float = DOT_TIME_LIMIT_S
    fallback_time_limit_s: float = FALLBACK_TIME_LIMIT_S


@dataclass(frozen=True)
class Rendering:
    """A drawing in graphviz's DOT language, and what it shows of the computation.

    Attributes:
        dot: the DOT source.
        computation: the computation drawn.
        nodes: instruction names drawn as nodes (kernels, control ops, parameters, the root).
        total_nodes: how many nodes the whole computation would have drawn.
        left_out: sentences on what the picture does not show; also written on it.
        clusters: the fusions drawn as clusters of their ops; every other fusion in ``nodes`` is one node.
        edge_labels: whether edges carry their shapes as labels (else as tooltips).
        cost: the layout work estimated for ``dot``.
        simplified: this is the simpler drawing made after ``dot`` ran out of time on the chosen one.
    """

    dot: str
    computation: str
    nodes: tuple[str, ...]
    total_nodes: int
    left_out: tuple[str, ...]
    clusters: tuple[str, ...] = ()
    edge_labels: bool = True
    cost: LayoutCost | None = None
    simplified: bool = False


@dataclass(frozen=True)
class _Style:
    """How much detail a drawing carries beyond its nodes."""

    clusters: bool
    edge_labels: bool


_STYLES = (_Style(True, True), _Style(False, True), _Style(False, False))  # most detailed first


def kernel_graph(module: HloModule, options: RenderOptions = RenderOptions(), *, fallback: str = "") -> Rendering:
    """The DOT drawing of one computation's kernel graph, within the layout budget.

    Args:
        fallback: when not empty, draw the simpler drawing (a quarter of the budget, fusions collapsed, no edge
            labels, straight edges) and give this sentence, why, first among the notes.

    Raises:
        InputError: an unknown computation, fusion or ``around`` instruction, or a bad option.
    """
    _check(options)
    computation = _chosen_computation(module, options)
    in_fusion = computation.name in module.fusion_computations
    drawn = [i for i in computation.instructions if in_fusion or i.opcode not in _PASS_THROUGH or i.is_root]
    if in_fusion:
        drawn = [i for i in drawn if i.opcode != "constant" or i.is_root]
    edges = _edges(computation, {i.name for i in drawn})
    notes: list[str] = [fallback] if fallback else []
    hidden = len(computation.instructions) - len(drawn)
    if hidden:
        notes.append(f"{hidden} tuple, get-tuple-element, bitcast and constant instructions not drawn "
                     "(edges pass through them)")
    names = [i.name for i in drawn]
    total = len(names)
    budget = options.layout_budget // FALLBACK_BUDGET_SHARE if fallback else options.layout_budget
    centre, radius, cut_note = None, None, ""
    if options.around is not None:
        if options.around not in computation.by_name:
            raise InputError(f"--around {options.around}: no instruction of that name in {computation.name}")
        if options.around not in names:
            raise InputError(f"--around {options.around}: a {computation.by_name[options.around].opcode}, which is "
                             "not drawn; name a kernel, parameter or control op")
        centre, radius = options.around, options.radius
        names, reached = _neighbourhood(names, edges, centre, radius, options.max_nodes)
        cut_note = f"cut to {len(names)} of {total} nodes: within {reached} hops of {centre}"
    elif total > options.max_nodes:
        centre = _costliest(module, drawn, options.kernel_times)
        names, reached = _neighbourhood(names, edges, centre, None, options.max_nodes)
        cut_note = (f"cut to {len(names)} of {total} nodes (--max-nodes {options.max_nodes}): within {reached} "
                    f"hops of {centre}, the costliest kernel; --around NAME --radius K shows another part")
    styles = [_Style(False, False)] if fallback else [
        s for s in _STYLES if not (s.clusters and (in_fusion or len(names) * CLUSTERS_UP_TO_SHARE > options.max_nodes))]
    cost = _cost(module, computation, names, edges, styles[-1], options)
    fitted = not cost.fits(budget)
    if fitted:
        if centre is None:
            centre = _costliest(module, drawn, options.kernel_times)
        names, reached, cost = _fit(module, computation, names, edges, centre, radius, styles[-1], options, budget)
    style = styles[-1]
    for candidate in styles[:-1]:
        richer = _cost(module, computation, names, edges, candidate, options)
        if richer.fits(budget):
            style, cost = candidate, richer
            break
    if fitted:
        cut_note = (f"cut to {len(names)} of {total} nodes to keep the layout quick and the picture a screen's "
                    f"width (estimated layout work {cost.work:,} of {budget:,}, {cost.width_in:g} inches wide): "
                    f"within {reached} hops of {centre}" + (", the costliest kernel" if options.around is None else "")
                    + "; --around NAME --radius K shows another part")
    if cut_note:
        notes.append(cut_note)
    expandable = [n for n in names if _expandable(module, computation.by_name[n], options)]
    if expandable and not style.clusters and not in_fusion:
        notes.append("fusions collapsed to one node each (--fusion NAME draws one fusion's ops)")
    if not style.edge_labels:
        notes.append("shapes on edges (hover over an edge for its shape), to keep the layout quick")
    dot, clusters = _draw(module, computation, names, edges, style, options, notes, in_fusion, simple=bool(fallback))
    return Rendering(dot, computation.name, tuple(names), total, tuple(notes), clusters, style.edge_labels, cost,
                     bool(fallback))


def render_svg(module: HloModule, options: RenderOptions = RenderOptions(),
               report: Callable[[str], None] | None = None) -> tuple[str, Rendering]:
    """The kernel graph as a self-contained SVG document (no scripts, no links out), and what it shows.

    When ``dot`` does not finish within ``options.time_limit_s``, it is stopped and the simpler drawing of
    :func:`kernel_graph` (``fallback``) is laid out instead; its caption says so.

    Args:
        report: called, once ``dot`` has run for two seconds, with a line on what is being drawn, then every two
            seconds while it runs, and when it falls back; a drawing that is quick says nothing.

    Raises:
        InputError: as :func:`kernel_graph`.
        FrameworkUnavailable: graphviz's ``dot`` program is not installed.
        DotTimeout: neither drawing finished within its time limit.
    """
    rendering = kernel_graph(module, options)
    tell = _Progress(report or _quiet, _announcement(rendering, options.time_limit_s))
    try:
        return dot_to_svg(rendering.dot, options.time_limit_s, tell), rendering
    except DotTimeout:
        reason = (f"the chosen drawing, which dot did not lay out within {options.time_limit_s:g} s; this is a "
                  f"simpler one ({_FALLBACK_STYLE})")
    tell(f"dot did not finish within {options.time_limit_s:g} s; drawing a simpler layout ({_FALLBACK_STYLE})")
    simpler = kernel_graph(module, options, fallback=reason)
    tell = _Progress(report or _quiet, _announcement(simpler, options.fallback_time_limit_s))
    try:
        return dot_to_svg(simpler.dot, options.fallback_time_limit_s, tell), simpler
    except DotTimeout:
        raise DotTimeout(f"graphviz's dot did not finish within {options.time_limit_s:g} s, nor a simpler layout "
                         f"within {options.fallback_time_limit_s:g} s; draw less (--around NAME --radius 2, or a "
                         "smaller --max-nodes)") from None


def dot_to_svg(dot: str, time_limit_s: float | None = None, report: Callable[[str], None] | None = None) -> str:
    """Lays out DOT source with graphviz's ``dot`` program as SVG, stopping it after ``time_limit_s``.

    The ``dot`` program is run here with :mod:`subprocess` rather than through the ``graphviz`` package's
    ``pipe_string``, because that API takes no timeout (it waits for ``dot`` however long it runs, which was minutes
    on a 240-node training step) and gives no way to report progress meanwhile. The command is the one the package
    runs (``dot -Tsvg``, DOT on stdin); ``dot`` is killed when the limit passes.

    Args:
        time_limit_s: seconds ``dot`` may run; None waits as long as it takes.
        report: called every two seconds while ``dot`` runs.

    Raises:
        FrameworkUnavailable: ``dot`` is not installed.
        InputError: ``dot`` rejected the source (its last line of complaint says why).
        DotTimeout: ``dot`` ran past ``time_limit_s``.
    """
    tell = report or _quiet
    try:
        # stderr is captured: dot's warnings go into the error below, not onto the caller's stderr.
        process = subprocess.Popen(["dot", "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise FrameworkUnavailable("drawing needs graphviz's 'dot' program: sudo apt-get install graphviz "
                                   "(make install does it)") from None
    with process:  # closes the pipes and reaps dot however this ends
        out, err = _communicate(process, dot.encode("utf-8"), time_limit_s, tell)
    if process.returncode != 0:
        complaint = err.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        raise InputError(f"graphviz's dot failed: {complaint[-1]}")
    return out.decode("utf-8")


def _communicate(process: subprocess.Popen[bytes], data: bytes, time_limit_s: float | None,
                 tell: Callable[[str], None]) -> tuple[bytes, bytes]:
    """Feeds ``dot`` its input and reads its output, telling progress every two seconds; kills it at the limit."""
    start = time.monotonic()
    pending: bytes | None = data
    while True:
        elapsed = time.monotonic() - start
        wait = _PROGRESS_EVERY_S if time_limit_s is None else min(_PROGRESS_EVERY_S, max(time_limit_s - elapsed, 0))
        try:
            return process.communicate(pending, timeout=wait)
        except subprocess.TimeoutExpired:
            pending = None  # sent already: communicate() resumes where it stopped, and refuses input a second time
            elapsed = time.monotonic() - start
            if time_limit_s is not None and elapsed >= time_limit_s:
                process.kill()
                process.communicate()
                raise DotTimeout(f"graphviz's dot did not finish within {time_limit_s:g} s (stopped)") from None
            limit = f" of {time_limit_s:g} s" if time_limit_s is not None else ""
            tell(f"dot: laying out, {elapsed:.0f} s{limit}")


def _quiet(_: str) -> None:
    """The default progress callback: the library prints nothing."""


class _Progress:
    """Progress lines that start with what is being drawn, said only once there is progress to tell: a drawing
    that ``dot`` lays out at once prints nothing, one that takes a while says what it is before how long it took."""

    def __init__(self, tell: Callable[[str], None], announcement: str) -> None:
        self._tell = tell
        self._announcement: str | None = announcement

    def __call__(self, line: str) -> None:
        if self._announcement is not None:
            self._tell(self._announcement)
            self._announcement = None
        self._tell(line)


def _announcement(rendering: Rendering, limit_s: float) -> str:
    cost = rendering.cost
    work = f", layout work {cost.work:,}" if cost is not None else ""
    edges = f", {cost.edges:,} edges" if cost is not None else ""
    return (f"drawing {len(rendering.nodes):,} of {rendering.total_nodes:,} nodes of {rendering.computation}"
            f"{edges}{work}; dot has {limit_s:g} s")


def _check(options: RenderOptions) -> None:
    if options.color not in ("kind", "time"):
        raise InputError(f"--color must be kind or time, not {options.color!r}")
    if options.color == "time" and not options.kernel_times:
        raise InputError("--color time needs per-kernel times: give --timing FILE from 'xlainspect time --json'")
    if options.max_nodes < 1 or options.radius < 0:
        raise InputError("--max-nodes must be at least 1 and --radius at least 0")
    if options.layout_budget < 1 or options.time_limit_s <= 0 or options.fallback_time_limit_s <= 0:
        raise InputError("the layout budget and dot's time limits must be positive")


# -- the layout budget -------------------------------------------------------------------------------------------


def _expandable(module: HloModule, instruction: Instruction, options: RenderOptions) -> bool:
    body = _fused_body(module, instruction)
    return body is not None and 0 < len(body) <= options.expand_fusions_up_to


def _cost(module: HloModule, computation: Computation, names: list[str], edges: list[tuple[str, str, str]],
          style: _Style, options: RenderOptions) -> LayoutCost:
    """The layout work of drawing ``names`` in ``style``: clusters add their ops and the edges among them."""
    kept = set(names)
    nodes = list(names)
    widths = [_label_width(_node_style(module, computation.by_name[n], {}, 1.0, False)[1]) for n in names]
    pairs = [(a, b) for a, b, _ in edges if a in kept and b in kept]
    clusters = 0
    if style.clusters:
        for name in names:
            instruction = computation.by_name[name]
            if not _expandable(module, instruction, options):
                continue
            body = _fused_body(module, instruction) or []
            inside = {op.name for op in body}
            clusters += 1
            nodes += [f"{name}/{op.name}" for op in body]
            widths += [_label_width(op.opcode) for op in body]
            for op in body:
                inner = [o for o in dict.fromkeys(op.operands) if o in inside]
                pairs += [(f"{name}/{o}", f"{name}/{op.name}") for o in inner] or [(name, f"{name}/{op.name}")]
    return layout_cost(nodes, pairs, clusters, style.edge_labels, widths)


def _label_width(label: str) -> float:
    """A node's width in inches from its label: Helvetica 9 pt averages about 0.075 inches a character, and the
    shape adds its margins."""
    return max(len(line) for line in str(label).split("\\n")) * 0.075 + 0.35


def _fit(module: HloModule, computation: Computation, names: list[str], edges: list[tuple[str, str, str]],
         centre: str, radius: int | None, style: _Style, options: RenderOptions,
         budget: int) -> tuple[list[str], int, LayoutCost]:
    """The largest neighbourhood of ``centre`` (at most ``names``) whose drawing fits the budget, by bisection on
    its node count (the work grows with the count, though not strictly)."""
    low, high = 1, len(names) - 1
    best = _neighbourhood(names, edges, centre, radius, 1)
    best_cost = _cost(module, computation, best[0], edges, style, options)
    while low <= high:
        middle = (low + high) // 2
        candidate = _neighbourhood(names, edges, centre, radius, middle)
        cost = _cost(module, computation, candidate[0], edges, style, options)
        if cost.fits(budget):
            best, best_cost, low = candidate, cost, middle + 1
        else:
            high = middle - 1
    return best[0], best[1], best_cost


# -- choosing what to draw ---------------------------------------------------------------------------------------


def _chosen_computation(module: HloModule, options: RenderOptions) -> Computation:
    if options.fusion is not None:
        for instruction in module.instructions():
            if instruction.name == options.fusion and instruction.opcode == "fusion":
                if not instruction.called_computations:
                    raise InputError(f"--fusion {options.fusion}: the fusion names no fused computation (no calls=), "
                                     "so there are no fused ops to draw")
                return module.computation(instruction.called_computations[0].name)
        raise InputError(f"--fusion {options.fusion}: no fusion instruction of that name in {module.name}")
    if options.computation is None:
        return module.entry
    try:
        return module.computation(options.computation)
    except KeyError:
        raise InputError(f"--computation {options.computation}: no such computation in {module.name}; it has "
                         f"{', '.join(c.name for c in module.computations[:8])}"
                         f"{', ...' if len(module.computations) > 8 else ''}") from None


def _edges(computation: Computation, drawn: set[str]) -> list[tuple[str, str, str]]:
    """(producer, consumer, shape) between drawn instructions, routed through the plumbing that is not drawn."""
    by_name = computation.by_name
    memo: dict[tuple[str, int | None], tuple[str, ...]] = {}

    def producers(name: str, index: int | None = None) -> tuple[str, ...]:
        # Iterative on purpose: chains of bitcasts and tuples can be thousands long in big modules.
        key = (name, index)
        if key in memo:
            return memo[key]
        result: list[str] = []
        stack = [(name, index)]
        seen: set[tuple[str, int | None]] = set()
        while stack:
            current, wanted = stack.pop()
            if (current, wanted) in seen or current not in by_name:
                continue
            seen.add((current, wanted))
            instruction = by_name[current]
            if current in drawn:
                result.append(current)
            elif instruction.opcode == "get-tuple-element" and instruction.operands:
                stack.append((instruction.operands[0], _tuple_index(instruction)))
            elif instruction.opcode == "tuple" and wanted is not None and wanted < len(instruction.operands):
                stack.append((instruction.operands[wanted], None))
            elif instruction.opcode != "constant":
                stack.extend((operand, None) for operand in instruction.operands)
        memo[key] = tuple(dict.fromkeys(result))
        return memo[key]

    edges = []
    for instruction in computation.instructions:
        if instruction.name not in drawn:
            continue
        for operand in dict.fromkeys(instruction.operands):
            label = _short_shape(by_name[operand]) if operand in by_name else ""
            for source in producers(operand):
                if source != instruction.name:
                    edges.append((source, instruction.name, label))
    return edges


def _tuple_index(instruction: Instruction) -> int | None:
    """A get-tuple-element's ``index``; None (every element) when it is not a non-negative integer."""
    text = instruction.attributes.get("index", "0")
    return int(text) if text.isascii() and text.isdigit() else None


def _neighbourhood(names: list[str], edges: list[tuple[str, str, str]], centre: str, radius: int | None,
                   limit: int) -> tuple[list[str], int]:
    """Nodes within ``radius`` hops of ``centre`` (any direction), breadth first, at most ``limit`` of them."""
    neighbours: dict[str, set[str]] = {name: set() for name in names}
    for source, target, _ in edges:
        neighbours.setdefault(source, set()).add(target)
        neighbours.setdefault(target, set()).add(source)
    order, depth, queue = [centre], {centre: 0}, deque([centre])
    while queue and len(order) < limit:
        current = queue.popleft()
        if radius is not None and depth[current] >= radius:
            continue
        for other in sorted(neighbours.get(current, ())):
            if other not in depth and len(order) < limit:
                depth[other] = depth[current] + 1
                order.append(other)
                queue.append(other)
    position = {name: i for i, name in enumerate(names)}
    kept = sorted((n for n in order if n in position), key=position.__getitem__)
    return kept, max(depth[n] for n in order)


def _costliest(module: HloModule, drawn: list[Instruction], kernel_times: Mapping[str, float]) -> str:
    names = {i.name for i in drawn}
    timed = [(time, name) for name, time in kernel_times.items() if name in names]
    if timed:
        return max(timed)[1]
    costs = {i.name: kernel_cost(module, i) for i in drawn if i.opcode not in FREE_OPCODES}
    return max(costs, key=costs.__getitem__) if costs else drawn[0].name


# -- drawing -----------------------------------------------------------------------------------------------------


def _draw(module: HloModule, computation: Computation, names: list[str], edges: list[tuple[str, str, str]],
          style: _Style, options: RenderOptions, notes: list[str], in_fusion: bool,
          simple: bool) -> tuple[str, tuple[str, ...]]:
    """The DOT source of the drawing, and the fusions drawn as clusters."""
    graph = _new_graph(module, computation, notes, simple)
    kept = set(names)
    used: set[str] = set()
    clusters: list[str] = []
    times = dict(options.kernel_times) if options.color == "time" else {}
    step = sum(times.values()) or 1.0
    for name in names:
        instruction = computation.by_name[name]
        category, label, attrs = _node_style(module, instruction, times, step, in_fusion)
        used.add(category)
        if style.clusters and _expandable(module, instruction, options):
            _fusion_cluster(module, graph, instruction, _fused_body(module, instruction) or [], label, attrs)
            clusters.append(name)
        else:
            graph.node(name, label, **attrs)
    # Node names are the parser's (letters, digits, '_', '.', '-'), so the ':' that edge() reads as a port never occurs.
    for source, target, shape in edges:
        if source in kept and target in kept:
            if style.edge_labels:
                graph.edge(source, target, _text(shape))
            else:
                graph.edge(source, target, tooltip=_text(f"{source} -> {target}", shape))
    _legend(graph, used, options.color == "time")
    return graph.source.rstrip("\n"), tuple(clusters)


def _new_graph(module: HloModule, computation: Computation, notes: list[str], simple: bool) -> graphviz.Digraph:
    """An empty drawing with its caption (the module, the computation, what is not shown) and default styles.

    ``nslimit`` and ``nslimit1`` cap ``dot``'s network-simplex passes (ranking, x positions) at a few times the node
    count: drawings within the budget converge before that, and a bad estimate then costs a worse layout, not
    minutes. The simpler drawing also draws straight edges, which skips spline routing."""
    import graphviz

    parts = [f"{module.name}: {computation.name}", *(f"Not shown: {note}" for note in notes)]
    caption = graphviz.nohtml("".join(graphviz.escape(part) + "\\l" for part in parts))  # \l: left-justified lines
    graph_attr = {"newrank": "true", "rankdir": "TB", "fontname": "Helvetica", "fontsize": "11", "labelloc": "t",
                  "labeljust": "l", "label": caption, "nodesep": "0.25", "ranksep": "0.35", "nslimit": "4",
                  "nslimit1": "4", "size": SCREEN_SIZE_IN}
    if simple:
        graph_attr.update(splines="line", mclimit="0.3")
    return graphviz.Digraph(
        "kernels", graph_attr=graph_attr,
        node_attr={"fontname": "Helvetica", "fontsize": "9", "style": "filled", "margin": "0.08,0.03"},
        edge_attr={"fontname": "Helvetica", "fontsize": "7", "color": "#555555", "arrowsize": "0.6"})


def _node_style(module: HloModule, instruction: Instruction, times: Mapping[str, float], step: float,
                in_fusion: bool) -> tuple[str, str, dict[str, str]]:
    """(legend category, label, other DOT attributes) of one node."""
    opcode = instruction.opcode
    lines = [instruction.name]
    if opcode == "parameter":
        category, shape, colour = "parameter", "invhouse", PARAMETER_COLOUR
        lines.append(_short_shape(instruction))
    elif opcode == "fusion":
        kind = fusion_kind_label(instruction)
        category = instruction.fusion_kind if instruction.fusion_kind in KIND_COLOURS else "kCustom"
        shape, colour = "box", KIND_COLOURS[category]
        body = _fused_body(module, instruction) or []
        lines.append(f"{kind}, {len(body)} ops" + (f": {_top_ops(body)}" if body else ""))
        lines.append(_short_shape(instruction))
    elif opcode == "custom-call":
        category, shape, colour = "custom-call", "hexagon", CUSTOM_CALL_COLOUR
        lines.append(instruction.attributes.get("custom_call_target", "").strip('"'))
        lines.append(_short_shape(instruction))
    elif opcode in CONTROL_OPCODES:
        category, shape, colour = "control", "doubleoctagon", CONTROL_COLOUR
        called = ", ".join(f"{c.role}={c.name}" for c in instruction.called_computations)
        trips = _known_trip_count(instruction)
        lines.append(opcode + (f" x{trips}" if trips else "") + (f": {called}" if called else ""))
    else:
        category = "op" if in_fusion else "unfused"
        shape, colour = ("ellipse", UNFUSED_COLOUR)
        lines.append(f"{opcode} {_short_shape(instruction)}")
    if instruction.is_root:
        lines.append("ROOT")
    penwidth = "2" if instruction.is_root else "1"
    if times and opcode != "parameter":
        time = times.get(instruction.name)
        if time is None:
            colour = NO_TIME_COLOUR
        else:
            colour = _heat(time / step)
            lines.append(f"{time:.1f} us, {time / step:.0%} of kernel time")
    tooltip = _text(*lines, *kernel_sources(module, instruction))
    return category, _text(*lines), {"shape": shape, "fillcolor": colour, "penwidth": penwidth, "tooltip": tooltip}


def _known_trip_count(instruction: Instruction) -> str | None:
    """A while loop's ``known_trip_count`` from its backend config; None when absent or not a count, as the census
    reads it."""
    config = instruction.backend_config
    count = config.get("known_trip_count") if isinstance(config, dict) else None
    trips = str(count.get("n", "")) if isinstance(count, dict) else ""
    return trips if trips.isascii() and trips.isdigit() else None


def _fusion_cluster(module: HloModule, graph: graphviz.Digraph, instruction: Instruction, body: list[Instruction],
                    label: str, attrs: Mapping[str, str]) -> None:
    """A fusion as a cluster: its own node on top, then its fused ops and the edges between them."""
    fusion = instruction.name
    with graph.subgraph(name=f"cluster_{fusion}") as cluster:
        cluster.attr(style="rounded,dashed", color="#888888", label="")
        cluster.node(fusion, label, **attrs)
        inside = {i.name for i in body}
        for op in body:
            cluster.node(f"{fusion}/{op.name}", _text(op.opcode), shape="ellipse", fillcolor="#ffffff", fontsize="8",
                         height="0.25", tooltip=_text(f"{op.name}: {op.opcode} {_short_shape(op)}",
                                                      *kernel_sources(module, op)))
        for op in body:
            if not any(operand in inside for operand in op.operands):
                cluster.edge(fusion, f"{fusion}/{op.name}", style="dotted", arrowhead="none")
        for op in body:
            for operand in dict.fromkeys(op.operands):
                if operand in inside:
                    cluster.edge(f"{fusion}/{operand}", f"{fusion}/{op.name}")


def kernel_sources(module: HloModule, instruction: Instruction, most: int = 4) -> tuple[str, ...]:
    """Where a kernel came from, as tooltip lines: the user's source lines of its ops (its own metadata and its
    fused ops', nested fusions included); when none of them names a frame of the user's (TF names only its own
    ``ops.py``, which :attr:`~xlainspect.hlo.metadata.OpMetadata.user_source` skips), the framework ops' names
    (``dpsgd_step/MatMul``). Empty when the ops carry no metadata."""
    locations: dict[str, None] = {}
    op_names: dict[str, None] = {}
    for op in _with_fused_ops(module, instruction):
        if "metadata" not in op.attributes:  # no parse for instructions that carry none
            continue
        metadata = op.metadata
        if metadata is None:
            continue
        user = metadata.user_source
        if user is not None:
            locations[str(user) + (f" ({user.function})" if user.function else "")] = None
        elif metadata.op_name or metadata.op_type:
            op_names[metadata.op_name or metadata.op_type] = None
    found, prefix = (locations, "from ") if locations else (op_names, "op ")
    lines = [prefix + text for text in list(found)[:most]]
    return (*lines, f"and {len(found) - most} more") if len(found) > most else tuple(lines)


def _with_fused_ops(module: HloModule, instruction: Instruction) -> list[Instruction]:
    """The instruction and, for a fusion, the instructions it computes, nested fusions expanded."""
    result, pending = [instruction], [instruction]
    while pending:
        current = pending.pop()
        if current.opcode != "fusion":
            continue
        for called in current.called_computations:
            try:
                body = module.computation(called.name).instructions
            except KeyError:
                continue
            result += [op for op in body if op.opcode != "parameter"]
            pending += [op for op in body if op.opcode == "fusion"]
    return result


def _legend(graph: graphviz.Digraph, used: set[str], by_time: bool) -> None:
    entries = [(kind, "box", colour) for kind, colour in KIND_COLOURS.items() if kind in used]
    entries += [(name, shape, colour) for name, shape, colour in (
        ("custom-call", "hexagon", CUSTOM_CALL_COLOUR), ("unfused", "ellipse", UNFUSED_COLOUR),
        ("control", "doubleoctagon", CONTROL_COLOUR), ("parameter", "invhouse", PARAMETER_COLOUR)) if name in used]
    if by_time:
        entries = [(name, shape, NO_TIME_COLOUR) for name, shape, _ in entries]
        entries += [("most time", "box", _heat(1.0)), ("no time measured", "box", NO_TIME_COLOUR)]
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", fontsize="9", style="rounded", color="#aaaaaa")
        previous = None
        for name, shape, colour in entries:
            node = f"legend/{name}"
            legend.node(node, _text(name), shape=shape, fillcolor=colour, fontsize="8")
            if previous:
                legend.edge(previous, node, style="invis")
            previous = node


def _fused_body(module: HloModule, instruction: Instruction) -> list[Instruction] | None:
    if instruction.opcode != "fusion" or not instruction.called_computations:
        return None
    try:
        body = module.computation(instruction.called_computations[0].name)
    except KeyError:
        return None
    return [i for i in body.instructions if i.opcode != "parameter"]


def _top_ops(body: list[Instruction], most: int = 3) -> str:
    counts: dict[str, int] = {}
    for op in body:
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{opcode}" + (f" x{count}" if count > 1 else "") for opcode, count in ranked[:most])
    return text + (", ..." if len(ranked) > most else "")


def _short_shape(instruction: Instruction) -> str:
    """The shape without layouts; tuples shortened to their element count."""
    shape = instruction.shape
    if shape.is_tuple:
        return f"tuple of {len(shape.tuple_shapes)}"
    text = str(shape)
    return text.split("{", 1)[0]


def _heat(share: float) -> str:
    """White to red as a kernel's share of the time grows."""
    share = min(max(share, 0.0), 1.0) ** 0.5  # spread the small shares, which are most kernels
    green_blue = round(255 - share * (255 - 60))
    return f"#ff{green_blue:02x}{green_blue:02x}"


def _text(*lines: str) -> str:
    """A label of these lines, shown as written: backslashes and ``<...>`` lose their DOT meaning; empty lines drop."""
    import graphviz

    return graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines if line))
