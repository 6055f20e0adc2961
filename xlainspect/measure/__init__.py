"""Stage 4, measurements: whole-step and per-kernel time (:mod:`.timing`) with its spread and the rule for what is
noise (:mod:`.spread`), the seed's runtime sweep and ablation (:mod:`.bench`), and compile-time memory and the largest batch that fits (:mod:`.memory`). Runs programs through
:mod:`xlainspect.runners`; attributes results to kernels through :mod:`xlainspect.analysis`. The figures of these
results are drawn by :mod:`xlainspect.output.plots`.
"""
