"""Synthetic programs: the seed paper's computations, each in JAX, in TF2+XLA and in float64 numpy.

Each :class:`Program` computes one function on seeded numpy inputs three ways: a ``jax.jit`` function, a
``tf.function(jit_compile=True)`` with the same calling convention, and an independent float64 numpy reference with
hand-written backward passes. xlainspect compiles the first two to compare what XLA makes of the same math; the
third tells whether they compute that math at all.

Importing this package loads neither jax nor tensorflow; a program loads its framework when asked for its function.

    >>> from xlainspect.programs import get_program
    >>> program = get_program("dpsgd_ffnn")
    >>> inputs = program.inputs(batch_size=8)
    >>> outputs = program.jax_function()(*inputs.values())   # doctest: +SKIP
"""

from __future__ import annotations

from xlainspect.programs._program import InputSpec, Program
from xlainspect.programs._registry import PROGRAMS, ProgramChoice, choose_program, get_program, resolve_program
from xlainspect.programs.variants import ABLATION, Variant

__all__ = ["ABLATION", "PROGRAMS", "InputSpec", "Program", "ProgramChoice", "Variant", "choose_program", "get_program",
           "resolve_program"]
