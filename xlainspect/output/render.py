"""Kernel graphs as pictures: a computation's kernels, fusions as clusters of their fused ops, drawn by graphviz.

A module's text is the truth but not a view: a DP-SGD step is hundreds of instructions, a transformer step a
hundred thousand. The picture keeps what decides speed (the kernels and the data between them) and drops the
plumbing (tuples, get-tuple-element, bitcasts, constants), routing edges through it. When the graph is still too
big it collapses fusions to single nodes and cuts to a neighbourhood, and the caption says what was left out, so
nobody mistakes a cut for the whole.

The DOT is built with the ``graphviz`` package (a ``Digraph``, a cluster subgraph per expanded fusion), which quotes
names and attribute values; graphviz's ``dot`` program lays it out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xlainspect.analysis.census import CONTROL_OPCODES, FREE_OPCODES, kernel_cost
from xlainspect.analysis.stats import fusion_kind_label
from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.hlo import Computation, HloModule, Instruction

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


@dataclass(frozen=True)
class RenderOptions:
    """What to draw and how.

    Attributes:
        computation: the computation to draw; None for the entry.
        fusion: draw this fusion instruction's fused computation instead (its ops, not kernels).
        color: ``kind`` (fusion kinds) or ``time`` (share of the step, from ``kernel_times``).
        kernel_times: µs per step by instruction name, from ``xlainspect time --json``.
        max_nodes: above this many nodes fusions collapse, then the graph is cut to a neighbourhood.
        around: cut to the neighbourhood of this instruction.
        radius: hops from ``around`` (or from the costliest kernel when the graph is cut for size).
        expand_fusions_up_to: a fusion with at most this many fused ops is drawn as a cluster of them.
    """

    computation: str | None = None
    fusion: str | None = None
    color: str = "kind"
    kernel_times: Mapping[str, float] = field(default_factory=dict)
    max_nodes: int = 300
    around: str | None = None
    radius: int = 2
    expand_fusions_up_to: int = 12


@dataclass(frozen=True)
class Rendering:
    """A drawing in graphviz's DOT language, and what it shows of the computation.

    Attributes:
        dot: the DOT source.
        computation: the computation drawn.
        nodes: instruction names drawn as nodes (kernels, control ops, parameters, the root).
        total_nodes: how many nodes the whole computation would have drawn.
        left_out: sentences on what the picture does not show; also written on it.
    """

    dot: str
    computation: str
    nodes: tuple[str, ...]
    total_nodes: int
    left_out: tuple[str, ...]


def kernel_graph(module: HloModule, options: RenderOptions = RenderOptions()) -> Rendering:
    """The DOT drawing of one computation's kernel graph.

    Raises:
        InputError: an unknown computation, fusion or ``around`` instruction, or a bad option.
    """
    if options.color not in ("kind", "time"):
        raise InputError(f"--color must be kind or time, not {options.color!r}")
    if options.color == "time" and not options.kernel_times:
        raise InputError("--color time needs per-kernel times: give --timing FILE from 'xlainspect time --json'")
    if options.max_nodes < 1 or options.radius < 0:
        raise InputError("--max-nodes must be at least 1 and --radius at least 0")
    computation = _chosen_computation(module, options)
    in_fusion = computation.name in module.fusion_computations
    drawn = [i for i in computation.instructions if in_fusion or i.opcode not in _PASS_THROUGH or i.is_root]
    if in_fusion:
        drawn = [i for i in drawn if i.opcode != "constant" or i.is_root]
    edges = _edges(computation, {i.name for i in drawn})
    notes: list[str] = []
    hidden = len(computation.instructions) - len(drawn)
    if hidden:
        notes.append(f"{hidden} tuple, get-tuple-element, bitcast and constant instructions not drawn "
                     "(edges pass through them)")
    names = [i.name for i in drawn]
    total = len(names)
    if options.around is not None:
        if options.around not in computation.by_name:
            raise InputError(f"--around {options.around}: no instruction of that name in {computation.name}")
        if options.around not in names:
            raise InputError(f"--around {options.around}: a {computation.by_name[options.around].opcode}, which is "
                             "not drawn; name a kernel, parameter or control op")
        names, reached = _neighbourhood(names, edges, options.around, options.radius, options.max_nodes)
        notes.append(f"cut to {len(names)} of {total} nodes: within {reached} hops of {options.around}")
    elif total > options.max_nodes:
        centre = _costliest(module, drawn, options.kernel_times)
        names, reached = _neighbourhood(names, edges, centre, None, options.max_nodes)
        notes.append(f"cut to {len(names)} of {total} nodes (--max-nodes {options.max_nodes}): within {reached} "
                     f"hops of {centre}, the costliest kernel; --around NAME --radius K shows another part")
    kept = set(names)
    collapse = in_fusion or len(names) > options.max_nodes // 2
    fusions = [computation.by_name[n] for n in names if computation.by_name[n].opcode == "fusion"]
    if collapse and fusions and not in_fusion:
        notes.append("fusions collapsed to one node each (--fusion NAME draws one fusion's ops)")
    graph = _new_graph(module, computation, notes)
    used: set[str] = set()
    times = dict(options.kernel_times) if options.color == "time" else {}
    step = sum(times.values()) or 1.0
    for name in names:
        instruction = computation.by_name[name]
        category, label, attrs = _node_style(module, instruction, times, step, in_fusion)
        used.add(category)
        body = _fused_body(module, instruction)
        if not collapse and body is not None and 0 < len(body) <= options.expand_fusions_up_to:
            _fusion_cluster(graph, instruction, body, label, attrs)
        else:
            graph.node(name, label, **attrs)
    # Node names are the parser's (letters, digits, '_', '.', '-'), so the ':' that edge() reads as a port never occurs.
    for source, target, label in edges:
        if source in kept and target in kept:
            graph.edge(source, target, _text(label))
    _legend(graph, used, options.color == "time")
    return Rendering(graph.source.rstrip("\n"), computation.name, tuple(names), total, tuple(notes))


def render_svg(module: HloModule, options: RenderOptions = RenderOptions()) -> tuple[str, Rendering]:
    """The kernel graph as a self-contained SVG document (no scripts, no links out), and what it shows.

    Raises:
        InputError: as :func:`kernel_graph`.
        FrameworkUnavailable: graphviz's ``dot`` program is not installed.
    """
    rendering = kernel_graph(module, options)
    return dot_to_svg(rendering.dot), rendering


def dot_to_svg(dot: str) -> str:
    """Lays out DOT source with graphviz's ``dot`` program, through the ``graphviz`` package, as SVG.

    Raises:
        FrameworkUnavailable: ``dot`` is not installed.
        InputError: ``dot`` rejected the source (its last line of complaint says why).
    """
    import graphviz

    try:
        # quiet: dot's warnings go into the error below, not onto the caller's stderr (the library never prints).
        return graphviz.pipe_string("dot", "svg", dot, encoding="utf-8", quiet=True)
    except graphviz.ExecutableNotFound:
        raise FrameworkUnavailable("drawing needs graphviz's 'dot' program: sudo apt-get install graphviz "
                                   "(make install does it)") from None
    except graphviz.CalledProcessError as e:
        complaint = (e.stderr or "").strip().splitlines() or ["no message"]
        raise InputError(f"graphviz's dot failed: {complaint[-1]}") from None


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


def _new_graph(module: HloModule, computation: Computation, notes: list[str]) -> graphviz.Digraph:
    """An empty drawing with its caption (the module, the computation, what is not shown) and default styles."""
    import graphviz

    parts = [f"{module.name}: {computation.name}", *(f"Not shown: {note}" for note in notes)]
    caption = graphviz.nohtml("".join(graphviz.escape(part) + "\\l" for part in parts))  # \l: left-justified lines
    return graphviz.Digraph(
        "kernels",
        graph_attr={"newrank": "true", "rankdir": "TB", "fontname": "Helvetica", "fontsize": "11", "labelloc": "t",
                    "labeljust": "l", "label": caption, "nodesep": "0.25", "ranksep": "0.35"},
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
    return category, _text(*lines), {"shape": shape, "fillcolor": colour, "penwidth": penwidth}


def _known_trip_count(instruction: Instruction) -> str | None:
    """A while loop's ``known_trip_count`` from its backend config; None when absent or not a count, as the census
    reads it."""
    config = instruction.backend_config
    count = config.get("known_trip_count") if isinstance(config, dict) else None
    trips = str(count.get("n", "")) if isinstance(count, dict) else ""
    return trips if trips.isascii() and trips.isdigit() else None


def _fusion_cluster(graph: graphviz.Digraph, instruction: Instruction, body: list[Instruction], label: str,
                    attrs: Mapping[str, str]) -> None:
    """A fusion as a cluster: its own node on top, then its fused ops and the edges between them."""
    fusion = instruction.name
    with graph.subgraph(name=f"cluster_{fusion}") as cluster:
        cluster.attr(style="rounded,dashed", color="#888888", label="")
        cluster.node(fusion, label, **attrs)
        inside = {i.name for i in body}
        for op in body:
            cluster.node(f"{fusion}/{op.name}", _text(op.opcode), shape="ellipse", fillcolor="#ffffff", fontsize="8",
                         height="0.25")
        for op in body:
            if not any(operand in inside for operand in op.operands):
                cluster.edge(fusion, f"{fusion}/{op.name}", style="dotted", arrowhead="none")
        for op in body:
            for operand in dict.fromkeys(op.operands):
                if operand in inside:
                    cluster.edge(f"{fusion}/{operand}", f"{fusion}/{op.name}")


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
    green_blue = int(round(255 - share * (255 - 60)))
    return f"#ff{green_blue:02x}{green_blue:02x}"


def _text(*lines: str) -> str:
    """A label of these lines, shown as written: backslashes and ``<...>`` lose their DOT meaning; empty lines drop."""
    import graphviz

    return graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines if line))
