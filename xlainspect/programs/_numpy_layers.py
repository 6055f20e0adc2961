"""Layers in float64 numpy with hand-written backward passes: the reference the frameworks are checked against.

Nothing here calls a framework or an autodiff system, so a bug shared by JAX and TF (or by their common XLA) cannot
hide in the reference. Layouts match the framework sides: activations NHWC, dense weights ``(in, out)`` applied as
``x @ W + b``, convolution weights HWIO. Convolution goes through im2col (one matmul per layer) and its backward
through col2im; max-pool's backward routes each gradient to the window's first maximum, which is XLA's choice too
(ties only occur between zeros after a ReLU, whose gradient the ReLU drops anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x @ w + b`` for ``x`` of shape (N, in) and ``w`` of shape (in, out)."""
    return x @ w + b


def dense_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`dense` with respect to ``x``, ``w`` and ``b``, given the output's gradient ``dy``."""
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of ReLU at its input ``x``: zero at ``x == 0``, as in both frameworks."""
    return dy * (x > 0)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's (and XLA's) SAME padding of one spatial axis: the odd pixel, if any, goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _im2col(xp: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """Patches of padded NHWC ``xp`` as rows: (N, OH, OW, kh*kw*C), flattened in HWC order to match HWIO weights."""
    n, h, w, c = xp.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
    return cols.reshape(n, oh, ow, kh * kw * c)


def _col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], kh: int, kw: int, stride: int) -> np.ndarray:
    """Adjoint of :func:`_im2col`: adds each patch's gradient back onto the pixels it was read from."""
    n, oh, ow, _ = dcols.shape
    c = padded_shape[-1]
    dcols = dcols.reshape(n, oh, ow, kh, kw, c)
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :] += dcols[:, :, :, i, j, :]
    return dxp


@dataclass(frozen=True)
class ConvCache:
    """What :func:`conv2d_backward` needs from the forward pass."""

    cols: np.ndarray
    w: np.ndarray
    padded_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], tuple[int, int]]
    stride: int


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution (cross-correlation, as in both frameworks) of NHWC ``x`` with HWIO ``w``, plus ``b``.

    Args:
        padding: ``"SAME"`` or ``"VALID"``, with TF's meaning.
    """
    kh, kw, cin, cout = w.shape
    if padding == "SAME":
        pads = (same_padding(x.shape[1], kh, stride), same_padding(x.shape[2], kw, stride))
    elif padding == "VALID":
        pads = ((0, 0), (0, 0))
    else:
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    cols = _im2col(xp, kh, kw, stride)
    y = cols @ w.reshape(kh * kw * cin, cout) + b
    return y, ConvCache(cols, w, xp.shape, pads, stride)


def conv2d_backward(dy: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` with respect to ``x``, ``w`` and ``b``."""
    kh, kw, cin, cout = cache.w.shape
    rows = cache.cols.reshape(-1, kh * kw * cin)
    dy_rows = dy.reshape(-1, cout)
    dw = (rows.T @ dy_rows).reshape(cache.w.shape)
    db = dy_rows.sum(axis=0)
    dcols = dy @ cache.w.reshape(kh * kw * cin, cout).T
    dxp = _col2im(dcols, cache.padded_shape, kh, kw, cache.stride)
    (top, bottom), (left, right) = cache.pads
    dx = dxp[:, top:dxp.shape[1] - bottom, left:dxp.shape[2] - right, :]
    return dx, dw, db


@dataclass(frozen=True)
class PoolCache:
    """What :func:`max_pool_backward` needs: which window offset held each output's maximum."""

    argmax: np.ndarray
    input_shape: tuple[int, ...]
    size: int
    stride: int


def max_pool(x: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, PoolCache]:
    """VALID max-pooling of NHWC ``x`` over ``size`` x ``size`` windows."""
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    windows = np.stack([x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
                        for i in range(size) for j in range(size)])
    argmax = windows.argmax(axis=0)  # the first maximum in row-major window order
    y = np.take_along_axis(windows, argmax[None], axis=0)[0]
    return y, PoolCache(argmax, x.shape, size, stride)


