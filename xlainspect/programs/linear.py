"""The seed's two smallest cases on a 5x5 linear map: ``W @ x + b``, and the gradient of its mean squared error.

On these the seed's dumps already differ: for the gradient JAX emits one fusion and TF two, TF recomputing the
forward matvec in a kernel of its own. ``W`` is applied as ``W @ x`` (the seed's layout), not ``x @ W``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xlainspect.programs._frameworks import import_jax, import_tf, jax_jit, tf_jit
from xlainspect.programs._program import InputSpec
from xlainspect.programs._sampling import GlorotUniform, StandardNormal
from xlainspect.programs._torch import TorchStep, compiled, device, import_torch
from xlainspect.programs.variants import DEFAULT, Variant

SIZE = 5


def _linear_specs(with_target: bool) -> tuple[InputSpec, ...]:
    specs = [InputSpec("w", (SIZE, SIZE), "parameter", GlorotUniform(SIZE, SIZE)),
             InputSpec("b", (SIZE,), "parameter", StandardNormal()),
             InputSpec("x", (SIZE,), "data", StandardNormal())]
    if with_target:
        specs.append(InputSpec("y", (SIZE,), "data", StandardNormal()))
    return tuple(specs)


def _torch_step(framework: str, fn: Callable[..., tuple[Any, ...]], name: str, outputs: int) -> TorchStep:
    # The parameters keep their layout: W @ x is the same in PyTorch.
    return TorchStep(framework, name, compiled(framework, fn, name), {}, (None,) * outputs, device(framework))


def _no_batch(batch_size: int | None) -> None:
    assert batch_size is None, "Program rejects a batch size for programs without a batch"


@dataclass(frozen=True)
class Matvec:
    """``W @ x + b``: inputs ``w`` (5x5), ``b``, ``x`` (5); output ``y``."""

    @property
    def function_name(self) -> str:
        return "matvec"

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("y",)

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]:
        _no_batch(batch_size)
        return _linear_specs(with_target=False)

    def jax_function(self, hyperparameters: Mapping[str, float],
                     variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        import_jax()

        def matvec(w: Any, b: Any, x: Any) -> tuple[Any]:
            return (w @ x + b,)

        return jax_jit(matvec, self.function_name, variant.compiled)

    def tf_function(self, hyperparameters: Mapping[str, float],
                    variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        tf = import_tf()

        def matvec(w: Any, b: Any, x: Any) -> tuple[Any]:
            return (tf.linalg.matvec(w, x) + b,)

        return tf_jit(matvec, self.function_name, variant.compiled)

    def torch_step(self, hyperparameters: Mapping[str, float], framework: str, dtype: str,
                   batch_size: int | None) -> TorchStep:
        def matvec(w: Any, b: Any, x: Any) -> tuple[Any]:
            return (w @ x + b,)

        return _torch_step(framework, matvec, self.function_name, 1)

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        return (inputs["w"] @ inputs["x"] + inputs["b"],)


@dataclass(frozen=True)
class LinearGrad:
    """Gradients of ``mean((W @ x + b - y) ** 2)`` w.r.t. ``W`` and ``b``; outputs ``grad_w``, ``grad_b``."""

    @property
    def function_name(self) -> str:
        return "linear_grad"

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("grad_w", "grad_b")

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]:
        _no_batch(batch_size)
        return _linear_specs(with_target=True)

    def jax_function(self, hyperparameters: Mapping[str, float],
                     variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        jax = import_jax()

        def loss(w: Any, b: Any, x: Any, y: Any) -> Any:
            return jax.numpy.mean((w @ x + b - y) ** 2)

        def linear_grad(w: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
            return jax.grad(loss, argnums=(0, 1))(w, b, x, y)

        return jax_jit(linear_grad, self.function_name, variant.compiled)

    def tf_function(self, hyperparameters: Mapping[str, float],
                    variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        tf = import_tf()

        def linear_grad(w: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch([w, b])
                loss = tf.reduce_mean((tf.linalg.matvec(w, x) + b - y) ** 2)
            grad_w, grad_b = tape.gradient(loss, [w, b])
            return grad_w, grad_b

        return tf_jit(linear_grad, self.function_name, variant.compiled)

    def torch_step(self, hyperparameters: Mapping[str, float], framework: str, dtype: str,
                   batch_size: int | None) -> TorchStep:
        torch = import_torch()

        def linear_grad(w: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
            if framework == "torch":  # eager autograd, as a PyTorch user writes it
                w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
                grad_w, grad_b = torch.autograd.grad(((w @ x + b - y) ** 2).mean(), (w, b))
                return grad_w, grad_b
            return torch.func.grad(lambda w, b: ((w @ x + b - y) ** 2).mean(), argnums=(0, 1))(w, b)

        return _torch_step(framework, linear_grad, self.function_name, 2)

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        w, b, x, y = (inputs[name] for name in ("w", "b", "x", "y"))
        dresidual = 2.0 * (w @ x + b - y) / SIZE  # d mean(r**2) / dr
        return np.outer(dresidual, x), dresidual
