"""Intervals on a line: the length of their union, and which of consecutive intervals holds a point.

Two questions in xlainspect reduce to the union's length: how long at least one op of a module was running in a
profile (ops run concurrently, so their durations overlap), and how many bytes of an allocation ever hold a kind of
buffer (values reuse offsets over time). Which profiled run an event fell in is the other.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence


def union_length(ranges: Iterable[tuple[float, float]]) -> float:
    """Total length covered by half-open ``[low, high)`` ranges, overlaps counted once."""
    total, end = 0.0, float("-inf")
    for low, high in sorted(ranges):
        if high > end:
            total += high - max(low, end)
            end = high
    return total


def interval_index(starts: Sequence[float], point: float) -> int:
    """Which of consecutive intervals, beginning at the sorted ``starts``, holds ``point``: the last one begun by
    then, and the first one for a point before them all.

    A profile's runs are such intervals: each begins where its marker does and lasts until the next begins, so an
    event that ends after its run's marker (a device clock a little behind the host's) still counts in its run.
    """
    return max(bisect.bisect_right(starts, point) - 1, 0)
