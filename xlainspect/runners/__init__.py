"""Stage 3, the framework-facing side: compiling programs in child processes and filing what XLA dumped.

Owns the child-process protocol (:mod:`.children`) and the children themselves (:mod:`.compile_child`,
:mod:`.time_child`, :mod:`.memory_child`), compiling through JAX (:mod:`.jax_compile`), GPU target descriptions
(:mod:`.gpu_targets`, ``targets/``), capturing dumps with manifests (:mod:`.capture`), naming the filed dumps of
a program (:mod:`.sides`), and interval arithmetic for profiler events (:mod:`.intervals`). Importing it loads no
framework: only the children do.
"""
