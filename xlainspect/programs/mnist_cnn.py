"""The seed's MNIST CNN (26,010 parameters), in JAX, TF and float64 numpy.

Conv(16, 8x8, stride 2, SAME)-ReLU-MaxPool(2, stride 1, VALID)-Conv(32, 4x4, stride 2, VALID)-ReLU-
MaxPool(2, stride 1, VALID)-Flatten(512)-Linear(32)-ReLU-Linear(10) on 28x28x1 NHWC images. Convolution weights are
HWIO, dense weights ``(in, out)``; the flatten is row-major over (H, W, C) on every side. Spatial sizes:
28 -> 14 (conv1) -> 13 (pool) -> 5 (conv2) -> 4 (pool), so the flatten has 4 * 4 * 32 = 512 features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import CONV, LINEAR, Layout, flatten_nhwc, max_pool, to_nchw
from xlainspect.programs._sampling import GlorotUniform, Uniform

IMAGE = (28, 28, 1)
CLASSES = 10
_FLAT = 4 * 4 * 32
_BIAS = Uniform(-0.1, 0.1)


def _conv_init(kh: int, kw: int, cin: int, cout: int) -> GlorotUniform:
    # Keras' Glorot fans for a convolution count the receptive field on both sides.
    return GlorotUniform(kh * kw * cin, kh * kw * cout)


def _jax_logits(params: Params, x: Any) -> Any:
    import jax
    import jax.numpy as jnp
    from jax import lax

    c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = params
    dims = ("NHWC", "HWIO", "NHWC")

    def max_pool(h: Any) -> Any:
        # A Python -inf, not an array: only with a constant initial value does JAX recognise a max-pool it can
        # differentiate (select-and-scatter), as flax's max_pool relies on.
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")

    h = jax.nn.relu(lax.conv_general_dilated(x, c1w, (2, 2), "SAME", dimension_numbers=dims) + c1b)
    h = max_pool(h)
    h = jax.nn.relu(lax.conv_general_dilated(h, c2w, (2, 2), "VALID", dimension_numbers=dims) + c2b)
    h = max_pool(h)
    h = h.reshape(h.shape[0], _FLAT)
    return jax.nn.relu(h @ d1w + d1b) @ d2w + d2b


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = params
    h = tf.nn.relu(tf.nn.conv2d(x, c1w, strides=2, padding="SAME") + c1b)
    h = tf.nn.max_pool2d(h, ksize=2, strides=1, padding="VALID")
    h = tf.nn.relu(tf.nn.conv2d(h, c2w, strides=2, padding="VALID") + c2b)
    h = tf.nn.max_pool2d(h, ksize=2, strides=1, padding="VALID")
    h = tf.reshape(h, (-1, _FLAT))
    return tf.matmul(tf.nn.relu(tf.matmul(h, d1w) + d1b), d2w) + d2b


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = params
    z1, conv1 = nl.conv2d(x, c1w, c1b, stride=2, padding="SAME")
    p1, pool1 = nl.max_pool(nl.relu(z1), size=2, stride=1)
    z2, conv2 = nl.conv2d(p1, c2w, c2b, stride=2, padding="VALID")
    p2, pool2 = nl.max_pool(nl.relu(z2), size=2, stride=1)
    flat = p2.reshape(p2.shape[0], _FLAT)
    h = nl.dense(flat, d1w, d1b)
    a = nl.relu(h)
    logits = nl.dense(a, d2w, d2b)
    loss, dlogits = nl.softmax_cross_entropy(logits, y)

    da, dd2w, dd2b = nl.dense_backward(dlogits, a, d2w)
    dflat, dd1w, dd1b = nl.dense_backward(nl.relu_backward(da, h), flat, d1w)
    dz2 = nl.relu_backward(nl.max_pool_backward(dflat.reshape(p2.shape), pool2), z2)
    dp1, dc2w, dc2b = nl.conv2d_backward(dz2, conv2)
    dz1 = nl.relu_backward(nl.max_pool_backward(dp1, pool1), z1)
    _, dc1w, dc1b = nl.conv2d_backward(dz1, conv1)
    return loss, (dc1w, dc1b, dc2w, dc2b, dd1w, dd1b, dd2w, dd2b)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    from torch import nn

    # TF's SAME for conv1 (28 -> 14, kernel 8, stride 2) pads 3 on each side, which PyTorch's padding=3 is.
    model = nn.Sequential(to_nchw(), nn.Conv2d(1, 16, 8, stride=2, padding=3), nn.ReLU(), max_pool(2, 1),
                          nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(), max_pool(2, 1), flatten_nhwc(),
                          nn.Linear(_FLAT, 32), nn.ReLU(), nn.Linear(32, CLASSES))
    return model, (Layout("1.weight", CONV), Layout("1.bias"), Layout("4.weight", CONV), Layout("4.bias"),
                   Layout("8.weight", LINEAR), Layout("8.bias"), Layout("10.weight", LINEAR), Layout("10.bias"))


MNIST_CNN = Classifier(
    name="mnist",
    parameters=(
        ParameterSpec("conv1_w", (8, 8, 1, 16), _conv_init(8, 8, 1, 16)),
        ParameterSpec("conv1_b", (16,), _BIAS),
        ParameterSpec("conv2_w", (4, 4, 16, 32), _conv_init(4, 4, 16, 32)),
        ParameterSpec("conv2_b", (32,), _BIAS),
        ParameterSpec("dense1_w", (_FLAT, 32), GlorotUniform(_FLAT, 32)),
        ParameterSpec("dense1_b", (32,), _BIAS),
        ParameterSpec("dense2_w", (32, CLASSES), GlorotUniform(32, CLASSES)),
        ParameterSpec("dense2_b", (CLASSES,), _BIAS),
    ),
    example_shape=IMAGE,
    num_classes=CLASSES,
    data=Uniform(0.0, 1.0),  # pixel intensities scaled to [0, 1], as the seed fed MNIST
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    torch_model=_torch_model,
)
