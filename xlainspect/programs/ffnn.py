"""The seed's Adult FFNN: Linear(104 -> 50)-ReLU-Linear(50 -> 2), in JAX, TF and float64 numpy.

Dense weights are ``(in, out)`` and applied as ``x @ W + b`` on every side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import LINEAR, Layout
from xlainspect.programs._sampling import GlorotUniform, StandardNormal, Uniform

FEATURES = 104
HIDDEN = 50
CLASSES = 2

_BIAS = Uniform(-0.1, 0.1)


def _jax_logits(params: Params, x: Any) -> Any:
    import jax

    w1, b1, w2, b2 = params
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    w1, b1, w2, b2 = params
    return tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    w1, b1, w2, b2 = params
    h = nl.dense(x, w1, b1)
    a = nl.relu(h)
    logits = nl.dense(a, w2, b2)
    loss, dlogits = nl.softmax_cross_entropy(logits, y)
    da, dw2, db2 = nl.dense_backward(dlogits, a, w2)
    _, dw1, db1 = nl.dense_backward(nl.relu_backward(da, h), x, w1)
    return loss, (dw1, db1, dw2, db2)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    from torch import nn

    model = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
    return model, (Layout("0.weight", LINEAR), Layout("0.bias"), Layout("2.weight", LINEAR), Layout("2.bias"))


FFNN = Classifier(
    name="ffnn",
    parameters=(
        ParameterSpec("dense1_w", (FEATURES, HIDDEN), GlorotUniform(FEATURES, HIDDEN)),
        ParameterSpec("dense1_b", (HIDDEN,), _BIAS),
        ParameterSpec("dense2_w", (HIDDEN, CLASSES), GlorotUniform(HIDDEN, CLASSES)),
        ParameterSpec("dense2_b", (CLASSES,), _BIAS),
    ),
    example_shape=(FEATURES,),
    num_classes=CLASSES,
    data=StandardNormal(),  # Adult's features are standardized or one-hot; N(0, 1) has their scale
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    torch_model=_torch_model,
)
