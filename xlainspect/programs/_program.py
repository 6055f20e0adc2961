"""``Program``: one computation written three times (JAX, TF2+XLA, float64 numpy) over the same seeded inputs.

A program pairs what users see (name, description, shapes, hyperparameters) with an :class:`Implementation`, the
extension point that knows the math. The implementations live in ``linear.py``, ``sgd.py`` and ``dpsgd.py``.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from xlainspect.programs._sampling import Sampler, stream
from xlainspect.programs._torch import TORCH_FRAMEWORKS, TorchStep
from xlainspect.programs.variants import DEFAULT, Variant

Role = Literal["parameter", "data", "label", "noise"]


@dataclass(frozen=True)
class InputSpec:
    """One input of a program at a given batch size.

    Attributes:
        name: the key in :meth:`Program.inputs`.
        shape: its shape at that batch size.
        role: ``parameter``, ``data``, ``label`` or ``noise``; inputs are ordered in that order of roles.
        sampler: how its seeded values are drawn.
        dtype: its element type when fixed (a user's program gives its own arrays, which are not cast); None for
            the built-in programs' inputs, which take the dtype asked for (labels are int32).
    """

    name: str
    shape: tuple[int, ...]
    role: Role
    sampler: Sampler
    dtype: str | None = None


class Implementation(Protocol):
    """The math of a program, in each framework and in numpy.

    The JAX and TF functions take the inputs positionally, in the order of :meth:`input_specs`, and return a tuple
    with one array per name in ``output_names``. Hyperparameters are baked in as constants when a function is
    built, as they would be in a training script. An implementation with per-example gradients says so with a
    true ``per_example_gradients`` attribute; only those accept ``Variant(vectorize=False)``.
    """

    @property
    def function_name(self) -> str:
        """The Python name of the compiled function, which both frameworks put into their module's name."""
        ...

    @property
    def output_names(self) -> tuple[str, ...]: ...

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]: ...

    def jax_function(self, hyperparameters: Mapping[str, float],
                     variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]: ...

    def tf_function(self, hyperparameters: Mapping[str, float],
                    variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]: ...

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]: ...


