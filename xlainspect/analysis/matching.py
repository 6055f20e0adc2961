"""Pairing the kernels of two censuses: exact by what they compute, one-to-many through loops, then by similarity.

The rounds, each in time near-linear in the number of kernels:

1. **Same math.** Kernels with equal math fingerprints (:mod:`xlainspect.analysis.fingerprint`) pair first. Kernels of equal
   launch counts pair one-to-one; then a kernel that runs N times (a loop body's kernel with a known trip count)
   stands for up to N launches of equal kernels on the other side, so a ``lax.scan`` over 24 layers pairs with the
   same 24 layers unrolled. Each kernel has a *capacity* of launches; a pairing takes the smaller of the two
   remaining capacities from both.
2. **Similar.** Kernels with capacity left pair by similarity (weighted overlap of the fused-op multisets, plus a
   bonus for the same result size), but only within one class (:attr:`Kernel.kernel_class`): a fusion never pairs
   with a custom-call, a cuBLAS GEMM never with a cuDNN convolution. Candidates come from buckets (class and root op
   and result shape, class and root op, class), each at most :data:`CANDIDATES` kernels nearest in relative
   position, so no round scores all pairs.
   A kernel whose result is k times the size of a similar kernel (k an integer of at least 2, the same fused ops)
   is *stacked*: each of its launches can stand for k launches of the smaller one. That is how a ``lax.scan`` over
   stacked parameters updates all layers' weights in one kernel where the unrolled twin runs one kernel per layer.
3. **Position.** Among equally good candidates the matcher prefers the one whose neighbours (the kernels it reads,
   and the kernels that read it) are already paired with the candidate's neighbours, then the one at the nearest
   relative position, as GumTree-style matchers do: 24 identical layers pair in layer order.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from xlainspect.analysis.census import Census, Kernel

PARTIAL_THRESHOLD = 0.5
CANDIDATES = 16  # per bucket and kernel, in the similarity round
NEIGHBOUR_LIMIT = 64  # groups of equal kernels up to this size are paired by neighbours; larger ones by position
NEIGHBOUR_PASSES = 4


# Ops by which a loop body reads and writes its iteration's slice of stacked buffers.
LOOP_PLUMBING = frozenset({"dynamic-slice", "dynamic-update-slice"})
STACKED_WORK_TOLERANCE = 0.1  # how far the total work of a group may differ between the sides for stacking
STACKED_SCORE = 0.99  # the same fused ops on shapes k times apart: similar, never the same math


@dataclass(frozen=True)
class Pairing:
    """One pairing decided by the matcher, by kernel index: A's kernel ``i`` and B's ``j``, and how many launches of
    each it accounts for (fractions when one kernel is stacked: one launch doing the work of several)."""

    i: int
    j: int
    score: float
    launches_a: int | Fraction
    launches_b: int | Fraction


class _Side:
    """One census's kernels with what the matcher needs: capacity left, neighbours, relative positions."""

    def __init__(self, census: Census) -> None:
        self.kernels = census.kernels
        # Launches left to pair: ints, and Fractions only for kernels that stacked pairings have split.
        self.remaining: list[int | Fraction] = [kernel.trips for kernel in self.kernels]
        index = {kernel.name: i for i, kernel in enumerate(self.kernels)}
        self.producers = [tuple(index[p] for p in kernel.producers if p in index) for kernel in self.kernels]
        consumers: list[list[int]] = [[] for _ in self.kernels]
        for i, producers in enumerate(self.producers):
            for p in producers:
                consumers[p].append(i)
        self.consumers = consumers
        span = max(len(self.kernels) - 1, 1)
        self.relative = [i / span for i in range(len(self.kernels))]
        self.partners: list[set[int]] = [set() for _ in self.kernels]
        self.ops = [dict(kernel.fused_ops) for kernel in self.kernels]
        # Unrolled layers repeat the same few fused-op multisets: their overlaps are computed once per pair.
        numbering: dict[tuple[tuple[str, int], ...], int] = {}
        self.signatures = [numbering.setdefault(kernel.fused_ops, len(numbering)) for kernel in self.kernels]

    def open(self, i: int) -> bool:
        """Whether kernel i has launches left to pair; a kernel in a loop of zero trips is open until paired once."""
        return self.remaining[i] > 0 or (not self.partners[i] and self.kernels[i].trips == 0)


