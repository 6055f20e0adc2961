"""The seed's IMDb LSTM: Embed(10,004, 100), an LSTM(100) over 256 tokens, mean of its outputs over time, Linear(2).

The cell is the standard one (see ``_numpy_layers.lstm``): gates ``x_t wx + h wh + b`` in the order i, f, g, o, no
peepholes, zero initial states. Both frameworks run it as a loop over time that XLA sees as one ``while``:
``lax.scan`` in JAX, ``tf.while_loop`` (with ``maximum_iterations``, which XLA needs to differentiate it) in TF. The
seed unrolled the 256 steps in Python by default; a loop is what a compiler engineer would want to read, and it is
how both frameworks' own RNN layers run without unrolling.

TF's vectorizer cannot give XLA a loop's per-example gradients: ``tf.vectorized_map`` over a ``tf.while_loop``'s
gradient makes ``TensorListReserve`` ops with variant elements, which XLA rejects (TensorFlow issue #76891, open).
Unrolling the loop instead took 8.6 minutes to compile and 21 s a step at batch 8 on a 2-core CPU. So TF's DP-SGD
step of this model computes per-example gradients with ``tf.map_fn``, a ``while`` over the examples, which is what a
TF user is left with; JAX's ``vmap`` batches through the scan. That difference is part of what the dumps show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xlainspect.programs import _numpy_layers as nl
from xlainspect.programs._classifier import Classifier, ParameterSpec, Params
from xlainspect.programs._torch import LINEAR, Layout
from xlainspect.programs._sampling import GlorotUniform, Tokens, Uniform

VOCABULARY = 10_004
SEQUENCE = 256
DIM = 100
HIDDEN = 100
CLASSES = 2


@dataclass(frozen=True)
class ForgetBias:
    """U(-0.1, 0.1) for the LSTM's bias, plus 1 on the forget gate's quarter, as Keras' ``unit_forget_bias``
    initialises it, so that the cell carries its state from the first step."""

    hidden: int

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        bias = rng.uniform(-0.1, 0.1, size=shape)
        bias[self.hidden:2 * self.hidden] += 1.0
        return bias


def _jax_logits(params: Params, x: Any) -> Any:
    import jax
    import jax.numpy as jnp

    table, wx, wh, b, w, bo = params
    xs = jnp.transpose(jnp.take(table, x, axis=0), (1, 0, 2))  # time-major: (T, B, D)
    zeros = jnp.zeros((x.shape[0], HIDDEN), xs.dtype)

    def cell(carry: tuple[Any, Any, Any], x_t: Any) -> tuple[tuple[Any, Any, Any], None]:
        h, c, total = carry
        i, f, g, o = jnp.split(x_t @ wx + h @ wh + b, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c, total + h), None

    (_, _, total), _ = jax.lax.scan(cell, (zeros, zeros, zeros), xs)
    return (total / x.shape[1]) @ w + bo


def _tf_logits(params: Params, x: Any) -> Any:
    import tensorflow as tf

    table, wx, wh, b, w, bo = params
    xs = tf.transpose(tf.gather(table, x), (1, 0, 2))  # time-major: (T, B, D)
    zeros = tf.zeros((tf.shape(x)[0], HIDDEN), xs.dtype)
    steps = x.shape[1]

    def cell(t: Any, h: Any, c: Any, total: Any) -> tuple[Any, Any, Any, Any]:
        i, f, g, o = tf.split(tf.matmul(xs[t], wx) + tf.matmul(h, wh) + b, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return t + 1, h, c, total + h

    _, _, _, total = tf.while_loop(lambda t, *_: t < steps, cell, (tf.constant(0), zeros, zeros, zeros),
                                   maximum_iterations=steps)
    return tf.matmul(total / steps, w) + bo


def _numpy_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    table, wx, wh, b, w, bo = params
    xs = np.transpose(table[x], (1, 0, 2))
    hs, cache = nl.lstm(xs, wx, wh, b)
    pooled = hs.mean(axis=0)
    loss, dlogits = nl.softmax_cross_entropy(nl.dense(pooled, w, bo), y)
    dpooled, dw, dbo = nl.dense_backward(dlogits, pooled, w)
    dhs = np.broadcast_to(dpooled / hs.shape[0], hs.shape)
    dxs, dwx, dwh, db = nl.lstm_backward(dhs, cache)
    dtable = nl.embedding_backward(np.transpose(dxs, (1, 0, 2)), x, table.shape[0])
    return loss, (dtable, dwx, dwh, db, dw, dbo)


def _torch_model() -> tuple[Any, tuple[Layout, ...]]:
    import torch
    from opacus.layers.dp_rnn import RNNLinear
    from torch import nn

    class LstmModel(nn.Module):  # type: ignore[misc]
        """The cell as Opacus' DPLSTM writes it (``RNNLinear`` layers, whose per-sample gradients Opacus sums over
        the time steps), with one bias as JAX's and TF's cells have: on the input projection only."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCABULARY, DIM)
            self.ih = RNNLinear(DIM, 4 * HIDDEN, bias=True)
            self.hh = RNNLinear(HIDDEN, 4 * HIDDEN, bias=False)
            self.dense = nn.Linear(HIDDEN, CLASSES)

        def forward(self, x: Any) -> Any:
            xs = self.embedding(x)
            zeros = xs.new_zeros((x.shape[0], HIDDEN))
            if xs.device.type == "xla":
                # PyTorch/XLA's scan: one XLA while loop, as lax.scan and tf.while_loop give (a Python loop would
                # be traced into 256 copies of the cell, which XLA took minutes to compile). Its tracer takes no
                # tensors from outside the loop body, so the weights ride in the carry, unchanged.
                from torch_xla.experimental.scan import scan

                def step(carry: tuple[Any, ...], x_t: Any) -> tuple[tuple[Any, ...], Any]:
                    h, c, total, wx, b, wh = carry
                    h, c = _cell(x_t @ wx.t() + b + h @ wh.t(), c)
                    return (h, c, total + h, wx, b, wh), h

                carry, _ = scan(step, (zeros, zeros, zeros, self.ih.weight, self.ih.bias, self.hh.weight),
                                xs.transpose(0, 1))
                return self.dense(carry[2] / x.shape[1])
            h, c, total = zeros, zeros, zeros
            for t in range(x.shape[1]):  # eager: a Python loop, as Opacus' DPLSTM runs (RNNLinear sums the steps)
                h, c = _cell(self.ih(xs[:, t]) + self.hh(h), c)
                total = total + h
            return self.dense(total / x.shape[1])

    def _cell(gates: Any, c: Any) -> tuple[Any, Any]:
        i, f, g, o = torch.chunk(gates, 4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    return LstmModel(), (Layout("embedding.weight"), Layout("ih.weight", LINEAR), Layout("hh.weight", LINEAR),
                         Layout("ih.bias"), Layout("dense.weight", LINEAR), Layout("dense.bias"))


LSTM = Classifier(
    name="lstm",
    parameters=(
        ParameterSpec("embedding", (VOCABULARY, DIM), Uniform(-0.05, 0.05)),  # Keras' Embedding initializer
        ParameterSpec("lstm_wx", (DIM, 4 * HIDDEN), GlorotUniform(DIM, 4 * HIDDEN)),
        ParameterSpec("lstm_wh", (HIDDEN, 4 * HIDDEN), GlorotUniform(HIDDEN, 4 * HIDDEN)),
        ParameterSpec("lstm_b", (4 * HIDDEN,), ForgetBias(HIDDEN)),
        ParameterSpec("dense_w", (HIDDEN, CLASSES), GlorotUniform(HIDDEN, CLASSES)),
        ParameterSpec("dense_b", (CLASSES,), Uniform(-0.1, 0.1)),
    ),
    example_shape=(SEQUENCE,),
    num_classes=CLASSES,
    data=Tokens(VOCABULARY),
    jax_logits=_jax_logits,
    tf_logits=_tf_logits,
    numpy_loss_and_grads=_numpy_loss_and_grads,
    data_dtype="int32",
    tf_per_example="map_fn",
    tf_per_example_why="tf.vectorized_map over a tf.while_loop's gradient does not compile with XLA "
                       "(TensorListReserve of variants; TensorFlow issue #76891)",
    torch_model=_torch_model,
    torch_xla_dp_unavailable="PyTorch/XLA's loop (torch_xla.experimental.scan) cannot trace the tensors of functorch's "
                             "vmap and grad (its fake-tensor tracing asserts), and with the 256 steps unrolled the "
                             "per-example step at batch 128 is 1.6 million instructions (145 MB of optimized HLO) that "
                             "took 32 minutes to compile and dump on a 2-core machine",
)
