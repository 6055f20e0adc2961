"""Matplotlib for xlainspect's figures: loaded only when a figure is drawn, saved as PNG and SVG side by side.

matplotlib is an extra (``[plot]``); a command that draws says so plainly when it is missing, and the headless Agg
backend is chosen before pyplot loads, so drawing works on machines without a screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlainspect.errors import FrameworkUnavailable


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend.

    Raises:
        FrameworkUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise FrameworkUnavailable("plots need matplotlib; install it with pip install 'xlainspect[plot]'") from e
    return plt


def save_figure(figure: Any, base: Path) -> list[Path]:
    """Writes ``base.png`` and ``base.svg``, then frees the figure."""
    figure.tight_layout()
    paths = [base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")]
    for path in paths:
        figure.savefig(path)
    pyplot().close(figure)
    return paths