def max_pool_backward(dy: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Gradient of :func:`max_pool`: each output's gradient goes to the input that was its maximum."""
    dx = np.zeros(cache.input_shape, dtype=dy.dtype)
    oh, ow = dy.shape[1], dy.shape[2]
    s = cache.stride
    for k in range(cache.size * cache.size):
        i, j = divmod(k, cache.size)
        dx[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :] += dy * (cache.argmax == k)
    return dx


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch for integer labels, and its gradient w.r.t. the logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1.0
    return float(loss), dlogits / n


def avg_pool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """VALID average-pooling of NHWC ``x`` over ``size`` x ``size`` windows (every window is whole, so no padding
    enters the average)."""
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    total = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for i in range(size):
        for j in range(size):
            total += x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
    return total / (size * size)


def avg_pool_backward(dy: np.ndarray, input_shape: tuple[int, ...], size: int, stride: int) -> np.ndarray:
    """Gradient of :func:`avg_pool`: each output's gradient is shared equally by its window's inputs."""
    dx = np.zeros(input_shape, dtype=dy.dtype)
    oh, ow = dy.shape[1], dy.shape[2]
    for i in range(size):
        for j in range(size):
            dx[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :] += dy / (size * size)
    return dx


def embedding_backward(dy: np.ndarray, tokens: np.ndarray, vocabulary: int) -> np.ndarray:
    """Gradient of the lookup ``table[tokens]`` with respect to ``table``: each row gathers the gradients of every
    position that read it (a token used twice gets both), and rows no token read stay zero."""
    dtable = np.zeros((vocabulary, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dtable, tokens.reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return dtable


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large negative inputs."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of one logit per example against 0/1 labels, and its gradient w.r.t. the logits.

    Written as ``max(z, 0) - z y + log(1 + exp(-|z|))``, a different (equally stable) form from the seed's, so that
    the frameworks' versions are checked against other arithmetic, not a transcription of their own.
    """
    z = logits.reshape(-1)
    y = labels.reshape(-1).astype(np.float64)
    loss = np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return float(loss), ((sigmoid(z) - y) / z.size).reshape(logits.shape)


@dataclass(frozen=True)
class LstmCache:
    """What :func:`lstm_backward` needs from the forward pass: inputs, states and gate activations per step."""

    xs: np.ndarray  # (T, N, D), time-major inputs
    hs: np.ndarray  # (T + 1, N, H), hs[0] the zero initial state
    cs: np.ndarray  # (T + 1, N, H)
    gates: np.ndarray  # (T, N, 4H): sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    wx: np.ndarray
    wh: np.ndarray


def lstm(xs: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, LstmCache]:
    """The standard LSTM cell run over time-major ``xs`` (T, N, D) from zero states; returns every ``h`` (T, N, H).

    Per step: ``a = x_t wx + h wh + b`` split into gates i, f, g, o (in that order along the last axis);
    ``c = sigmoid(f) c + sigmoid(i) tanh(g)``; ``h = sigmoid(o) tanh(c)``. No forget-gate bias is added inside the
    cell (Keras puts it in the bias's initial value instead; Haiku adds 1): the function is the bare cell.
    """
    steps, n, _ = xs.shape
    hidden = wh.shape[0]
    hs = np.zeros((steps + 1, n, hidden))
    cs = np.zeros((steps + 1, n, hidden))
    gates = np.empty((steps, n, 4 * hidden))
    for t in range(steps):
        a = xs[t] @ wx + hs[t] @ wh + b
        i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
        gates[t] = np.concatenate([sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)], axis=1)
        si, sf, tg, so = (gates[t][:, k * hidden:(k + 1) * hidden] for k in range(4))
        cs[t + 1] = sf * cs[t] + si * tg
        hs[t + 1] = so * np.tanh(cs[t + 1])
    return hs[1:], LstmCache(xs, hs, cs, gates, wx, wh)


def lstm_backward(dhs: np.ndarray, cache: LstmCache) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time for :func:`lstm`: gradients w.r.t. ``xs``, ``wx``, ``wh`` and ``b``, given the
    gradient ``dhs`` (T, N, H) of every output ``h``."""
    steps = dhs.shape[0]
    hidden = cache.wh.shape[0]
    dxs = np.zeros_like(cache.xs)
    dwx, dwh = np.zeros_like(cache.wx), np.zeros_like(cache.wh)
    db = np.zeros(4 * hidden)
    dh_next = np.zeros_like(cache.hs[0])
    dc_next = np.zeros_like(cache.cs[0])
    for t in reversed(range(steps)):
        si, sf, tg, so = (cache.gates[t][:, k * hidden:(k + 1) * hidden] for k in range(4))
        tc = np.tanh(cache.cs[t + 1])
        dh = dhs[t] + dh_next
        dc = dh * so * (1.0 - tc ** 2) + dc_next
        da = np.concatenate([dc * tg * si * (1.0 - si),  # input gate
                             dc * cache.cs[t] * sf * (1.0 - sf),  # forget gate
                             dc * si * (1.0 - tg ** 2),  # candidate
                             dh * tc * so * (1.0 - so)], axis=1)  # output gate
        dwx += cache.xs[t].T @ da
        dwh += cache.hs[t].T @ da
        db += da.sum(axis=0)
        dxs[t] = da @ cache.wx.T
        dh_next = da @ cache.wh.T
        dc_next = dc * sf
    return dxs, dwx, dwh, db
