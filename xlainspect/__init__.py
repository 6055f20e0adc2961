"""xlainspect: what XLA did with your program, and why two frameworks' programs differ.

The public API is this module's re-exports. Importing it loads neither jax nor tensorflow: those load only inside the
functions that compile or time programs.
"""

from __future__ import annotations

from xlainspect.errors import CaptureError, FrameworkUnavailable, HloParseError, InputError, XlaInspectError
from xlainspect.hlo import (
    CalledComputation,
    Computation,
    HloModule,
    Instruction,
    OpMetadata,
    SourceLocation,
    StackFrames,
)
from xlainspect.graph import to_networkx
from xlainspect.parse import parse_hlo, parse_hlo_modules, read_hlo
from xlainspect.shape import Layout, Shape, parse_shape
from xlainspect.stats import ModuleStats, module_stats

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
