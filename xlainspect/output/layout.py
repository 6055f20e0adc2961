"""What graphviz's ``dot`` can lay out quickly: an estimate of its work on a drawing, made before running it.

Node counts do not predict ``dot``'s time. A training step's graph is deep (forward, then backward, then the
update) and its weights and saved activations feed kernels far below them, so many edges span tens of ranks. ``dot``
turns every rank an edge crosses into a virtual node; its x-positioning (network simplex) and spline routing then
work on those, and edge labels double every span (``dot`` puts a label on a rank of its own). On the entry of a
3-layer transformer step, 241 nodes and 489 edges became about 25,000 laid-out nodes, and ``dot`` ran for minutes
(``bench/render_speed.py --calibrate`` measures it). So the estimate ranks the graph the way ``dot`` does, roughly
(longest path, then every node moved towards the side with more edges, which is what minimizing total edge length
does), and counts nodes plus virtual nodes: :attr:`LayoutCost.work`, which the renderer keeps within a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LAYOUT_BUDGET = 12_000
"""Most :attr:`LayoutCost.work` a default drawing may take. Measured with ``python bench/render_speed.py
--calibrate`` on the entry of a 3-layer transformer step (two cores, graphviz 2.43): ``dot`` took 0.1-0.4 s up to a
work of 3,000, 1.5 s at 11,900 (241 nodes, no edge labels) and 1.7-2.6 s at 11,800 (160 nodes with edge labels);
past that it grows fast with edge labels: 16 s at 28,000 and minutes at 48,000."""

CLUSTER_WORK = 10
"""Work charged per cluster besides its ops: ``dot`` lays each cluster out on its own and keeps it a contiguous
box. Measured drawings with clusters took less time than others of the same work, so this errs on the safe side."""

LABEL_WEIGHT = 2
"""Edge labels double every span (counted in the ranks) and ``dot`` then routes each edge around its label's box,
which made labelled drawings slower than unlabelled ones of twice the virtual nodes; so each virtual node of a
labelled drawing counts twice."""


MAX_WIDTH_IN = 60.0
"""Widest drawing chosen, in inches at 1:1 (graphviz draws 72 points to the inch). The SVG is then scaled to at most
40 inches (``render.SCREEN_SIZE_IN``), so text shrinks to no less than two thirds of its size; wider, a fan-out of a
few hundred nodes drew 923 inches wide and 13 high, a line no screen shows."""
VIRTUAL_WIDTH_IN = 0.3
"""Room an edge crossing a rank takes beside the nodes on it (``nodesep`` plus the line)."""
NODESEP_IN = 0.25


@dataclass(frozen=True)
class LayoutCost:
    """What ``dot`` would have to lay out, estimated before running it.

    Attributes:
        nodes: nodes drawn, ops inside clusters included.
        edges: edges drawn.
        clusters: subgraph clusters (expanded fusions).
        ranks: rows of the layout.
        virtual_nodes: ranks crossed by edges between their ends (``dot`` lays out a point on each).
        edge_labels: whether edges carry labels.
        widest_rank: the most nodes and crossing edges on one rank.
        width_in: the estimated width of the widest rank in inches, from the nodes' widths and the edges crossing it.
    """

    nodes: int
    edges: int
    clusters: int
    ranks: int
    virtual_nodes: int
    widest_rank: int
    edge_labels: bool
    width_in: float

    def fits(self, budget: int, max_width_in: float | None = None) -> bool:
        """Whether ``dot`` lays this out quickly (work within ``budget``) and a screen shows it (at most
        ``max_width_in``, :data:`MAX_WIDTH_IN` when None)."""
        return self.work <= budget and self.width_in <= (MAX_WIDTH_IN if max_width_in is None else max_width_in)

    @property
    def work(self) -> int:
        """The size of what ``dot`` positions and routes: nodes plus virtual nodes, clusters and labels charged
        extra."""
        weight = LABEL_WEIGHT if self.edge_labels else 1
        return self.nodes + weight * self.virtual_nodes + CLUSTER_WORK * self.clusters


def layout_cost(nodes: Sequence[str], edges: Iterable[tuple[str, str]], clusters: int = 0,
                edge_labels: bool = False, widths: Sequence[float] | None = None) -> LayoutCost:
    """The estimated layout work of a directed graph.

    Args:
        nodes: every node, ops inside clusters included.
        edges: (tail, head) pairs, repeated for parallel edges; ends that are not in ``nodes`` are ignored.
        clusters: how many clusters the drawing has.
        edge_labels: whether edges carry labels, which makes ``dot`` double every edge's length.
        widths: each node's width in inches, in the order of ``nodes``; one inch each when not given.
    """
    index = {name: i for i, name in enumerate(nodes)}
    pairs = [(index[a], index[b]) for a, b in edges if a in index and b in index and a != b]
    ranks = _ranks(len(nodes), pairs, 2 if edge_labels else 1)
    occupancy: dict[int, int] = {}
    width: dict[int, float] = {}
    for node, rank in enumerate(ranks):
        occupancy[rank] = occupancy.get(rank, 0) + 1
        width[rank] = width.get(rank, -NODESEP_IN) + (widths[node] if widths is not None else 1.0) + NODESEP_IN
    virtual = 0
    for a, b in pairs:
        low, high = sorted((ranks[a], ranks[b]))
        virtual += max(high - low - 1, 0)
        for rank in range(low + 1, high):
            occupancy[rank] = occupancy.get(rank, 0) + 1
            width[rank] = width.get(rank, 0.0) + VIRTUAL_WIDTH_IN
    return LayoutCost(len(nodes), len(pairs), clusters, (max(ranks) + 1) if ranks else 0, virtual,
                      max(occupancy.values(), default=0), edge_labels, round(max(width.values(), default=0.0), 1))


def _ranks(count: int, pairs: list[tuple[int, int]], minlen: int) -> list[int]:
    """A layering close to ``dot``'s: longest path from the sources, then sweeps that move a node with more
    consumers than producers down to its first consumer, and one with more producers up to its last producer (each
    move shortens the total edge length, which ``dot``'s ranking minimizes). Edges closing a cycle are ignored."""
    successors: list[list[int]] = [[] for _ in range(count)]
    predecessors: list[list[int]] = [[] for _ in range(count)]
    for a, b in pairs:
        successors[a].append(b)
        predecessors[b].append(a)
    waiting = [len(p) for p in predecessors]
    order = [i for i in range(count) if not waiting[i]]
    for node in order:  # Kahn's algorithm; the list grows while it is walked
        for successor in successors[node]:
            waiting[successor] -= 1
            if not waiting[successor]:
                order.append(successor)
    position = {node: i for i, node in enumerate(order)}
    order += [i for i in range(count) if i not in position]  # on a cycle: placed after the rest
    position = {node: i for i, node in enumerate(order)}
    forward = [[s for s in successors[n] if position[s] > position[n]] for n in range(count)]
    backward = [[p for p in predecessors[n] if position[p] < position[n]] for n in range(count)]
    rank = [0] * count
    for node in order:
        rank[node] = max((rank[p] + minlen for p in backward[node]), default=0)
    for _ in range(3):
        for node in reversed(order):
            if forward[node] and len(forward[node]) > len(backward[node]):
                rank[node] = min(rank[s] for s in forward[node]) - minlen
        for node in order:
            if backward[node] and len(backward[node]) > len(forward[node]):
                rank[node] = max(rank[p] for p in backward[node]) + minlen
    lowest = min(rank, default=0)
    return [r - lowest for r in rank]
