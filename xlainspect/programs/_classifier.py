"""``Classifier``: a model the training-step programs share, written in JAX, in TF and in numpy with its backward pass.

A classifier maps a batch of examples to logits and is trained with softmax cross-entropy on integer labels (or, with
one logit, sigmoid cross-entropy on 0/1 labels). The step programs (``sgd.py``, ``dpsgd.py``) are generic over it;
the models themselves are in ``logreg.py``, ``ffnn.py``, ``mnist_cnn.py``, ``cifar10_cnn.py``, ``embedding.py`` and
``lstm.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xlainspect.programs._program import InputSpec
from xlainspect.programs._sampling import Labels, Sampler, StandardNormal
from xlainspect.programs._torch import Layout

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
        loss: ``softmax`` (cross-entropy over ``num_classes`` logits, integer labels) or ``sigmoid`` (binary
            cross-entropy of one logit against 0/1 labels, logistic regression's).
        data_dtype: the element type of ``x`` when it is not the program's float type (``int32`` token ids).
        tf_per_example: how TF computes per-example gradients in the DP-SGD step: ``vectorized_map`` (the seed's
            way), or ``map_fn`` (a ``tf.while_loop`` over the examples) for a model whose vectorized gradients XLA
            cannot compile; ``tf_per_example_why`` then says why, for the program's description and docs.
        torch_model: builds the model as ``torch.nn`` layers (Opacus' hooks know them) with, per parameter in
            :attr:`parameters`' order, where it lives in that model (see :mod:`xlainspect.programs._torch`).
        torch_xla_dp_unavailable: why PyTorch/XLA cannot run the model's DP-SGD step, when it cannot; "" when it can.
    """

    name: str
    parameters: tuple[ParameterSpec, ...]
    example_shape: tuple[int, ...]
    num_classes: int
    data: Sampler
    jax_logits: Callable[[Params, Any], Any]
    tf_logits: Callable[[Params, Any], Any]
    numpy_loss_and_grads: Callable[[Params, np.ndarray, np.ndarray], tuple[float, tuple[np.ndarray, ...]]]
    loss: Literal["softmax", "sigmoid"] = "softmax"
    data_dtype: str | None = None
    tf_per_example: Literal["vectorized_map", "map_fn"] = "vectorized_map"
    tf_per_example_why: str = ""
    torch_model: Callable[[], tuple[Any, tuple[Layout, ...]]] | None = None
    torch_xla_dp_unavailable: str = ""

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters)

    def input_specs(self, batch_size: int, with_noise: bool) -> tuple[InputSpec, ...]:
        """Parameters, then ``x`` and ``y``, then (for DP-SGD) one standard-normal ``noise_<param>`` per parameter."""
        specs = [InputSpec(p.name, p.shape, "parameter", p.sampler) for p in self.parameters]
        specs.append(InputSpec("x", (batch_size, *self.example_shape), "data", self.data, self.data_dtype))
        specs.append(InputSpec("y", (batch_size,), "label", Labels(max(self.num_classes, 2))))
        if with_noise:
            specs.extend(InputSpec(f"noise_{p.name}", p.shape, "noise", StandardNormal()) for p in self.parameters)
        return tuple(specs)

    def jax_loss(self, params: Params, x: Any, y: Any) -> Any:
        """Mean softmax (or sigmoid) cross-entropy of the batch, in JAX."""
        import jax
        import jax.numpy as jnp

        if self.loss == "sigmoid":
            # The seed's own form (jaxdp.py): z - z y + m + log(exp(-m) + exp(-z - m)) with m = max(z, 0). Kept as
            # the seed wrote it, overflow included: below z = -88 in float32, exp(-z - m) is inf and so is the loss
            # (m = max(-z, 0) would not overflow). The programs' logits stay far from there.
            z = self.jax_logits(params, x)[:, 0]
            m = jnp.maximum(z, 0.0)
            return jnp.mean(z - z * y.astype(z.dtype) + m + jnp.log(jnp.exp(-m) + jnp.exp(-z - m)))
        log_probs = jax.nn.log_softmax(self.jax_logits(params, x))
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))

    def tf_loss(self, params: Params, x: Any, y: Any) -> Any:
        """Mean softmax (or sigmoid) cross-entropy of the batch, in TF (the fused ops Keras' losses use)."""
        import tensorflow as tf

        logits = self.tf_logits(params, x)
        if self.loss == "sigmoid":
            z = logits[:, 0]
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y, z.dtype), logits=z))
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