class Matcher:
    """Pairs the kernels of censuses A and B; :meth:`run` returns the pairings."""

    def __init__(self, a: Census, b: Census) -> None:
        self.a = _Side(a)
        self.b = _Side(b)
        self.pairings: list[Pairing] = []
        self._overlaps: dict[tuple[int, int, bool], float] = {}

    def run(self) -> list[Pairing]:
        self._same_math()
        self._stacked()
        self._similar()
        return self.pairings

    # -- bookkeeping ----------------------------------------------------------------------------------------------

    def _pair(self, i: int, j: int, score: float, stack: int = 1) -> None:
        """Pairs A's kernel i with B's j for as many launches as both have left.

        Args:
            stack: k when B's kernel is k times the size of A's (one B launch stands for k A launches); -k when A's
                is k times B's; 1 for kernels of one size.
        """
        if stack == 1:
            launches_a = launches_b = min(self.a.remaining[i], self.b.remaining[j])
        else:
            a_per_b = Fraction(stack) if stack > 0 else Fraction(1, -stack)  # A launches one B launch stands for
            launches_a = min(self.a.remaining[i], self.b.remaining[j] * a_per_b)
            launches_b = launches_a / a_per_b
        self.a.remaining[i] -= launches_a
        self.b.remaining[j] -= launches_b
        self.a.partners[i].add(j)
        self.b.partners[j].add(i)
        self.pairings.append(Pairing(i, j, score, launches_a, launches_b))

    def _neighbour_partners(self, i: int) -> set[int]:
        """The B kernels that A's kernel i's neighbours (what it reads and what reads it) are paired with."""
        a = self.a
        result: set[int] = set()
        for k in a.producers[i]:
            result |= a.partners[k]
        for k in a.consumers[i]:
            result |= a.partners[k]
        return result

    def _agreement(self, i: int, j: int, partners: set[int] | None = None) -> int:
        """How many of B's kernel j's neighbours are paired with neighbours of A's kernel i."""
        if partners is None:
            partners = self._neighbour_partners(i)
        if not partners:
            return 0
        b = self.b
        return sum(1 for k in b.producers[j] if k in partners) + sum(1 for k in b.consumers[j] if k in partners)

    def _preference(self, i: int, j: int, partners: set[int] | None = None) -> tuple[int, float]:
        """Sort key among equally scored candidates: more agreeing neighbours first, then nearer in position."""
        return (-self._agreement(i, j, partners), abs(self.a.relative[i] - self.b.relative[j]))

    # -- round 1: same math ----------------------------------------------------------------------------------------

    def _same_math(self) -> None:
        groups_a: dict[str, list[int]] = defaultdict(list)
        groups_b: dict[str, list[int]] = defaultdict(list)
        for i, kernel in enumerate(self.a.kernels):
            groups_a[kernel.fingerprint].append(i)
        for j, kernel in enumerate(self.b.kernels):
            groups_b[kernel.fingerprint].append(j)
        shared = [(members, groups_b[key]) for key, members in groups_a.items() if key in groups_b]
        # Unique pairs first: they anchor the neighbour preference of the ambiguous groups, taken in A's order.
        shared.sort(key=lambda group: (len(group[0]) > 1 or len(group[1]) > 1, group[0][0]))
        for members_a, members_b in shared:
            self._pair_equal_trips(members_a, members_b)
            self._pair_by_capacity(members_a, members_b, 1.0)

    def _pair_equal_trips(self, members_a: list[int], members_b: list[int]) -> None:
        """Pairs equal kernels that run equally often: by agreeing neighbours first, then by nearest position."""
        a, b = self.a, self.b
        by_trips_b: dict[int, list[int]] = defaultdict(list)
        for j in members_b:
            by_trips_b[b.kernels[j].trips].append(j)
        by_trips_a: dict[int, list[int]] = defaultdict(list)
        for i in members_a:
            by_trips_a[a.kernels[i].trips].append(i)
        for trips, list_a in by_trips_a.items():
            list_b = by_trips_b.get(trips)
            if not list_b:
                continue
            if len(list_a) == 1 and len(list_b) == 1:
                self._pair(list_a[0], list_b[0], 1.0)
                continue
            if len(list_a) <= NEIGHBOUR_LIMIT and len(list_b) <= NEIGHBOUR_LIMIT:
                self._pair_by_neighbours(list_a, list_b)
            self._pair_by_position(list_a, list_b)

    def _pair_by_neighbours(self, list_a: list[int], list_b: list[int]) -> None:
        """Pairs kernels whose neighbours are paired with each other's; in A's (topological) order, so a chain of
        equal kernels pairs link by link in one pass. Repeats while passes find new pairs (a few at most)."""
        a, b = self.a, self.b
        for _ in range(NEIGHBOUR_PASSES):
            progress = False
            for i in list_a:
                if not a.open(i):
                    continue
                partners = self._neighbour_partners(i)
                if not partners:
                    continue
                best, best_key = None, None
                for j in list_b:
                    if not b.open(j):
                        continue
                    agreement = self._agreement(i, j, partners)
                    if agreement == 0:
                        continue
                    key = (-agreement, abs(a.relative[i] - b.relative[j]), j)
                    if best_key is None or key < best_key:
                        best, best_key = j, key
                if best is not None:
                    self._pair(i, best, 1.0)
                    progress = True
            if not progress:
                return

    def _pair_by_position(self, list_a: list[int], list_b: list[int]) -> None:
        """Pairs what is left of a group by nearest relative position, closest pairs first."""
        a, b = self.a, self.b
        open_b = [j for j in list_b if b.open(j)]
        if not open_b:
            return
        positions = [b.relative[j] for j in open_b]  # ascending: members are in census order
        combos: list[tuple[float, int, int]] = []
        for i in list_a:
            if not a.open(i):
                continue
            at = bisect.bisect_left(positions, a.relative[i])
            low = max(0, at - CANDIDATES // 2)
            for j in open_b[low:low + CANDIDATES]:
                combos.append((abs(a.relative[i] - b.relative[j]), i, j))
        combos.sort()
        for _, i, j in combos:
            if a.open(i) and b.open(j):
                self._pair(i, j, 1.0)
        # Kernels beyond every candidate window (very unequal groups) still pair, in order.
        rest_b = iter(j for j in open_b if b.open(j))
        for i in list_a:
            if a.open(i):
                j = next(rest_b, None)
                if j is None:
                    return
                self._pair(i, j, 1.0)

    def _pair_by_capacity(self, members_a: list[int], members_b: list[int], score: float) -> None:
        """Kernels left in a group pair by launches: a loop body's kernel takes several launches of the other side.

        The side with fewer kernels left takes the other side's kernels in position order, round-robin, so two
        equal kernels of one loop body take alternate kernels of the unrolled layers, as each layer runs both.
        """
        a, b = self.a, self.b
        rest_a = [i for i in members_a if a.open(i)]
        rest_b = [j for j in members_b if b.open(j)]
        if not rest_a or not rest_b:
            return
        few_is_a = len(rest_a) <= len(rest_b)
        few, many = (rest_a, rest_b) if few_is_a else (rest_b, rest_a)
        few_side, many_side = (a, b) if few_is_a else (b, a)
        turn = 0
        for m in many:
            for _ in range(len(few)):
                f = few[turn % len(few)]
                turn += 1
                if few_side.open(f):
                    break
            else:
                return  # every kernel of the few side is used up
            while many_side.open(m) and few_side.open(f):
                self._pair(*((f, m) if few_is_a else (m, f)), score)
                if many_side.open(m):  # f is used up; the next of the few side takes the rest of m
                    f = next((x for x in few if few_side.open(x)), None)
                    if f is None:
                        return

    # -- round 2: stacked kernels -----------------------------------------------------------------------------------

    def _stacked(self) -> None:
        """Pairs a kernel that does the work of k equal kernels of the other side in one launch with those k.

        Only within a group of kernels with the same class and fused ops, when the group's total work (launches x
        result size) is the same on both sides, and one side has at least twice as many kernels: an unsharded model
        against its sharded twin has k times the work per kernel and as many kernels, so it never stacks.
        """
        a, b = self.a, self.b
        groups: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[list[int], list[int]]] = defaultdict(
            lambda: ([], []))
        for i, kernel in enumerate(a.kernels):
            if a.open(i):
                groups[(kernel.kernel_class, kernel.fused_ops)][0].append(i)
        for j, kernel in enumerate(b.kernels):
            if b.open(j):
                groups[(kernel.kernel_class, kernel.fused_ops)][1].append(j)
        for list_a, list_b in groups.values():
            if not list_a or not list_b:
                continue
            work_a = sum(a.remaining[i] * a.kernels[i].bytes_written for i in list_a)
            work_b = sum(b.remaining[j] * b.kernels[j].bytes_written for j in list_b)
            if not work_a or not work_b or abs(work_a - work_b) > STACKED_WORK_TOLERANCE * max(work_a, work_b):
                continue
            if len(list_a) >= 2 * len(list_b):
                self._stack_group(list_b, list_a, big_is_a=False)
            elif len(list_b) >= 2 * len(list_a):
                self._stack_group(list_a, list_b, big_is_a=True)

    def _stack_group(self, bigs: list[int], smalls: list[int], big_is_a: bool) -> None:
        """Each big kernel takes, in position order, the small kernels of the size it is a whole multiple k of,
        choosing the size whose count is a multiple of k (the layers it stacks), then the larger size."""
        big_side, small_side = (self.a, self.b) if big_is_a else (self.b, self.a)
        by_size: dict[int, list[int]] = defaultdict(list)
        for m in smalls:
            by_size[small_side.kernels[m].bytes_written].append(m)
        for big in sorted(bigs, key=lambda x: -big_side.kernels[x].bytes_written):
            size = big_side.kernels[big].bytes_written
            choices = []
            for small_size, members in by_size.items():
                left = [m for m in members if small_side.open(m)]
                if not small_size or size % small_size or size // small_size < 2 or len(left) < size // small_size:
                    continue
                k = size // small_size
                choices.append((len(left) % k != 0, -small_size, k, left))
            if not choices:
                continue
            _, _, k, left = min(choices)
            for m in left:
                if not big_side.open(big):
                    break
                if big_is_a:
                    self._pair(big, m, STACKED_SCORE, stack=-k)
                else:
                    self._pair(m, big, STACKED_SCORE, stack=k)

    # -- round 3: similar ------------------------------------------------------------------------------------------

    def _similar(self) -> None:
        a, b = self.a, self.b
        open_a = [i for i in range(len(a.kernels)) if a.open(i)]
        open_b = [j for j in range(len(b.kernels)) if b.open(j)]
        if not open_a or not open_b:
            return
        index = _CandidateIndex(b, open_b)
        scored: list[tuple[float, int, float, int, int]] = []
        for i in open_a:
            kernel = a.kernels[i]
            partners = self._neighbour_partners(i)
            for j in index.candidates(kernel, a.relative[i]):
                score = self._similarity(i, j)
                if score < PARTIAL_THRESHOLD:
                    continue
                agree, distance = self._preference(i, j, partners)
                scored.append((-score, agree, distance, i, j))
        scored.sort()
        for negative, _, _, i, j in scored:
            if a.open(i) and b.open(j):
                self._pair(i, j, -negative)

    def _similarity(self, i: int, j: int) -> float:
        """Weighted Jaccard overlap of the fused-op multisets, plus 0.1 for equal result sizes (at most 0.99).

        Between kernels that run a different number of times (a loop body's against an unrolled twin's), the ops
        by which a loop body reads and writes its iteration's slice of stacked buffers (:data:`LOOP_PLUMBING`) are
        left out: they are how the loop is built, not what each layer computes.
        """
        across_loops = self.a.kernels[i].trips != self.b.kernels[j].trips
        key = (self.a.signatures[i], self.b.signatures[j], across_loops)
        overlap = self._overlaps.get(key)
        if overlap is None:
            overlap = self._overlaps[key] = self._overlap(i, j, across_loops)
        if self.a.kernels[i].bytes_written == self.b.kernels[j].bytes_written:
            overlap += 0.1
        return min(overlap, 0.99)

    def _overlap(self, i: int, j: int, across_loops: bool) -> float:
        ops_a, ops_b = self.a.ops[i], self.b.ops[j]
        if across_loops:
            ops_a = {op: n for op, n in ops_a.items() if op not in LOOP_PLUMBING}
            ops_b = {op: n for op, n in ops_b.items() if op not in LOOP_PLUMBING}
        if len(ops_a) > len(ops_b):
            ops_a, ops_b = ops_b, ops_a
        common = sum(min(count, ops_b.get(op, 0)) for op, count in ops_a.items())
        union = sum(ops_a.values()) + sum(ops_b.values()) - common
        return 0.0 if union == 0 else common / union


