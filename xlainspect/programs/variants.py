"""The seed's ablation switches: per-example gradients vectorized or looped, the step compiled or not.

The seed measured how much of JAX's DP-SGD speed comes from ``vmap`` and how much from ``jit`` (and, in TF, from
``vectorized_map`` and XLA) by turning each off. A :class:`Variant` names one of those four builds; every program
takes one, and only the DP-SGD programs, which have per-example gradients, accept ``vectorize=False``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """How a program's function is built.

    Attributes:
        vectorize: per-example gradients by ``jax.vmap`` / ``tf.vectorized_map``; when False, by a Python loop over
            the examples whose results are stacked, as the seed's ``--no_vmap`` runs did (the loop unrolls when the
            step is traced, so a compiled step holds one gradient computation per example).
        compiled: the step is ``jax.jit`` / ``tf.function(jit_compile=True)``; when False, JAX runs op by op and TF
            runs a ``tf.function`` graph without XLA (the seed's ``--no_xla``).
    """

    vectorize: bool = True
    compiled: bool = True

    def label(self, framework: str) -> str:
        """How the seed's plots name this build, e.g. ``jit, no vmap`` or ``no XLA, vectorized_map``."""
        if framework == "jax":
            return f"{'jit' if self.compiled else 'no jit'}, {'vmap' if self.vectorize else 'no vmap'}"
        return (f"{'XLA' if self.compiled else 'no XLA'}, "
                f"{'vectorized_map' if self.vectorize else 'no vectorized_map'}")

    @property
    def slug(self) -> str:
        """A short key for files and CSV rows: ``full``, ``novec``, ``nocompile`` or ``novec-nocompile``."""
        parts = [p for p, off in (("novec", not self.vectorize), ("nocompile", not self.compiled)) if off]
        return "-".join(parts) or "full"


DEFAULT = Variant()
ABLATION = (Variant(True, True), Variant(False, True), Variant(True, False), Variant(False, False))
"""The four builds of the seed's ablation, the default first."""
