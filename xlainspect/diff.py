"""Comparing the kernels of two modules: which are the same, which differ, and where they came from.

Kernels are paired in two rounds. First exactly, by structural fingerprint (opcodes, shapes and edges of what they
compute, never names), so ``a_inference_*``'s ``fusion.3`` pairs with ``jit_*``'s ``loop_add_fusion``. Then, among
the rest, by best partial match: the score is the overlap of their fused-op multisets (weighted Jaccard), with a
bonus for the same result shape, and pairs below :data:`PARTIAL_THRESHOLD` stay unmatched.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from xlainspect.census import Census, Kernel

PARTIAL_THRESHOLD = 0.5


@dataclass(frozen=True)
class KernelPair:
    """Two kernels judged to do the same work; ``score`` is 1.0 for an exact structural match."""

    a: Kernel
    b: Kernel
    score: float

    @property
    def exact(self) -> bool:
        return self.score == 1.0


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
    def same_structure(self) -> bool:
        """Whether every kernel has an exact counterpart on the other side."""
        return not self.only_a and not self.only_b and all(pair.exact for pair in self.matched)

    def verdict(self, label_a: str = "A", label_b: str = "B") -> str:
        """One line saying what differs, naming the sides ``label_a`` and ``label_b``."""
        a, b = self.a, self.b
        if self.same_structure:
            return f"same kernels: {a.kernel_count} on each side, all structurally identical"
        exact = sum(pair.exact for pair in self.matched)
        partial = len(self.matched) - exact
        text = (f"{label_a} has {a.kernel_count} kernels ({a.launches} launches), {label_b} has {b.kernel_count} "
                f"({b.launches} launches): {exact} identical, {partial} similar, {len(self.only_a)} only in "
                f"{label_a}, {len(self.only_b)} only in {label_b}")
        if self.compiler_a and self.compiler_b and self.compiler_a != self.compiler_b:
            text += f"; compiled by different XLA versions ({self.compiler_a} vs {self.compiler_b})"
        return text

    def to_json(self) -> dict[str, Any]:
        def side(census: Census, compiler: str) -> dict[str, Any]:
            return {**census.to_json(), "compiler": compiler}

        return {
            "a": side(self.a, self.compiler_a),
            "b": side(self.b, self.compiler_b),
            "matched": [{"a": p.a.name, "b": p.b.name, "score": round(p.score, 3), "exact": p.exact}
                        for p in self.matched],
            "only_a": [kernel.name for kernel in self.only_a],
            "only_b": [kernel.name for kernel in self.only_b],
            "only_a_sources": {k.name: [str(s) for s in k.sources] for k in self.only_a},
            "only_b_sources": {k.name: [str(s) for s in k.sources] for k in self.only_b},
            "same_structure": self.same_structure,
            "verdict": self.verdict(),
        }


def similarity(a: Kernel, b: Kernel) -> float:
    """Weighted Jaccard overlap of the fused-op multisets, plus 0.1 when the result sizes agree (capped at 0.99)."""
    ops_a, ops_b = a.fused_op_counts, b.fused_op_counts
    union = sum((ops_a | ops_b).values())
    if union == 0:
        return 0.0
    score = sum((ops_a & ops_b).values()) / union
    if a.bytes_written == b.bytes_written:
        score += 0.1
    return min(score, 0.99)


def diff_census(a: Census, b: Census, compiler_a: str = "", compiler_b: str = "") -> CensusDiff:
    """Pairs the kernels of two censuses, exactly by fingerprint first, then by best partial match."""
    by_fingerprint: dict[str, list[Kernel]] = defaultdict(list)
    for kernel in b.kernels:
        by_fingerprint[kernel.fingerprint].append(kernel)
    matched: list[KernelPair] = []
    rest_a: list[Kernel] = []
    for kernel in a.kernels:
        candidates = by_fingerprint.get(kernel.fingerprint)
        if candidates:
            matched.append(KernelPair(kernel, candidates.pop(0), 1.0))
        else:
            rest_a.append(kernel)
    used_b = {id(pair.b) for pair in matched}
    rest_b = [kernel for kernel in b.kernels if id(kernel) not in used_b]
    scored = sorted(((similarity(x, y), i, j) for i, x in enumerate(rest_a) for j, y in enumerate(rest_b)),
                    key=lambda item: (-item[0], item[1], item[2]))
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    for score, i, j in scored:
        if score < PARTIAL_THRESHOLD:
            break
        if i in taken_a or j in taken_b:
            continue
        taken_a.add(i)
        taken_b.add(j)
        matched.append(KernelPair(rest_a[i], rest_b[j], score))
    order_a = {id(kernel): index for index, kernel in enumerate(a.kernels)}
    matched.sort(key=lambda pair: order_a[id(pair.a)])
    return CensusDiff(
        a, b, tuple(matched),
        tuple(k for i, k in enumerate(rest_a) if i not in taken_a),
        tuple(k for j, k in enumerate(rest_b) if j not in taken_b),
        compiler_a, compiler_b,
    )


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
    return TimeSplit(
        sum(times_a.get(pair.a.name, 0.0) for pair in diff.matched),
        sum(times_b.get(pair.b.name, 0.0) for pair in diff.matched),
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