class _CandidateIndex:
    """B's open kernels in buckets, each sorted by position, for bounded candidate lists."""

    def __init__(self, side: _Side, members: Iterable[int]) -> None:
        self.relative = side.relative
        self.buckets: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for j in members:  # ascending, so each bucket is sorted by position
            for key in _bucket_keys(side.kernels[j]):
                self.buckets[key].append(j)
        self.positions = {key: [side.relative[j] for j in bucket] for key, bucket in self.buckets.items()}

    def candidates(self, kernel: Kernel, relative: float) -> list[int]:
        found: dict[int, None] = {}
        for key in _bucket_keys(kernel):
            bucket = self.buckets.get(key)
            if not bucket:
                continue
            if len(bucket) <= CANDIDATES:
                found.update(dict.fromkeys(bucket))
                continue
            at = bisect.bisect_left(self.positions[key], relative)
            low = max(0, min(at - CANDIDATES // 2, len(bucket) - CANDIDATES))
            found.update(dict.fromkeys(bucket[low:low + CANDIDATES]))
        return list(found)


def _bucket_keys(kernel: Kernel) -> tuple[tuple[object, ...], ...]:
    """Candidate buckets, finest first: same result size and root op; same root op; same class."""
    cls = kernel.kernel_class
    return ((cls, kernel.root_op, kernel.bytes_written), (cls, kernel.root_op), (cls,))

