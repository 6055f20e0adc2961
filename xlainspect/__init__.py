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

__all__ = [
    "CalledComputation",
    "CaptureError",
    "Computation",
    "FrameworkUnavailable",
    "HloModule",
    "HloParseError",
    "InputError",
    "Instruction",
    "Layout",
    "ModuleStats",
    "OpMetadata",
    "RecordError",
    "Shape",
    "SourceLocation",
    "StackFrames",
    "XlaInspectError",
    "module_stats",
    "parse_hlo",
    "parse_hlo_modules",
    "parse_shape",
    "read_hlo",
    "to_networkx",
]
