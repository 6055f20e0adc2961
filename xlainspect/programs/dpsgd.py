"""One DP-SGD step of a classifier, and per-example gradient clipping in JAX, TF and numpy.

The step, as the seed paper (after Abadi et al.) defines it: per-example gradients; each example's gradient scaled by
``1 / max(1, ||g|| / C)``, where ``||g||`` is the global L2 norm over *all* parameters of that example; summed over
the batch; Gaussian noise N(0, (sigma C)^2) added per parameter; divided by the batch size B; then
``param - lr * that``.

The noise is an input (standard-normal arrays shaped like the parameters, drawn by numpy) that the step scales by
``sigma * C``, rather than drawn by each framework's generator, so the two frameworks compute exactly the same
function and can be compared number for number. A dump therefore has no random-key handling, which the seed's JAX
GPU dump spent about half its kernels on; keep that in mind when comparing with the paper's kernel counts.

Per-example gradients come from ``jax.vmap(jax.grad(...))`` in JAX and from ``tf.vectorized_map`` over a
per-example ``tf.GradientTape`` in TF, both inside the compiled function, as in the seed; the ablation's
``Variant(vectorize=False)`` loops over the examples instead (see ``xlainspect.programs.variants``). TF's vectorizer has no
batched rule for a convolution's filter gradient when the input varies per example (``Conv2DBackpropFilter``): it
logs "uses a while_loop. Fix that!" and emits a loop over the batch, so the CNN's TF module holds ``while`` loops
where JAX's holds batched convolutions. That is TF's own behaviour, which the seed's TF numbers include. For the
LSTM, whose loop's vectorized gradients XLA cannot compile at all, TF's step loops over the examples with
``tf.map_fn`` (``Classifier.tf_per_example``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xlainspect.programs._classifier import Classifier
from xlainspect.programs._frameworks import import_jax, import_tf, jax_jit, tf_jit
from xlainspect.programs._program import InputSpec
from xlainspect.programs._torch import TorchStep
from xlainspect.programs._torch import dpsgd_step as dpsgd_torch
from xlainspect.programs.variants import DEFAULT, Variant

# -- clipping ---------------------------------------------------------------------------------------------------------
# Each takes one array per parameter, with the examples along axis 0, and returns them clipped. The published JAX
# code first divided by clip(norm / C, max=1), which scaled gradients within C *up* to norm C and left larger ones
# unclipped. Here the factor is 1 / max(1, norm / C): a gradient within C is multiplied by exactly 1.0 and stays as
# it is, and a zero gradient needs no division by its norm.


def global_norms_numpy(grads: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example L2 norm over all parameters: shape (B,)."""
    return np.sqrt(sum(np.sum(np.reshape(g, (g.shape[0], -1)) ** 2, axis=1) for g in grads))


def clip_numpy(grads: Sequence[np.ndarray], clip_norm: float) -> list[np.ndarray]:
    """Per-example gradients scaled so that each example's global norm is at most ``clip_norm``."""
    scale = 1.0 / np.maximum(1.0, global_norms_numpy(grads) / clip_norm)
    return [g * scale.reshape((-1,) + (1,) * (g.ndim - 1)).astype(g.dtype) for g in grads]


def clip_jax(grads: Sequence[Any], clip_norm: float) -> list[Any]:
    """:func:`clip_numpy` in JAX; traceable, so the DP-SGD step calls it inside ``jax.jit``."""
    jnp = import_jax().numpy
    norms = jnp.sqrt(sum(jnp.sum(jnp.reshape(g, (g.shape[0], -1)) ** 2, axis=1) for g in grads))
    scale = 1.0 / jnp.maximum(1.0, norms / clip_norm)
    return [g * jnp.reshape(scale, (-1,) + (1,) * (g.ndim - 1)) for g in grads]


def clip_tf(grads: Sequence[Any], clip_norm: float) -> list[Any]:
    """:func:`clip_numpy` in TF; works eagerly and inside ``tf.function(jit_compile=True)``."""
    tf = import_tf()
    grads = [tf.convert_to_tensor(g) for g in grads]
    norms = tf.sqrt(tf.add_n([tf.reduce_sum(tf.reshape(g, (tf.shape(g)[0], -1)) ** 2, axis=1) for g in grads]))
    scale = 1.0 / tf.maximum(tf.ones_like(norms), norms / clip_norm)
    return [g * tf.reshape(scale, [-1] + [1] * (g.shape.rank - 1)) for g in grads]


