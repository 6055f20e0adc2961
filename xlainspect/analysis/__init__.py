"""Stage 2, analyses of parsed modules: what XLA compiled, and how two compilations differ.

Owns module statistics (:mod:`.stats`), the kernel census (:mod:`.census`) and kernel identity
(:mod:`.fingerprint`), pairing the kernels of two modules (:mod:`.matching`) and the diff built on it (:mod:`.diff`),
the pass timeline (:mod:`.passes`), buffer assignments (:mod:`.buffers`) and the networkx view (:mod:`.graph`).
Uses only :mod:`xlainspect.hlo`.
"""

from __future__ import annotations

from xlainspect.analysis.census import Census, Kernel, census
from xlainspect.analysis.diff import CensusDiff, KernelPair, diff_census
from xlainspect.analysis.graph import to_networkx
from xlainspect.analysis.stats import ModuleStats, module_stats

__all__ = ["Census", "CensusDiff", "Kernel", "KernelPair", "ModuleStats", "census", "diff_census", "module_stats",
           "to_networkx"]
