"""The length of a union of intervals: how much of a line a set of possibly overlapping ranges covers.

Two questions in xlainspect reduce to it: how long at least one op of a module was running in a profile (ops run
concurrently, so their durations overlap), and how many bytes of an allocation ever hold a kind of buffer (values
reuse offsets over time).
"""

from __future__ import annotations

from collections.abc import Iterable


def union_length(ranges: Iterable[tuple[float, float]]) -> float:
    """Total length covered by half-open ``[low, high)`` ranges, overlaps counted once."""
    total, end = 0.0, float("-inf")
    for low, high in sorted(ranges):
        if high > end:
            total += high - max(low, end)
            end = high
    return total