# -- the step ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DpsgdStep:
    """The DP-SGD step of ``model`` as a program implementation.

    Inputs: the parameters, ``x``, ``y``, then ``noise_<param>`` (standard normal) per parameter. Hyperparameters:
    ``C`` (clipping norm), ``sigma`` (noise multiplier), ``lr``.
    """

    model: Classifier
    per_example_gradients = True  # so the ablation's vectorize=False means something here

    def unavailable(self, framework: str) -> str:
        """Why ``framework`` cannot run this step ("" when it can)."""
        return self.model.torch_xla_dp_unavailable if framework == "torch_xla" else ""

    @property
    def function_name(self) -> str:
        return f"dpsgd_{self.model.name}_step"

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.model.parameters)

    def input_specs(self, batch_size: int | None) -> tuple[InputSpec, ...]:
        assert batch_size is not None, "Program resolves the default batch size"
        return self.model.input_specs(batch_size, with_noise=True)

    def jax_function(self, hyperparameters: Mapping[str, float],
                     variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        jax = import_jax()
        model, n = self.model, len(self.model.parameters)
        clip_norm, noise_scale, lr = _constants(hyperparameters)

        def example_loss(params: tuple[Any, ...], x: Any, y: Any) -> Any:
            return model.jax_loss(params, x[None], y[None])

        example_grad = jax.grad(example_loss)
        if variant.vectorize:
            per_example_grads = jax.vmap(example_grad, in_axes=(None, 0, 0))
        else:
            def per_example_grads(params: tuple[Any, ...], x: Any, y: Any) -> list[Any]:
                # The seed's --no_vmap: one gradient per example in a Python loop, stacked per parameter.
                grads = [example_grad(params, x[i], y[i]) for i in range(x.shape[0])]
                return [jax.numpy.stack(per_param) for per_param in zip(*grads)]

        def step(*args: Any) -> tuple[Any, ...]:
            params, x, y, noise = tuple(args[:n]), args[n], args[n + 1], args[n + 2:]
            clipped = clip_jax(per_example_grads(params, x, y), clip_norm)
            batch = x.shape[0]
            return tuple(p - lr * ((g.sum(axis=0) + noise_scale * z) / batch)
                         for p, g, z in zip(params, clipped, noise))

        return jax_jit(step, self.function_name, variant.compiled)

    def tf_function(self, hyperparameters: Mapping[str, float],
                    variant: Variant = DEFAULT) -> Callable[..., tuple[Any, ...]]:
        tf = import_tf()
        model, n = self.model, len(self.model.parameters)
        clip_norm, noise_scale, lr = _constants(hyperparameters)

        def step(*args: Any) -> tuple[Any, ...]:
            params, x, y, noise = list(args[:n]), args[n], args[n + 1], args[n + 2:]

            def example_grads(example: tuple[Any, Any]) -> list[Any]:
                xi, yi = example
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    loss = model.tf_loss(params, tf.expand_dims(xi, 0), tf.expand_dims(yi, 0))
                # An embedding's gradient comes as IndexedSlices; an example's gradient is a dense array here, as
                # it is in JAX, and clipping needs its norm.
                return [tf.convert_to_tensor(g) for g in tape.gradient(loss, params)]

            if variant.vectorize and model.tf_per_example == "map_fn":
                # The model's vectorized gradients do not compile (see Classifier.tf_per_example_why): a while
                # loop over the examples inside the compiled step, what TF's own fallback would run.
                grads = tf.map_fn(example_grads, (x, y), fn_output_signature=[p.dtype for p in params])
            elif variant.vectorize:
                # No silent fallback to a while loop: the seed's point is that the per-example gradients vectorize.
                grads = tf.vectorized_map(example_grads, (x, y), fallback_to_while_loop=False)
            else:  # the seed's --no_vmap: a Python loop over the examples, stacked per parameter
                looped = [example_grads((x[i], y[i])) for i in range(x.shape[0])]
                grads = [tf.stack(per_param) for per_param in zip(*looped)]
            clipped = clip_tf(grads, clip_norm)
            batch = x.shape[0]
            return tuple(p - lr * ((tf.reduce_sum(g, axis=0) + noise_scale * z) / batch)
                         for p, g, z in zip(params, clipped, noise))

        return tf_jit(step, self.function_name, variant.compiled)

    def torch_step(self, hyperparameters: Mapping[str, float], framework: str, dtype: str,
                   batch_size: int) -> TorchStep:
        """The step in eager PyTorch with Opacus (``torch``) or compiled by PyTorch/XLA (``torch_xla``).

        Raises:
            ValueError: PyTorch/XLA for a model whose DP-SGD step it cannot compile (the message says why).
        """
        if framework == "torch_xla" and self.model.torch_xla_dp_unavailable:
            raise ValueError(f"{self.function_name} under torch_xla: {self.model.torch_xla_dp_unavailable}")
        clip_norm, _, lr = _constants(hyperparameters)
        return dpsgd_torch(self.model, framework, clip_norm, float(hyperparameters["sigma"]), lr, dtype, batch_size,
                           self.function_name)

    def reference(self, hyperparameters: Mapping[str, float],
                  inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        clip_norm, noise_scale, lr = _constants(hyperparameters)
        params = [inputs[p.name] for p in self.model.parameters]
        x, y = inputs["x"], inputs["y"]
        grads = per_example_grads_numpy(self.model, params, x, y)
        clipped = clip_numpy(grads, clip_norm)
        batch = x.shape[0]
        return tuple(p - lr * ((g.sum(axis=0) + noise_scale * inputs[f"noise_{spec.name}"]) / batch)
                     for p, g, spec in zip(params, clipped, self.model.parameters))


def per_example_grads_numpy(model: Classifier, params: Sequence[np.ndarray], x: np.ndarray,
                            y: np.ndarray) -> list[np.ndarray]:
    """Each example's gradient, one example at a time, stacked per parameter along a new axis 0."""
    per_example = [model.numpy_loss_and_grads(params, x[i:i + 1], y[i:i + 1])[1] for i in range(x.shape[0])]
    return [np.stack(grads) for grads in zip(*per_example)]


def _constants(hyperparameters: Mapping[str, float]) -> tuple[float, float, float]:
    """``C``, ``sigma * C`` (the noise's standard deviation) and ``lr``, as Python floats."""
    clip_norm = float(hyperparameters["C"])
    return clip_norm, float(hyperparameters["sigma"]) * clip_norm, float(hyperparameters["lr"])
