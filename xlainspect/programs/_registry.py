"""The registry: every synthetic program by name, in the order the seed paper introduces them."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

from xlainspect.programs._classifier import Classifier
from xlainspect.programs._program import Program
from xlainspect.programs.cifar10_cnn import CIFAR10_CNN
from xlainspect.programs.dpsgd import DpsgdStep
from xlainspect.programs.embedding import EMBEDDING
from xlainspect.programs.ffnn import FFNN
from xlainspect.programs.linear import LinearGrad, Matvec
from xlainspect.programs.logreg import LOGREG
from xlainspect.programs.lstm import LSTM
from xlainspect.programs.mnist_cnn import MNIST_CNN
from xlainspect.programs.sgd import SgdStep

# The seed's defaults: lr 0.15, noise multiplier 1.1, clipping norm 1.0.
DPSGD_DEFAULTS = {"C": 1.0, "sigma": 1.1, "lr": 0.15}
SGD_DEFAULTS = {"lr": 0.15}
DEFAULT_BATCH_SIZE = 128

# Both frameworks compile every program in float64 too (JAX with x64 turned on per call, see _frameworks.jax_jit).
_DTYPES = ("float32", "float64")


def _steps(model: Classifier, what: str) -> tuple[Program, Program]:
    """The DP-SGD and the plain SGD step of ``model``, described as ``what`` (with its parameter count)."""
    count = f"{model.parameter_count:,} parameters"
    tf_note = "; TF loops over the examples with tf.map_fn" if model.tf_per_example == "map_fn" else ""
    return (Program(f"dpsgd_{model.name}", f"one DP-SGD step of {what}, {count} (clip per example, add the noise "
                    f"input{tf_note})", DEFAULT_BATCH_SIZE, _DTYPES, DPSGD_DEFAULTS, DpsgdStep(model)),
            Program(f"sgd_{model.name}", f"one plain SGD step of {what}, {count} (mean gradient)",
                    DEFAULT_BATCH_SIZE, _DTYPES, SGD_DEFAULTS, SgdStep(model)))


_ALL = (
    Program("matvec", "W @ x + b with W 5x5, the seed's smallest case", None, _DTYPES, {}, Matvec()),
    Program("linear_grad", "gradients of mean((W @ x + b - y)**2) w.r.t. W (5x5) and b", None, _DTYPES, {},
            LinearGrad()),
    *_steps(FFNN, "the Adult FFNN 104-50-2"),
    *_steps(MNIST_CNN, "the seed's MNIST CNN"),
    # The seed's other four models, in the order its issue lists them.
    *_steps(LOGREG, "logistic regression on Adult (104 features, sigmoid cross-entropy)"),
    *_steps(CIFAR10_CNN, "the seed's CIFAR10 CNN (seven 3x3 convolutions, 32x32x3 images)"),
    *_steps(EMBEDDING, "the IMDb embedding model (10,004 x 16 table, 256 tokens, mean over time)"),
    *_steps(LSTM, "the IMDb LSTM (10,004 x 100 table, LSTM(100) looped over 256 tokens)"),
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


def resolve_program(spec: str, framework: str | None = None) -> Program:
    """The program ``spec`` names: a built-in one by name, or a user's ``FILE.py:NAME`` / ``package.module:NAME``.

    A user's program runs the user's code (it imports their framework), so only child processes call this for one.

    Args:
        framework: the framework a child runs, which fixes whose function a user's program gives (``jax``, ``tf``).

    Raises:
        KeyError: an unknown built-in name.
        UserProgramError: a user's program that cannot be loaded (see :func:`xlainspect.programs.user.program_ref`).
    """
    from xlainspect.programs.user import is_user_program, load_user_program

    if not is_user_program(spec):
        return get_program(spec)
    program = load_user_program(spec)
    if framework is not None:
        program.implementation.for_framework(framework)  # type: ignore[attr-defined]
    return program


@dataclass(frozen=True)
class ProgramChoice:
    """What the parent process knows of a ``--program`` value, without running a user's code.

    Attributes:
        spec: as given; what child processes receive.
        name: what its dumps are filed under and results are labelled with: a built-in program's name, or
            ``<file stem>.<NAME>`` for a user's (see :class:`~xlainspect.programs.user.ProgramRef`).
        builtin: the built-in program, or None for a user's (whose inputs, shapes and description only a child
            can tell).
        takes_batch_size: whether it has a batch dimension; None when only running it would tell.
    """

    spec: str
    name: str
    builtin: Program | None
    takes_batch_size: bool | None

    @property
    def hyperparameters(self) -> Mapping[str, float]:
        return self.builtin.hyperparameters if self.builtin is not None else {}

    @property
    def has_per_example_gradients(self) -> bool:
        return self.builtin is not None and self.builtin.has_per_example_gradients

    def batch_size(self, batch_size: int | None) -> int | None:
        """The batch size to ask a child for: ``batch_size`` checked, or the default (None: the program's own).

        Raises:
            InputError: a batch size below 1, or one for a program without a batch dimension.
        """
        from xlainspect.errors import InputError

        if batch_size is None:
            return self.builtin.default_batch_size if self.builtin is not None else None
        if batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}")
        self.require_batch("leave out --batch-size", f"program {self.spec!r}")
        return batch_size

    def require_batch(self, what_to_do: str, name: str | None = None) -> None:
        """Checks that the program has a batch dimension (when only running it could tell, it may).

        Raises:
            InputError: it has none: ``<name> has no batch dimension; <what_to_do>`` (a user's: "takes no
                batch_size parameter").
        """
        from xlainspect.errors import InputError

        if self.takes_batch_size is False:
            what = "has no batch dimension" if self.builtin is not None else "takes no batch_size parameter"
            raise InputError(f"{name or self.spec} {what}; {what_to_do}")


def choose_program(spec: str) -> ProgramChoice:
    """The program a ``--program`` value names, checked in this process: a built-in name or a user's reference.

    Raises:
        InputError: an unknown built-in name (the message lists them) or a bad ``FILE.py:NAME`` (see
            :func:`~xlainspect.programs.user.program_ref`).
    """
    from xlainspect.errors import InputError
    from xlainspect.programs.user import is_user_program, program_ref

    if is_user_program(spec):
        ref = program_ref(spec)
        return ProgramChoice(spec, ref.folder, None, ref.takes_batch_size)
    if spec not in PROGRAMS:
        raise InputError(f"unknown program {spec!r}; choose one of: {', '.join(PROGRAMS)} (see 'xlainspect "
                         "programs'), or give your own as FILE.py:NAME or package.module:NAME")
    program = PROGRAMS[spec]
    return ProgramChoice(spec, spec, program, program.default_batch_size is not None)
