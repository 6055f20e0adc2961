"""Stage 3, the framework-facing side: compiling programs in child processes and filing what XLA dumped.

Owns what a parent sends a child and what it prints back (:mod:`.protocol`), starting children and reading their
results (:mod:`.children`), the children themselves (:mod:`.compile_child`, :mod:`.time_child`,
:mod:`.memory_child`), compiling through JAX (:mod:`.jax_compile`), GPU target descriptions (:mod:`.gpu_targets`,
``targets/``), capturing dumps (:mod:`.capture`) with their manifests (:mod:`.manifest`), naming the filed dumps of
a program (:mod:`.sides`), running any command under XLA's dumper (:mod:`.command_capture`, with its manifest
:mod:`.command_manifest` and the ``sitecustomize`` that reports the command's frameworks, :mod:`.version_probe`),
reading records back with errors that name file and key (:mod:`.reading`), and interval arithmetic for profiler
events (:mod:`.intervals`). Importing it loads no framework: only the children do.
"""
