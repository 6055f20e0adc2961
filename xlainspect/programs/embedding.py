"""The seed's IMDb embedding model: Embed(10,004, 16) over 256 tokens, mean over time, Linear(16)-ReLU-Linear(2).

Inputs are int32 token ids. A per-example gradient of the embedding table is a dense ``10,004 x 16`` array with at
most 256 non-zero rows, so a DP-SGD step that materialises every example's gradient holds ``B x 10,004 x 16``
floats where the data it was computed from is ``B x 256``: whether XLA (or the framework before it) avoids that is
this model's question. The table is looked up with a gather (``jnp.take``, ``tf.gather``), whose gradient is a
scatter-add (``tf.gather``'s is ``IndexedSlices``, which the steps turn dense).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import LINEAR, Layout, mean_over
from xlainspect.programs._sampling import GlorotUniform, Tokens, Uniform

VOCABULARY = 10_004  # the 10,000 most frequent words and 4 reserved ids
SEQUENCE = 256
DIM = 16
HIDDEN = 16
CLASSES = 2
_BIAS = Uniform(-0.1, 0.1)


def _jax_logits(params: Params, x: Any) -> Any:
    import jax
    import jax.numpy as jnp

    table, w1, b1, w2, b2 = params
    pooled = jnp.take(table, x, axis=0).mean(axis=1)
    return jax.nn.relu(pooled @ w1 + b1) @ w2 + b2


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    table, w1, b1, w2, b2 = params
    pooled = tf.reduce_mean(tf.gather(table, x), axis=1)
    return tf.matmul(tf.nn.relu(tf.matmul(pooled, w1) + b1), w2) + b2


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    table, w1, b1, w2, b2 = params
    pooled = table[x].mean(axis=1)
    h = nl.dense(pooled, w1, b1)
    a = nl.relu(h)
    loss, dlogits = nl.softmax_cross_entropy(nl.dense(a, w2, b2), y)
    da, dw2, db2 = nl.dense_backward(dlogits, a, w2)
    dpooled, dw1, db1 = nl.dense_backward(nl.relu_backward(da, h), pooled, w1)
    dlooked_up = np.broadcast_to(dpooled[:, None, :] / x.shape[1], (*x.shape, table.shape[1]))
    return loss, (nl.embedding_backward(dlooked_up, x, table.shape[0]), dw1, db1, dw2, db2)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    from torch import nn

    model = nn.Sequential(nn.Embedding(VOCABULARY, DIM), mean_over(1), nn.Linear(DIM, HIDDEN), nn.ReLU(),
                          nn.Linear(HIDDEN, CLASSES))
    return model, (Layout("0.weight"), Layout("2.weight", LINEAR), Layout("2.bias"), Layout("4.weight", LINEAR),
                   Layout("4.bias"))


EMBEDDING = Classifier(
    name="embedding",
    parameters=(
        ParameterSpec("embedding", (VOCABULARY, DIM), Uniform(-0.05, 0.05)),  # Keras' Embedding initializer
        ParameterSpec("dense1_w", (DIM, HIDDEN), GlorotUniform(DIM, HIDDEN)),
        ParameterSpec("dense1_b", (HIDDEN,), _BIAS),
        ParameterSpec("dense2_w", (HIDDEN, CLASSES), GlorotUniform(HIDDEN, CLASSES)),
        ParameterSpec("dense2_b", (CLASSES,), _BIAS),
    ),
    example_shape=(SEQUENCE,),
    num_classes=CLASSES,
    data=Tokens(VOCABULARY),
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    data_dtype="int32",
    torch_model=_torch_model,
)
