"""The seed's logistic regression on Adult: Linear(104 -> 1), sigmoid cross-entropy on 0/1 labels.

The smallest of the seed's models (105 parameters): a DP-SGD step of it is almost all clipping and noise, which is
where the frameworks' fixed per-step costs show. Weights are ``(104, 1)`` applied as ``x @ w + b``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import LINEAR, Layout
from xlainspect.programs._sampling import GlorotUniform, StandardNormal, Uniform

FEATURES = 104


def _jax_logits(params: Params, x: Any) -> Any:
    w, b = params
    return x @ w + b


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    w, b = params
    return tf.matmul(x, w) + b


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    w, b = params
    z = nl.dense(x, w, b)
    loss, dz = nl.sigmoid_cross_entropy(z, y)
    _, dw, db = nl.dense_backward(dz, x, w)
    return loss, (dw, db)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    from torch import nn

    return nn.Sequential(nn.Linear(FEATURES, 1)), (Layout("0.weight", LINEAR), Layout("0.bias"))


LOGREG = Classifier(
    name="logreg",
    parameters=(
        ParameterSpec("dense_w", (FEATURES, 1), GlorotUniform(FEATURES, 1)),
        ParameterSpec("dense_b", (1,), Uniform(-0.1, 0.1)),
    ),
    example_shape=(FEATURES,),
    num_classes=1,
    data=StandardNormal(),  # as the FFNN's: Adult's standardized and one-hot features have this scale
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    loss="sigmoid",
    torch_model=_torch_model,
)