@dataclass(frozen=True)
class Program:
    """A synthetic program of the registry: the same function in JAX, in TF2+XLA, and in float64 numpy.

    Attributes:
        name: the registry key, e.g. ``dpsgd_ffnn``.
        description: one line saying what it computes.
        default_batch_size: the batch size used when none is given; None for programs without a batch.
        dtypes: floating-point types both frameworks run it in.
        hyperparameters: constants of the math (``C``, ``sigma``, ``lr``); read-only, see
            :meth:`with_hyperparameters`.
        implementation: the math itself.
    """

    name: str
    description: str
    default_batch_size: int | None
    dtypes: tuple[str, ...]
    hyperparameters: Mapping[str, float] = field(hash=False)
    implementation: Implementation = field(repr=False)

    def __post_init__(self) -> None:
        # A read-only view: the registry's programs are shared, and one caller's change must not leak to others.
        object.__setattr__(self, "hyperparameters", types.MappingProxyType(dict(self.hyperparameters)))

    def __reduce__(self) -> tuple[Any, ...]:  # mappingproxy does not pickle; a dict copy does
        return (type(self), (self.name, self.description, self.default_batch_size, self.dtypes,
                             dict(self.hyperparameters), self.implementation))

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the outputs, in the order the functions return them."""
        return self.implementation.output_names

    @property
    def function_name(self) -> str:
        """Python name of the compiled function: JAX's module is ``jit_<function_name>``."""
        return self.implementation.function_name

    def input_specs(self, batch_size: int | None = None) -> tuple[InputSpec, ...]:
        """Every input's name, shape, role and sampler, in calling order.

        Raises:
            ValueError: a batch size for a program without a batch, or one below 1.
        """
        return self.implementation.input_specs(self.batch_size(batch_size))

    def shapes(self, batch_size: int | None = None) -> dict[str, tuple[int, ...]]:
        """Input name -> shape, in calling order, at ``batch_size`` (None: the default)."""
        return {spec.name: spec.shape for spec in self.input_specs(batch_size)}

    def parameter_count(self) -> int:
        """Number of trainable parameters (the seed's MNIST CNN has 26,010); it does not depend on the batch."""
        specs = self.implementation.input_specs(self.default_batch_size)
        return sum(int(np.prod(spec.shape)) for spec in specs if spec.role == "parameter")

    def inputs(self, batch_size: int | None = None, dtype: str = "float32", seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded numpy inputs, in calling order: parameters, data, labels, noise.

        Floating-point inputs are drawn in float64 and then cast, so the float32 and float64 inputs of one seed are
        the same numbers up to rounding. Labels are int32.

        Raises:
            ValueError: an unsupported dtype, or a bad batch size (see :meth:`input_specs`).
        """
        dtype = self._dtype(dtype)
        arrays = {}
        for spec in self.input_specs(batch_size):
            value = spec.sampler.sample(stream(seed, spec.name), spec.shape)
            arrays[spec.name] = value if spec.role == "label" or spec.dtype is not None else value.astype(dtype)
        return arrays

    def input_types(self, batch_size: int | None = None, dtype: str = "float32") -> dict[str, tuple[tuple[int, ...],
                                                                                                str]]:
        """Input name -> (shape, element type), as :meth:`inputs` would make them, without making any data.

        For compiling at batch sizes too large to hold in memory: labels are int32, everything else ``dtype``.

        Raises:
            ValueError: as :meth:`inputs`.
        """
        dtype = self._dtype(dtype)
        return {spec.name: (spec.shape, spec.dtype or ("int32" if spec.role == "label" else dtype))
                for spec in self.input_specs(batch_size)}

    def jax_function(self, variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        """The program as a ``jax.jit`` function of the inputs' values, positionally; returns a tuple of arrays.

        A new function (and compilation) per call: keep it to reuse its compile cache. It accepts float32 or float64
        arrays, turning on x64 for float64 calls only (see ``xlainspect.programs._frameworks.jax_jit``).

        Args:
            variant: an ablation build (no ``vmap``, no ``jit``); the default is the seed's fast one.

        Raises:
            FrameworkUnavailable: jax is not installed.
            ValueError: ``vectorize=False`` for a program without per-example gradients.
        """
        return self.implementation.jax_function(self.hyperparameters, self._variant(variant))

    def tf_function(self, variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        """The program as a ``tf.function(jit_compile=True)`` with :meth:`jax_function`'s calling convention.

        Args:
            variant: an ablation build (no ``vectorized_map``, no XLA); the default is the seed's fast one.

        Raises:
            FrameworkUnavailable: tensorflow is not installed.
            ValueError: ``vectorize=False`` for a program without per-example gradients.
        """
        return self.implementation.tf_function(self.hyperparameters, self._variant(variant))

    def torch_step(self, framework: str, batch_size: int | None = None, dtype: str = "float32",
                   variant: Variant = DEFAULT) -> TorchStep:
        """The program in PyTorch: ``torch`` (eager; Opacus for DP-SGD) or ``torch_xla`` (compiled by PyTorch/XLA).

        Unlike the JAX and TF functions, a PyTorch step is built for one batch size and dtype (Opacus' optimizer
        scales by its expected batch size) and converts the program's inputs to PyTorch's layouts itself; see
        :class:`~xlainspect.programs._torch.TorchStep`.

        Raises:
            FrameworkUnavailable: torch (or torch_xla, or opacus) is not installed.
            ValueError: an ablation build (those are JAX's and TF's), an unknown framework, or a program without a
                PyTorch version.
        """
        if variant != DEFAULT:
            raise ValueError(f"the ablation builds ({variant.slug}) are JAX's and TF's; PyTorch runs the default "
                             "build only")
        builder = getattr(self.implementation, "torch_step", None)
        if builder is None:
            raise ValueError(f"{self.name} has no PyTorch version")
        return builder(self.hyperparameters, framework, self._dtype(dtype), self.batch_size(batch_size))

    def frameworks(self, batch_size: int | None = None) -> tuple[str, ...]:
        """The frameworks the program has a function in: all four for the built-in ones; a user's may give fewer."""
        given = getattr(self.implementation, "frameworks", None)
        if given is not None:
            return tuple(given(self.batch_size(batch_size)))
        if not hasattr(self.implementation, "torch_step"):
            return ("jax", "tf")
        return ("jax", "tf", *(f for f in TORCH_FRAMEWORKS if not self.unavailable(f)))

    def unavailable(self, framework: str) -> str:
        """Why the program has no function in ``framework`` ("" when it has one): PyTorch/XLA cannot compile the
        DP-SGD step of the LSTM, say."""
        said = getattr(self.implementation, "unavailable", None)
        return said(framework) if said is not None else ""

    @property
    def has_per_example_gradients(self) -> bool:
        """Whether the ablation's ``vectorize=False`` applies: only DP-SGD steps compute per-example gradients."""
        return bool(getattr(self.implementation, "per_example_gradients", False))

    def _variant(self, variant: Variant) -> Variant:
        if not variant.vectorize and not self.has_per_example_gradients:
            raise ValueError(f"{self.name} has no per-example gradients to vectorize; only the DP-SGD programs "
                             "take vectorize=False")
        return variant

    def reference(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """The outputs computed in float64 numpy, independently of both frameworks (explicit backward passes).

        Args:
            inputs: arrays by name, as :meth:`inputs` returns them (any float dtype; computed in float64).

        Raises:
            ValueError: the names are not this program's inputs.
        """
        batch_size = None
        if self.default_batch_size is not None and "x" in inputs:
            batch_size = int(np.shape(inputs["x"])[0])
        expected = [spec.name for spec in self.input_specs(batch_size)]
        if sorted(inputs) != sorted(expected):
            raise ValueError(f"{self.name}: reference() needs inputs named {', '.join(expected)}; "
                             f"got {', '.join(inputs) or 'none'}")
        as_float64 = {name: np.asarray(value) if np.asarray(value).dtype.kind in "iu"
                      else np.asarray(value, dtype=np.float64) for name, value in inputs.items()}
        return self.implementation.reference(self.hyperparameters, as_float64)

    def with_hyperparameters(self, **overrides: float) -> Program:
        """A copy of this program with some hyperparameters changed, e.g. ``with_hyperparameters(sigma=0.0)``.

        Raises:
            KeyError: a name that is not one of this program's hyperparameters.
        """
        unknown = sorted(set(overrides) - set(self.hyperparameters))
        if unknown:
            known = ", ".join(self.hyperparameters) or "none"
            raise KeyError(f"{self.name} has no hyperparameter {', '.join(map(repr, unknown))}; it has: {known}")
        return dataclasses.replace(self, hyperparameters={**self.hyperparameters, **overrides})

    def batch_size(self, batch_size: int | None = None) -> int | None:
        """The batch size the program runs at when asked for ``batch_size`` (None: its default).

        Raises:
            ValueError: a batch size for a program without a batch, or one below 1.
        """
        if self.default_batch_size is None:
            if batch_size is not None:
                raise ValueError(f"{self.name} has no batch dimension; leave batch_size as None")
            return None
        if batch_size is None:
            return self.default_batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)

    def _dtype(self, dtype: Any) -> str:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
        if name not in self.dtypes:
            raise ValueError(f"{self.name} runs in {' or '.join(self.dtypes)}, not {dtype!r}")
        return name
