"""``Classifier``: a model the training-step programs share, written in JAX, in TF and in numpy with its backward pass.

A classifier maps a batch of examples to logits and is trained with softmax cross-entropy on integer labels. The
step programs (``sgd.py``, ``dpsgd.py``) are generic over it; the models themselves are in ``ffnn.py`` and
``mnist_cnn.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xlainspect.programs._program import InputSpec
from xlainspect.programs._sampling import Labels, Sampler, StandardNormal

Params = Sequence[Any]


@dataclass(frozen=True)
class ParameterSpec:
    """One trainable parameter: name, shape and how it is initialized."""

    name: str
    shape: tuple[int, ...]
    sampler: Sampler


@dataclass(frozen=True)
class Classifier:
    """A classifier in three implementations over one parameter layout.

    Attributes:
        name: short model name, used in program names (``ffnn``, ``mnist``).
        parameters: the trainable parameters, in the order every implementation takes them.
        example_shape: the shape of one example (NHWC without N for images).
        num_classes: number of classes (logits per example).
        data: how example features are drawn.
        jax_logits: ``(params, x) -> logits`` in JAX, for a batch ``x``.
        tf_logits: the same in TF, with ``tf.*`` ops only.
        numpy_loss_and_grads: ``(params, x, y) -> (loss, grads)`` in float64 numpy, the loss averaged over the
            batch and the gradients computed by an explicit backward pass.
    """

    name: str
    parameters: tuple[ParameterSpec, ...]
    example_shape: tuple[int, ...]
    num_classes: int
    data: Sampler
    jax_logits: Callable[[Params, Any], Any]
    tf_logits: Callable[[Params, Any], Any]
    numpy_loss_and_grads: Callable[[Params, np.ndarray, np.ndarray], tuple[float, tuple[np.ndarray, ...]]]

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters)

    def input_specs(self, batch_size: int, with_noise: bool) -> tuple[InputSpec, ...]:
        """Parameters, then ``x`` and ``y``, then (for DP-SGD) one standard-normal ``noise_<param>`` per parameter."""
        specs = [InputSpec(p.name, p.shape, "parameter", p.sampler) for p in self.parameters]
        specs.append(InputSpec("x", (batch_size, *self.example_shape), "data", self.data))
        specs.append(InputSpec("y", (batch_size,), "label", Labels(self.num_classes)))
        if with_noise:
            specs.extend(InputSpec(f"noise_{p.name}", p.shape, "noise", StandardNormal()) for p in self.parameters)
        return tuple(specs)

    def jax_loss(self, params: Params, x: Any, y: Any) -> Any:
        """Mean softmax cross-entropy of the batch, in JAX."""
        import jax
        import jax.numpy as jnp

        log_probs = jax.nn.log_softmax(self.jax_logits(params, x))
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))

    def tf_loss(self, params: Params, x: Any, y: Any) -> Any:
        """Mean softmax cross-entropy of the batch, in TF (the fused op Keras' sparse cross-entropy uses)."""
        import tensorflow as tf

        logits = self.tf_logits(params, x)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
