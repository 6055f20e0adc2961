"""Build one large, real, optimized XLA HLO module for parser benchmarks.

Parser speed only means something on input that looks like what users feed
the parser: the optimized HLO that XLA actually emits, with fusions, layouts,
``metadata=`` and ``backend_config=`` attributes and long tuple shapes. Tiny
hand-written modules hide the costs that dominate on real programs, so this
module asks JAX to compile one full training step (loss, gradient and SGD
update) of a decoder-only transformer on CPU and returns
``compiled.as_text()``.

The layers are unrolled with a Python ``for`` loop (not ``lax.scan``) so the
module grows linearly with the layer count; the count is chosen from two small
probe builds so that the text reaches the requested size. Tensor sizes are
kept tiny because they do not change the length of the HLO text, only the
compile time, and inputs are ``jax.ShapeDtypeStruct`` so no arrays are
allocated.

Usage::

    python bench/big_module.py OUT.txt [--min-mb 15]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TextIO

# Compiles for the CPU only: with jax's CUDA plugin installed (make install-gpu) and no GPU, a plain jax start prints
# a cuInit traceback before falling back to the CPU. An explicit JAX_PLATFORMS is left alone.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (after JAX_PLATFORMS)
import jax.numpy as jnp  # noqa: E402

BYTES_PER_MB = 1e6
PROBE_LAYERS = (1, 2)
MAX_ATTEMPTS = 4

Params = dict[str, Any]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the transformer whose training step gets compiled.

    Attributes:
        n_layers: Number of decoder blocks, unrolled in the HLO.
        d_model: Residual stream width.
        n_heads: Attention heads per block.
        d_ff: Hidden width of the MLP.
        seq_len: Tokens per sequence.
        batch: Sequences per step.
        vocab: Vocabulary size.
    """

    n_layers: int = 1
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    seq_len: int = 32
    batch: int = 2
    vocab: int = 256


@dataclass(frozen=True)
class BuildResult:
    """A built module together with how it was made.

    Attributes:
        text: The optimized HLO module text.
        n_layers: Layer count of the compiled model.
        seconds: Wall time of the whole build, probes included.
        size_mb: Size of ``text`` in MB (1e6 bytes of UTF-8).
    """

    text: str
    n_layers: int
    seconds: float
    size_mb: float


def text_size_mb(text: str) -> float:
    """Return the UTF-8 size of ``text`` in MB (1 MB = 1e6 bytes)."""
    return len(text.encode("utf-8")) / BYTES_PER_MB


def param_shapes(cfg: ModelConfig) -> Params:
    """Describe the model parameters as ``ShapeDtypeStruct`` leaves.

    Args:
        cfg: Model configuration.

    Returns:
        A pytree of ``jax.ShapeDtypeStruct`` with one entry per layer.
    """

    def f32(*shape: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    d, ff = cfg.d_model, cfg.d_ff
    layers = [
        {
            "ln1": f32(d),
            "wqkv": f32(d, 3 * d),
            "wo": f32(d, d),
            "ln2": f32(d),
            "w_up": f32(d, ff),
            "w_down": f32(ff, d),
        }
        for _ in range(cfg.n_layers)
    ]
    return {
        "embed": f32(cfg.vocab, d),
        "pos": f32(cfg.seq_len, d),
        "layers": layers,
        "ln_f": f32(d),
    }


def rms_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    """Apply RMS normalisation over the last axis."""
    var = jnp.mean(x * x, axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(var + 1e-6) * scale


def attention(x: jax.Array, layer: Params, cfg: ModelConfig) -> jax.Array:
    """Causal multi-head self-attention.

    Args:
        x: Activations of shape ``[batch, seq, d_model]``.
        layer: Parameters of one decoder block.
        cfg: Model configuration.

    Returns:
        The attention output, same shape as ``x``.
    """
    b, s, d = x.shape
    head_dim = d // cfg.n_heads
    qkv = x @ layer["wqkv"]
    q, k, v = jnp.split(qkv.reshape(b, s, 3, cfg.n_heads, head_dim), 3, axis=2)
    q, k, v = (t.squeeze(2) for t in (q, k, v))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)
    mask = jnp.tril(jnp.ones((s, s), dtype=bool))
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    probs = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, s, d)
    return out @ layer["wo"]


def decoder_block(x: jax.Array, layer: Params, cfg: ModelConfig) -> jax.Array:
    """One pre-norm decoder block: attention then a GELU MLP.

    Named scopes mirror the module paths that Flax or Haiku put into
    ``op_name`` metadata, so the metadata looks like a real model's.
    """
    with jax.named_scope("self_attention"):
        x = x + attention(rms_norm(x, layer["ln1"]), layer, cfg)
    with jax.named_scope("mlp"):
        hidden = jax.nn.gelu(rms_norm(x, layer["ln2"]) @ layer["w_up"])
        return x + hidden @ layer["w_down"]


