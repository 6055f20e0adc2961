"""Comparing the kernels of two modules: which compute the same thing, which differ, and where they came from.

A kernel's identity is what it computes (:mod:`xlainspect.analysis.fingerprint`), never its name, so ``a_inference_*``'s
``fusion.3`` pairs with ``jit_*``'s ``loop_add_fusion``, and ``W @ x`` never pairs exactly with ``W.T @ x``. The
pairing (:mod:`xlainspect.analysis.matching`) goes through loops: a loop body's kernel that runs 24 times stands for 24
equal kernels of an unrolled twin, and launches are counted on each side.

Each pair is in one of three relations:

- ``identical``: the same math and the same layouts;
- ``layout``: the same math (the same values from the same inputs) with different memory layouts, which changes
  speed, not results;
- ``similar``: the best partial match of the same class of kernel, scored by fused-op overlap.

The two modules have the *same math* when every launch pairs with a launch of the same math one-to-one, and the
*same structure* when, on top of that, every layout agrees. ``--fail-on-diff`` and
:func:`xlainspect.testing.assert_same_kernels` ask for the same structure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from xlainspect.analysis.census import Census, Kernel
from xlainspect.analysis.matching import Matcher
from xlainspect.hlo.gcpause import paused_gc


@dataclass(frozen=True)
class KernelPair:
    """Two kernels judged to do the same work.

    Attributes:
        a: the kernel of A.
        b: the kernel of B.
        score: 1.0 for the same math; below 1 the similarity of a partial match.
        same_layout: for the same math, whether every layout agrees too.
        launches_a: the launches of ``a`` this pairing accounts for: its trip count when both run equally often;
            one of a loop body's N launches when it stands for N unrolled kernels; a fraction of a launch when
            ``a`` is a stacked kernel (one launch doing the work of several of ``b``'s, e.g. all layers' weight
            update in one kernel).
        launches_b: the same for ``b``.
    """

    a: Kernel
    b: Kernel
    score: float
    same_layout: bool = True
    launches_a: Fraction = Fraction(1)
    launches_b: Fraction = Fraction(1)

    @property
    def stacked(self) -> bool:
        """Whether one side's launch stands for several of the other's by size (not by loop trips)."""
        return self.launches_a != self.launches_b

    @property
    def exact(self) -> bool:
        """The same math (the layouts may differ)."""
        return self.score == 1.0

    @property
    def relation(self) -> str:
        """``identical``, ``layout`` (same math, different layout) or ``similar``."""
        if not self.exact:
            return "similar"
        return "identical" if self.same_layout else "layout"


@dataclass(frozen=True)
class CensusDiff:
    """The result of comparing two censuses (A and B)."""

    a: Census
    b: Census
    matched: tuple[KernelPair, ...]
    only_a: tuple[Kernel, ...]
    only_b: tuple[Kernel, ...]
    compiler_a: str = ""
    compiler_b: str = ""

    @property
    def one_to_one(self) -> bool:
        """Whether no kernel is paired with more than one kernel of the other side."""
        return len({id(p.a) for p in self.matched}) == len(self.matched) == len({id(p.b) for p in self.matched})

    @property
    def launches_matched_a(self) -> Fraction:
        """Launches of A that are paired (a fraction where a stacked kernel's launch is partly paired)."""
        return sum((pair.launches_a for pair in self.matched), Fraction(0))

    @property
    def launches_matched_b(self) -> Fraction:
        """Launches of B that are paired."""
        return sum((pair.launches_b for pair in self.matched), Fraction(0))

    @property
    def same_math(self) -> bool:
        """Whether every kernel pairs one-to-one with a kernel of the same math that runs as often."""
        return (not self.only_a and not self.only_b and self.one_to_one
                and all(pair.exact and pair.a.trips == pair.b.trips for pair in self.matched))

    @property
    def same_structure(self) -> bool:
        """The same math, and every layout the same: the two modules launch the same kernels."""
        return self.same_math and all(pair.same_layout for pair in self.matched)

    def counts(self) -> Counter[str]:
        """Pairs per relation (``identical``, ``layout``, ``similar``)."""
        return Counter(pair.relation for pair in self.matched)

    def groups(self) -> list[tuple[Kernel, tuple[Kernel, ...], str]]:
        """Kernels paired with several kernels of the other side: (the kernel, its partners, its side "a"/"b")."""
        partners_a: dict[int, list[KernelPair]] = defaultdict(list)
        partners_b: dict[int, list[KernelPair]] = defaultdict(list)
        for pair in self.matched:
            partners_a[id(pair.a)].append(pair)
            partners_b[id(pair.b)].append(pair)
        result = [(pairs[0].a, tuple(p.b for p in pairs), "a") for pairs in partners_a.values() if len(pairs) > 1]
        result += [(pairs[0].b, tuple(p.a for p in pairs), "b") for pairs in partners_b.values() if len(pairs) > 1]
        return sorted(result, key=lambda group: group[0].position)

    def verdict(self, label_a: str = "A", label_b: str = "B") -> str:
        """One line saying what differs, naming the sides ``label_a`` and ``label_b``."""
        a, b = self.a, self.b
        if self.same_structure:
            text = (f"same kernels: {a.kernel_count} on each side ({_n(a.launches, 'launch', 'launches')}), all "
                    "identical in math and layout")
        elif self.same_math:
            verb = "computes" if a.kernel_count == 1 else "compute"
            text = (f"same math, different layout: the {_n(a.kernel_count, 'kernel')} on each side {verb} the same "
                    f"values, {self.counts()['layout']} with different memory layouts")
        else:
            counts = self.counts()
            text = (f"{label_a} has {_n(a.kernel_count, 'kernel')} ({_n(a.launches, 'launch', 'launches')}), "
                    f"{label_b} has {b.kernel_count} ({_n(b.launches, 'launch', 'launches')}): "
                    f"{counts['identical']} identical, {counts['layout']} same math with a different layout, "
                    f"{counts['similar']} similar, {len(self.only_a)} only in {label_a}, {len(self.only_b)} only in "
                    f"{label_b}; launches matched: {_count(self.launches_matched_a)} of {label_a}'s {a.launches}, "
                    f"{_count(self.launches_matched_b)} of {label_b}'s {b.launches}")
            groups = self.groups()
            if groups:
                many = sum(len(partners) for _, partners, _ in groups)
                stand = "stands" if len(groups) == 1 else "stand"
                text += (f" ({_n(len(groups), 'loop-body or stacked kernel')} {stand} for {many} kernels of the other "
                         "side)")
        if self.compiler_a and self.compiler_b and self.compiler_a != self.compiler_b:
            text += f"; compiled by different XLA versions ({self.compiler_a} vs {self.compiler_b})"
        return text

    def to_json(self) -> dict[str, Any]:
        def side(census: Census, compiler: str, matched: Fraction) -> dict[str, Any]:
            return {**census.to_json(), "compiler": compiler, "launches_matched": float(matched)}

        counts = self.counts()
        return {
            "a": side(self.a, self.compiler_a, self.launches_matched_a),
            "b": side(self.b, self.compiler_b, self.launches_matched_b),
            "matched": [{"a": p.a.name, "b": p.b.name, "score": round(p.score, 3), "exact": p.exact,
                         "relation": p.relation, "launches_a": float(p.launches_a),
                         "launches_b": float(p.launches_b)} for p in self.matched],
            "only_a": [kernel.name for kernel in self.only_a],
            "only_b": [kernel.name for kernel in self.only_b],
            "only_a_sources": {k.name: [str(s) for s in k.sources] for k in self.only_a},
            "only_b_sources": {k.name: [str(s) for s in k.sources] for k in self.only_b},
            "relations": {key: counts[key] for key in ("identical", "layout", "similar")},
            "same_math": self.same_math,
            "same_structure": self.same_structure,
            "verdict": self.verdict(),
        }


def diff_census(a: Census, b: Census, compiler_a: str = "", compiler_b: str = "") -> CensusDiff:
    """Pairs the kernels of two censuses: same math first (through loops), then best partial match by class."""
    with paused_gc():
        pairings = Matcher(a, b).run()
    matched = [KernelPair(a.kernels[p.i], b.kernels[p.j], p.score,
                          p.score != 1.0 or a.kernels[p.i].layout_fingerprint == b.kernels[p.j].layout_fingerprint,
                          p.launches_a, p.launches_b)
               for p in pairings]
    matched.sort(key=lambda pair: (pair.a.position, pair.b.position))
    paired_a = {p.i for p in pairings}
    paired_b = {p.j for p in pairings}
    return CensusDiff(
        a, b, tuple(matched),
        tuple(k for i, k in enumerate(a.kernels) if i not in paired_a),
        tuple(k for j, k in enumerate(b.kernels) if j not in paired_b),
        compiler_a, compiler_b,
    )


def _n(count: int, singular: str, plural: str = "") -> str:
    """``1 kernel``, ``3 kernels``, ``1 launch``, ``2 launches``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _count(value: Fraction) -> str:
    """A launch count: whole, or with one decimal where stacked kernels make it fractional."""
    return str(int(value)) if value.denominator == 1 else f"{float(value):.1f}"


def count_delta(a: dict[str, int], b: dict[str, int]) -> list[tuple[str, int, int]]:
    """Rows (key, count in A, count in B) over the union of keys, for side-by-side tables."""
    keys = sorted(set(a) | set(b))
    return [(key, a.get(key, 0), b.get(key, 0)) for key in keys]


def fused_op_summary(kernel: Kernel, limit: int = 6) -> str:
    """``dot, add, multiply x3, ...``: what a kernel computes, most frequent first."""
    counts = Counter(dict(kernel.fused_ops)).most_common()
    parts = [op if n == 1 else f"{op} x{n}" for op, n in counts[:limit]]
    if len(counts) > limit:
        parts.append("...")
    return ", ".join(parts)


@dataclass(frozen=True)
class TimeSplit:
    """Where two programs' kernel time goes: matched kernels on both sides, and kernels only one side has."""

    matched_a_us: float
    matched_b_us: float
    only_a_us: float
    only_b_us: float

    @property
    def total_a_us(self) -> float:
        return self.matched_a_us + self.only_a_us

    @property
    def total_b_us(self) -> float:
        return self.matched_b_us + self.only_b_us


def split_time(diff: CensusDiff, times_a: dict[str, float], times_b: dict[str, float]) -> TimeSplit:
    """Sums per-step kernel time (µs, by kernel name) over matched and unmatched kernels of each side."""
    # A kernel paired with several (a loop body's kernel and its unrolled twins) counts its time once.
    matched_a = {pair.a.name for pair in diff.matched}
    matched_b = {pair.b.name for pair in diff.matched}
    return TimeSplit(
        sum(times_a.get(name, 0.0) for name in matched_a),
        sum(times_b.get(name, 0.0) for name in matched_b),
        sum(times_a.get(kernel.name, 0.0) for kernel in diff.only_a),
        sum(times_b.get(kernel.name, 0.0) for kernel in diff.only_b),
    )


def timed_json(diff: CensusDiff, times_a: dict[str, float], times_b: dict[str, float]) -> dict[str, Any]:
    """``diff.to_json()`` with per-kernel times (µs per step) and the split of time between matched and unmatched."""
    data = diff.to_json()
    for entry, pair in zip(data["matched"], diff.matched):
        a_us, b_us = times_a.get(pair.a.name), times_b.get(pair.b.name)
        entry.update(a_us=a_us, b_us=b_us, delta_us=None if a_us is None or b_us is None else b_us - a_us)
    data["only_a_us"] = {kernel.name: times_a.get(kernel.name) for kernel in diff.only_a}
    data["only_b_us"] = {kernel.name: times_b.get(kernel.name) for kernel in diff.only_b}
    split = split_time(diff, times_a, times_b)
    data["time_split_us"] = {"matched_a": split.matched_a_us, "matched_b": split.matched_b_us,
                             "only_a": split.only_a_us, "only_b": split.only_b_us}
    return data
