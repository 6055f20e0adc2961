"""The seed's CIFAR10 CNN (605,226 parameters), in JAX, TF and float64 numpy.

Seven 3x3 SAME convolutions with ReLU, channels 32, 32 | AvgPool(2, stride 2) | 64, 64 | AvgPool | 128, 128 |
AvgPool | 256, then a last 3x3 SAME convolution to 10 channels (no ReLU) whose mean over height and width gives the
logits (the seed's ``jaxdp.py``, Haiku). Images are 32x32x3 NHWC; spatial sizes 32 -> 16 -> 8 -> 4. Weights are HWIO.
It is the seed's biggest model, and the one where per-example filter gradients cost the most.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import CONV, Layout, mean_over, to_nchw
from xlainspect.programs._sampling import GlorotUniform, Uniform

IMAGE = (32, 32, 3)
CLASSES = 10
POOL = "pool"  # a 2x2 average pool with stride 2
# Output channels of the convolutions, in order, and where the pools are.
LAYOUT: tuple[int | str, ...] = (32, 32, POOL, 64, 64, POOL, 128, 128, POOL, 256, CLASSES)
_BIAS = Uniform(-0.1, 0.1)


def _convolutions() -> list[tuple[int, int]]:
    """(input channels, output channels) of each convolution, in order."""
    shapes, channels = [], IMAGE[-1]
    for out in LAYOUT:
        if out != POOL:
            shapes.append((channels, int(out)))
            channels = int(out)
    return shapes


def _jax_logits(params: Params, x: Any) -> Any:
    import jax
    from jax import lax

    dims = ("NHWC", "HWIO", "NHWC")
    layers, h = iter(zip(params[0::2], params[1::2])), x
    for out in LAYOUT:
        if out == POOL:
            # A Python 0.0, not an array: JAX then recognises a sum-pool it can differentiate, as flax's avg_pool.
            h = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4.0
            continue
        w, b = next(layers)
        h = lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=dims) + b
        if out != CLASSES:
            h = jax.nn.relu(h)
    return h.mean(axis=(1, 2))


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    layers, h = iter(zip(params[0::2], params[1::2])), x
    for out in LAYOUT:
        if out == POOL:
            h = tf.nn.avg_pool2d(h, ksize=2, strides=2, padding="VALID")
            continue
        w, b = next(layers)
        h = tf.nn.conv2d(h, w, strides=1, padding="SAME") + b
        if out != CLASSES:
            h = tf.nn.relu(h)
    return tf.reduce_mean(h, axis=(1, 2))


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    tape: list[tuple[str, Any]] = []  # what each layer's backward needs, in forward order
    layers, h = iter(zip(params[0::2], params[1::2])), x
    for out in LAYOUT:
        if out == POOL:
            tape.append(("pool", h.shape))
            h = nl.avg_pool(h, 2, 2)
            continue
        w, b = next(layers)
        z, cache = nl.conv2d(h, w, b, stride=1, padding="SAME")
        tape.append(("conv", (cache, z if out != CLASSES else None)))
        h = nl.relu(z) if out != CLASSES else z
    logits = h.mean(axis=(1, 2))
    loss, dlogits = nl.softmax_cross_entropy(logits, y)

    dh = np.broadcast_to(dlogits[:, None, None, :] / (h.shape[1] * h.shape[2]), h.shape)
    grads: list[np.ndarray] = []
    for kind, saved in reversed(tape):
        if kind == "pool":
            dh = nl.avg_pool_backward(dh, saved, 2, 2)
            continue
        cache, z = saved
        dz = nl.relu_backward(dh, z) if z is not None else dh
        dh, dw, db = nl.conv2d_backward(dz, cache)
        grads[:0] = [dw, db]
    return loss, tuple(grads)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    from torch import nn

    layers, layouts, cin = [to_nchw()], [], IMAGE[2]
    for out in LAYOUT:
        if out == POOL:
            layers.append(nn.AvgPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(cin, out, 3, padding=1))  # 3x3 SAME, stride 1: one on each side
        layouts += [Layout(f"{len(layers) - 1}.weight", CONV), Layout(f"{len(layers) - 1}.bias")]
        if out != CLASSES:
            layers.append(nn.ReLU())
        cin = out
    layers.append(mean_over(2, 3))
    return nn.Sequential(*layers), tuple(layouts)


CIFAR10_CNN = Classifier(
    name="cifar10",
    parameters=tuple(
        spec
        for k, (cin, cout) in enumerate(_convolutions(), start=1)
        for spec in (ParameterSpec(f"conv{k}_w", (3, 3, cin, cout), GlorotUniform(9 * cin, 9 * cout)),
                     ParameterSpec(f"conv{k}_b", (cout,), _BIAS))
    ),
    example_shape=IMAGE,
    num_classes=CLASSES,
    data=Uniform(0.0, 1.0),  # pixel intensities scaled to [0, 1]
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    torch_model=_torch_model,
)