def loss_fn(params: Params, tokens: jax.Array, targets: jax.Array, cfg: ModelConfig) -> jax.Array:
    """Mean next-token cross-entropy of the model.

    Args:
        params: Model parameters.
        tokens: Input token ids, ``[batch, seq]``.
        targets: Target token ids, ``[batch, seq]``.
        cfg: Model configuration.

    Returns:
        A scalar loss.
    """
    x = params["embed"][tokens] + params["pos"]
    for i, layer in enumerate(params["layers"]):  # Unrolled on purpose: it makes the module big.
        with jax.named_scope(f"TransformerLM/decoder/layers_{i}"):
            x = decoder_block(x, layer, cfg)
    logits = rms_norm(x, params["ln_f"]) @ params["embed"].T
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)
    return -jnp.mean(picked)


def make_train_step(cfg: ModelConfig, lr: float = 1e-3) -> Callable[..., tuple[Params, jax.Array]]:
    """Return a function doing one SGD step for ``cfg``.

    Args:
        cfg: Model configuration.
        lr: Learning rate.

    Returns:
        ``train_step(params, tokens, targets) -> (new_params, loss)``.
    """

    def train_step(params: Params, tokens: jax.Array, targets: jax.Array) -> tuple[Params, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens, targets, cfg)
        new_params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return new_params, loss

    return train_step


def compile_hlo_text(cfg: ModelConfig) -> str:
    """Compile one training step for ``cfg`` on CPU and return its HLO text.

    Args:
        cfg: Model configuration.

    Returns:
        The optimized HLO module, as printed by ``compiled.as_text()``.
    """
    tokens = jax.ShapeDtypeStruct((cfg.batch, cfg.seq_len), jnp.int32)
    lowered = jax.jit(make_train_step(cfg)).lower(param_shapes(cfg), tokens, tokens)
    return lowered.compile().as_text()


def layers_needed(min_mb: float, probes: dict[int, float]) -> int:
    """Estimate the layer count whose module reaches ``min_mb``.

    Fits ``size = fixed + per_layer * n_layers`` through two probe builds.
    The fit errs on the large side, because instruction names and ids get
    longer as the module grows, so no extra margin is added.

    Args:
        min_mb: Requested module size in MB.
        probes: Module size in MB keyed by layer count (two entries).

    Returns:
        A layer count, at least 1.
    """
    (n0, mb0), (n1, mb1) = sorted(probes.items())
    per_layer = max((mb1 - mb0) / (n1 - n0), 1e-6)
    fixed = mb0 - per_layer * n0
    return max(1, math.ceil((min_mb - fixed) / per_layer))


def build_big_module_with_stats(min_mb: float = 15.0, base: ModelConfig = ModelConfig()) -> BuildResult:
    """Build a module of at least ``min_mb`` MB and report how it went.

    Args:
        min_mb: Minimum module size in MB.
        base: Model configuration whose ``n_layers`` gets chosen here.

    Returns:
        The module text with its layer count, build time and size.

    Raises:
        RuntimeError: If the module stays too small after several attempts.
    """
    start = time.perf_counter()
    probes = {n: text_size_mb(compile_hlo_text(replace(base, n_layers=n))) for n in PROBE_LAYERS}
    n_layers = layers_needed(min_mb, probes)
    for _ in range(MAX_ATTEMPTS):
        text = compile_hlo_text(replace(base, n_layers=n_layers))
        size_mb = text_size_mb(text)
        if size_mb >= min_mb:
            return BuildResult(text, n_layers, time.perf_counter() - start, size_mb)
        n_layers = max(n_layers + 1, math.ceil(n_layers * min_mb / size_mb))
    raise RuntimeError(f"module still {size_mb:.2f} MB < {min_mb} MB with {n_layers} layers")


def build_big_module(min_mb: float = 15.0) -> str:
    """Return the text of one real optimized HLO module of at least ``min_mb`` MB.

    Args:
        min_mb: Minimum module size in MB (1 MB = 1e6 bytes of UTF-8).

    Returns:
        The HLO module text.
    """
    return build_big_module_with_stats(min_mb).text


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a partial file.

    Args:
        path: Destination file.
        text: Content to write, encoded as UTF-8.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".hlo")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make it a normal file.
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_cached(path: str, min_mb: float) -> str | None:
    """Return the cached module at ``path`` if it exists and is big enough."""
    if not os.path.exists(path) or os.path.getsize(path) < min_mb * BYTES_PER_MB:
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def build_big_module_cached(path: str, min_mb: float = 15.0) -> str:
    """Return the big module from ``path``, building and caching it if needed.

    Args:
        path: Cache file holding the module text.
        min_mb: Minimum module size in MB; a smaller cached file is rebuilt.

    Returns:
        The HLO module text.
    """
    cached = read_cached(path, min_mb)
    if cached is not None:
        return cached
    result = build_big_module_with_stats(min_mb)
    report(result, file=sys.stderr)
    write_atomic(path, result.text)
    return result.text


def report(result: BuildResult, file: TextIO | None = None) -> None:
    """Print one line describing a build to ``file`` (standard output if ``None``)."""
    print(
        f"built HLO module: {result.size_mb:.2f} MB, {result.n_layers} layers, "
        f"{result.seconds:.1f} s",
        file=file,
    )


def main(argv: list[str] | None = None) -> int:
    """Build the module and write it to the given file.

    Args:
        argv: Command-line arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="file to write the HLO text to")
    parser.add_argument("--min-mb", type=float, default=15.0, help="minimum size in MB")
    args = parser.parse_args(argv)
    result = build_big_module_with_stats(args.min_mb)
    write_atomic(args.out, result.text)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
