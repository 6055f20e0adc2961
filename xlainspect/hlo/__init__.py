"""Stage 1, the HLO model: reading XLA's HLO text into frozen values.

Owns the entities (:mod:`.model`: modules, computations, instructions; :mod:`.metadata`: source locations and
JAX's stack-frame tables; :mod:`.shape`: shapes and layouts), the text's lexical pieces (:mod:`.tokens`,
:mod:`.attributes`, :mod:`.opcodes`), the parser (:mod:`.parse`) with its post-parse checks (:mod:`.validate`) and
result-shape inference (:mod:`.infer_shape`), and finding and writing HLO files (:mod:`.files`). Nothing here
imports a later stage.
"""

from __future__ import annotations

from xlainspect.hlo.metadata import OpMetadata, SourceLocation, StackFrames
from xlainspect.hlo.model import CALL_ROLES, CalledComputation, Computation, HloModule, Instruction
from xlainspect.hlo.parse import parse_hlo, parse_hlo_modules, read_hlo
from xlainspect.hlo.shape import Layout, Shape, parse_shape

__all__ = [
    "CALL_ROLES",
    "CalledComputation",
    "Computation",
    "HloModule",
    "Instruction",
    "Layout",
    "OpMetadata",
    "Shape",
    "SourceLocation",
    "StackFrames",
    "parse_hlo",
    "parse_hlo_modules",
    "parse_shape",
    "read_hlo",
]
