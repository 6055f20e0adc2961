"""How much a measurement varied across runs, and whether a difference between two measurements is more than that.

A median alone invites reading noise as a result: on a shared machine one kernel's share of the step moved from 16%
to 27% between two runs of the same program. Every time xlainspect prints therefore carries its spread, and a
difference between two times is printed as a signed delta only when it is larger than the two spreads together.

The rule, in one place: each value is given with half its interquartile range (``value ± IQR/2``); two values
differ *within noise* when ``|b - a| <= IQR_a / 2 + IQR_b / 2``, that is when the two ``±`` bands overlap. For
intervals centred on the two values, this is "the two interquartile ranges overlap".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Difference", "Spread", "difference"]


@dataclass(frozen=True)
class Spread:
    """The range and quartiles of one quantity over several runs (the quantity's own unit).

    Quartiles are Python's default (``statistics.quantiles``, the "exclusive" method), which for a few runs gives a
    wider, more cautious range than interpolating between the middle ones; with two runs it would reach past them,
    so they are kept within ``[low, high]``.
    """

    low: float
    q1: float
    q3: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        """The spread of ``values``; None for fewer than two: one run says nothing about how runs vary."""
        if len(values) < 2:
            return None
        low, high = min(values), max(values)
        q1, _, q3 = statistics.quantiles(values, n=4)
        return cls(low, max(q1, low), min(q3, high), high)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def half_iqr(self) -> float:
        """What ``±`` means in xlainspect's tables."""
        return self.iqr / 2

    def rounded(self, digits: int) -> Spread:
        return Spread(round(self.low, digits), round(self.q1, digits), round(self.q3, digits),
                      round(self.high, digits))


@dataclass(frozen=True)
class Difference:
    """B minus A, with the noise it must exceed to count as a difference.

    Attributes:
        delta: ``b - a``.
        noise: half A's IQR plus half B's IQR; None when either side's spread is unknown (one run, or a file
            written before spreads were kept).
    """

    delta: float
    noise: float | None

    @property
    def within_spread(self) -> bool | None:
        """Whether ``|delta|`` is no larger than the noise: the two ``±`` bands overlap. None when unknown."""
        return None if self.noise is None else abs(self.delta) <= self.noise

    def text(self, unit: str, digits: int = 1) -> str:
        """``+1.2us``, or ``within noise (±0.8us)`` when the difference is no larger than the spread."""
        if self.within_spread:
            return f"within noise (±{self.noise:.{digits}f}{unit})"
        return f"{self.delta:+.{digits}f}{unit}"


def difference(a: float, spread_a: Spread | None, b: float, spread_b: Spread | None) -> Difference:
    """``b - a`` and whether it is within the two values' spreads."""
    noise = None if spread_a is None or spread_b is None else spread_a.half_iqr + spread_b.half_iqr
    return Difference(b - a, noise)
