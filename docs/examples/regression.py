"""A two-layer MLP's regression step written in JAX and in TF, to compare what XLA makes of each: an example of your
own program for xlainspect (README, "Your own program"). Nothing here imports xlainspect.

    xlainspect dump --program docs/examples/regression.py:step
    xlainspect diff jax tf --program docs/examples/regression.py:step
"""

import numpy as np


def _data(batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(32, 64)).astype(np.float32) / 32**0.5,
              "w2": rng.normal(size=(64, 1)).astype(np.float32) / 8}
    x = rng.normal(size=(batch_size, 32)).astype(np.float32)
    return params, x, (x[:, :1] ** 2).astype(np.float32)


def step(batch_size: int = 64):
    """One SGD step of a 32-64-1 tanh MLP on squared error, in JAX and in TF."""
    import jax
    import jax.numpy as jnp
    import tensorflow as tf

    def loss(params, x, y):
        return jnp.mean((jnp.tanh(x @ params["w1"]) @ params["w2"] - y) ** 2)

    def jax_step(params, x, y):
        grads = jax.grad(loss)(params, x, y)
        return {name: params[name] - 0.1 * grads[name] for name in params}

    @tf.function(jit_compile=True)
    def tf_step(params, x, y):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = tf.reduce_mean((tf.tanh(x @ params["w1"]) @ params["w2"] - y) ** 2)
        grads = tape.gradient(loss, params)
        return {name: params[name] - 0.1 * grads[name] for name in params}

    params, x, y = _data(batch_size)
    return {"jax": (jax_step, (params, x, y)), "tf": (tf_step, (params, x, y))}
