"""One plain SGD step of a classifier: ``param - lr * mean gradient over the batch``.

The non-private baseline of the seed: the same model and data as the DP-SGD step, without per-example gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xlainspect.programs._classifier import Classifier
from xlainspect.programs._frameworks import import_jax, import_tf, jax_jit, tf_jit
from xlainspect.programs._program import InputSpec
from xlainspect.programs._torch import TorchStep
from xlainspect.programs._torch import sgd_step as sgd_torch
from xlainspect.programs.variants import DEFAULT, Variant


@dataclass(frozen=True)
class SgdStep:
    """The SGD step of ``model`` as a program implementation; inputs are the parameters, ``x`` and ``y``."""

    model: Classifier

    @property
    def function_name(self) -> str:
        return f"sgd_{self.model.name}_step"

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.model.parameters)

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]:
        assert batch_size is not None, "Program resolves the default batch size"
        return self.model.input_specs(batch_size, with_noise=False)

    def jax_function(self, hyperparameters: Mapping[str, float],
                     variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        jax = import_jax()
        model, n, lr = self.model, len(self.model.parameters), float(hyperparameters["lr"])

        def step(*args: Any) -> tuple[Any, ...]:
            params, x, y = tuple(args[:n]), args[n], args[n + 1]
            grads = jax.grad(model.jax_loss)(params, x, y)
            return tuple(p - lr * g for p, g in zip(params, grads))

        return jax_jit(step, self.function_name, variant.compiled)

    def tf_function(self, hyperparameters: Mapping[str, float],
                    variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        tf = import_tf()
        model, n, lr = self.model, len(self.model.parameters), float(hyperparameters["lr"])

        def step(*args: Any) -> tuple[Any, ...]:
            params, x, y = list(args[:n]), args[n], args[n + 1]
            with tf.GradientTape() as tape:
                tape.watch(params)  # plain tensors, not Variables: the tape must be told
                loss = model.tf_loss(params, x, y)
            # An embedding's gradient comes as IndexedSlices; the update is dense, as JAX's.
            grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, params)]
            return tuple(p - lr * g for p, g in zip(params, grads))

        return tf_jit(step, self.function_name, variant.compiled)

    def torch_step(self, hyperparameters: Mapping[str, float], framework: str, dtype: str,
                   batch_size: int) -> TorchStep:
        """The step in eager PyTorch (autograd, an in-place update) or compiled by PyTorch/XLA (``torch_xla``)."""
        return sgd_torch(self.model, framework, float(hyperparameters["lr"]), dtype, self.function_name)

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        params = [inputs[p.name] for p in self.model.parameters]
        _, grads = self.model.numpy_loss_and_grads(params, inputs["x"], inputs["y"])
        lr = hyperparameters["lr"]
        return tuple(p - lr * g for p, g in zip(params, grads))
