"""A 2-layer transformer block's training step, its layers stacked and run by ``lax.scan``: an example of your own
program for xlainspect (README, "Your own program"). Nothing here imports xlainspect.

    xlainspect dump --program docs/examples/transformer.py:step --framework jax
    xlainspect diff docs/... (see the README)
"""

import jax
import jax.numpy as jnp

WIDTH, HEADS, SEQUENCE, LAYERS = 64, 4, 32, 2


def init(key: jax.Array) -> dict[str, jax.Array]:
    """Every layer's weights, stacked on a leading layer axis for ``lax.scan``."""
    k = jax.random.split(key, 4)
    return {"qkv": jax.random.normal(k[0], (LAYERS, WIDTH, 3 * WIDTH)) * WIDTH**-0.5,
            "out": jax.random.normal(k[1], (LAYERS, WIDTH, WIDTH)) * WIDTH**-0.5,
            "mlp_in": jax.random.normal(k[2], (LAYERS, WIDTH, 4 * WIDTH)) * WIDTH**-0.5,
            "mlp_out": jax.random.normal(k[3], (LAYERS, 4 * WIDTH, WIDTH)) * (4 * WIDTH)**-0.5}


def _norm(v: jax.Array) -> jax.Array:
    return (v - v.mean(-1, keepdims=True)) * jax.lax.rsqrt(v.var(-1, keepdims=True) + 1e-5)


def block(x: jax.Array, p: dict[str, jax.Array]) -> tuple[jax.Array, None]:
    """One pre-norm block: causal self-attention, then a GELU MLP, each with a residual."""
    b, t, d = x.shape

    def heads(a: jax.Array) -> jax.Array:
        return a.reshape(b, t, HEADS, d // HEADS).transpose(0, 2, 1, 3)

    q, k, v = (heads(a) for a in jnp.split(_norm(x) @ p["qkv"], 3, axis=-1))
    scores = q @ k.transpose(0, 1, 3, 2) / (d // HEADS) ** 0.5
    attention = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((t, t), bool)), scores, -1e9), axis=-1)
    x = x + (attention @ v).transpose(0, 2, 1, 3).reshape(b, t, d) @ p["out"]
    return x + jax.nn.gelu(_norm(x) @ p["mlp_in"]) @ p["mlp_out"], None


def loss(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    h, _ = jax.lax.scan(block, x, params)
    return jnp.mean((h - y) ** 2)


@jax.jit
def train_step(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    grads = jax.grad(loss)(params, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, params, grads)


def loss_unrolled(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    for layer in range(LAYERS):
        x, _ = block(x, jax.tree_util.tree_map(lambda p: p[layer], params))
    return jnp.mean((x - y) ** 2)


@jax.jit
def train_step_unrolled(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
    grads = jax.grad(loss_unrolled)(params, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, params, grads)


def _batch(batch_size: int) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    key = jax.random.key(0)
    kx, ky = jax.random.split(jax.random.fold_in(key, 1))
    return (init(key), jax.random.normal(kx, (batch_size, SEQUENCE, WIDTH)),
            jax.random.normal(ky, (batch_size, SEQUENCE, WIDTH)))


def step(batch_size: int = 8):
    """A 2-layer transformer block's SGD step, the layers run by lax.scan."""
    return train_step, _batch(batch_size)


def step_unrolled(batch_size: int = 8):
    """The same SGD step with the layers unrolled by a Python loop."""
    return train_step_unrolled, _batch(batch_size)
