"""xlainspect: what XLA did with your program, and why two frameworks' programs differ.

The public API is this module's re-exports. Importing it loads neither jax nor tensorflow: those load only inside the
functions that compile or time programs.
"""

from __future__ import annotations

from xlainspect.analysis.graph import to_networkx
from xlainspect.analysis.stats import ModuleStats, module_stats
from xlainspect.errors import (
    CaptureError,
    FrameworkUnavailable,
    HloParseError,
    InputError,
    RecordError,
    XlaInspectError,
)
from xlainspect.hlo import (
    CalledComputation,
    Computation,
    HloModule,
    Instruction,
    Layout,
    OpMetadata,
    Shape,
    SourceLocation,
    StackFrames,
    parse_hlo,
    parse_hlo_modules,
    parse_shape,
    read_hlo,
)

__version__ = "0.1.0"

_LAZY = {"inspect": "xlainspect.inspection", "Inspection": "xlainspect.inspection",
         "InspectionDiff": "xlainspect.inspection", "InspectionTiming": "xlainspect.inspection"}


def __getattr__(name: str) -> object:
    """``xlainspect.inspect`` and its result types, imported on first use.

    The notebook API pulls in the analyses, the renderer and the child-process runner; ``import xlainspect`` stays
    light without them (and never loads jax or tensorflow: :func:`xlainspect.inspection.inspect` uses the framework
    its function already loaded).
    """
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xlainspect' has no attribute {name!r}")

__all__ = [
    "CalledComputation",
    "CaptureError",
    "Computation",
    "FrameworkUnavailable",
    "HloModule",
    "HloParseError",
    "InputError",
    "Inspection",
    "InspectionDiff",
    "InspectionTiming",
    "Instruction",
    "Layout",
    "ModuleStats",
    "OpMetadata",
    "RecordError",
    "Shape",
    "SourceLocation",
    "StackFrames",
    "XlaInspectError",
    "inspect",
    "module_stats",
    "parse_hlo",
    "parse_hlo_modules",
    "parse_shape",
    "read_hlo",
    "to_networkx",
]
