"""The registry: every synthetic program by name, in the order the seed paper introduces them."""

from __future__ import annotations

import types
from collections.abc import Mapping

from xlainspect.programs._program import Program
from xlainspect.programs.dpsgd import DpsgdStep
from xlainspect.programs.ffnn import FFNN
from xlainspect.programs.linear import LinearGrad, Matvec
from xlainspect.programs.mnist_cnn import MNIST_CNN
from xlainspect.programs.sgd import SgdStep

# The seed's defaults: lr 0.15, noise multiplier 1.1, clipping norm 1.0.
DPSGD_DEFAULTS = {"C": 1.0, "sigma": 1.1, "lr": 0.15}
SGD_DEFAULTS = {"lr": 0.15}
DEFAULT_BATCH_SIZE = 128

# Both frameworks compile every program in float64 too (JAX with x64 turned on per call, see _frameworks.jax_jit).
_DTYPES = ("float32", "float64")

_ALL = (
    Program("matvec", "W @ x + b with W 5x5, the seed's smallest case", None, _DTYPES, {}, Matvec()),
    Program("linear_grad", "gradients of mean((W @ x + b - y)**2) w.r.t. W (5x5) and b", None, _DTYPES, {},
            LinearGrad()),
    Program("dpsgd_ffnn", "one DP-SGD step of the Adult FFNN 104-50-2 (clip per example, add the noise input)",
            DEFAULT_BATCH_SIZE, _DTYPES, DPSGD_DEFAULTS, DpsgdStep(FFNN)),
    Program("sgd_ffnn", "one plain SGD step of the Adult FFNN 104-50-2 (mean gradient)",
            DEFAULT_BATCH_SIZE, _DTYPES, SGD_DEFAULTS, SgdStep(FFNN)),
    Program("dpsgd_mnist", "one DP-SGD step of the seed's MNIST CNN, 26,010 parameters",
            DEFAULT_BATCH_SIZE, _DTYPES, DPSGD_DEFAULTS, DpsgdStep(MNIST_CNN)),
    Program("sgd_mnist", "one plain SGD step of the seed's MNIST CNN, 26,010 parameters (mean gradient)",
            DEFAULT_BATCH_SIZE, _DTYPES, SGD_DEFAULTS, SgdStep(MNIST_CNN)),
)

PROGRAMS: Mapping[str, Program] = types.MappingProxyType({program.name: program for program in _ALL})
"""Program name -> :class:`Program`, read-only, in a fixed order."""


def get_program(name: str) -> Program:
    """The program called ``name``.

    Raises:
        KeyError: no such program; the message lists the valid names.
    """
    try:
        return PROGRAMS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic program {name!r}; choose one of: {', '.join(PROGRAMS)}") from None
