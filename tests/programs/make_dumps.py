"""Generate real XLA HLO dumps from small JAX programs.

The test suite checks xlainspect's own HLO text parser against XLA's C++
parser on HLO text that XLA itself produced. Hand-written HLO snippets drift
from what the compiler really emits (attribute spellings, custom-call
targets, sharding annotations, aliasing headers), so this script compiles and
runs a broad set of small JAX programs with ``--xla_dump_to`` enabled and
leaves the resulting ``*.before_optimizations.txt`` and
``*cpu_after_optimizations.txt`` files in the output directory.

Usage::

    python tests/programs/make_dumps.py OUTDIR                       # CPU: compile and run
    python tests/programs/make_dumps.py OUTDIR --gpu TARGET.txtpb    # compile only, for a GPU that is not there

With ``--gpu`` every single-device program is compiled (not run) for the GPU the target description names (e.g.
``shared/gpu_specs/h100.txtpb``), deviceless, as NOTES.md describes; this needs jax's CUDA plugin
(``jax[cuda12]``). The programs that need 8 devices or a host callback are left out there, and XLA writes
``*.sm_9.0a_gpu_after_optimizations.txt`` instead of ``*.cpu_after_optimizations.txt``.

The XLA flags (dump location, text format, 8 forced host devices for the
SPMD programs) only take effect if they are set before JAX initialises, so
JAX is imported inside the program functions, never at module level. Any
program failure aborts the script with a non-zero exit status naming the
program: silently missing coverage is worse than a loud failure.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jax

NUM_DEVICES = 8
"""Number of host CPU devices forced for the SPMD programs."""

FEATURES: list[str] = []
"""Short names of the HLO features the generated dumps cover."""

_Program = Callable[[], Any]
"""A program family: compiles and runs its jitted functions, returns their outputs."""

_PROGRAMS: list[tuple[str, _Program, bool]] = []
"""(name, program, whether it runs on the CPU only: it needs the 8 forced host devices or a host callback)."""

_GPU_DEVICE: list[Any] = []
"""The compile-only GPU device when ``--gpu`` was given (then ``_jit`` compiles without running), else empty."""


def _program(*features: str, cpu_only: bool = False) -> Callable[[_Program], _Program]:
    """Register a program family and the features it covers.

    Args:
        *features: Short names appended to ``FEATURES``.
        cpu_only: whether the program needs the 8 forced host devices or a host callback, which a deviceless
            GPU compile has not (one GPU; no runtime to call back into): left out with ``--gpu``.

    Returns:
        A decorator that records the function in the program registry and
        returns it unchanged.
    """

    def register(fn: _Program) -> _Program:
        _PROGRAMS.append((fn.__name__.removeprefix("program_"), fn, cpu_only))
        FEATURES.extend(features)
        return fn

    return register


def _jit(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
    """``jax.jit(fn, **options)``; with ``--gpu``, a function that compiles for the deviceless GPU instead of running.

    The programs call it as they would call ``jax.jit``, so one program text serves both backends: on the GPU
    target only the input shapes and dtypes matter, and compiling is what writes the dump.
    """
    import jax

    jitted = jax.jit(fn, **options)
    if not _GPU_DEVICE:
        return jitted

    def compile_only(*args: Any) -> None:
        import numpy as np

        placement = jax.sharding.SingleDeviceSharding(_GPU_DEVICE[0])
        specs = [jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype, sharding=placement) for a in args]
        jitted.lower(*specs).compile()

    return compile_only


def configure_environment(outdir: Path) -> None:
    """Point XLA's dumper at ``outdir`` and force 8 CPU devices.

    Pre-existing ``XLA_FLAGS`` are kept; ours come last so they win.

    Args:
        outdir: Directory that receives the dump files.

    Raises:
        RuntimeError: If JAX was already imported, since the flags would then
            be ignored.
    """
    if "jax" in sys.modules:
        raise RuntimeError(
            "make_dumps must set XLA_FLAGS before jax is imported; run it in a fresh process"
        )
    ours = (
        f"--xla_dump_to={outdir} --xla_dump_hlo_as_text "
        f"--xla_force_host_platform_device_count={NUM_DEVICES}"
    )
    existing = os.environ.get("XLA_FLAGS", "").strip()
    os.environ["XLA_FLAGS"] = f"{existing} {ours}" if existing else ours
    os.environ["JAX_PLATFORMS"] = "cpu"


@_program("while_loop", "fori_loop", "scan", "cond", "switch")
def program_control_flow() -> Any:
    """Loops and branches: ``while`` and ``conditional`` with 2 and 4 branches."""
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    def loops_and_branches(x: jax.Array, n: jax.Array, idx: jax.Array) -> tuple[jax.Array, ...]:
        counted = lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5), (0, x))[1]
        summed = lax.fori_loop(0, 5, lambda i, acc: acc + i * x, jnp.zeros_like(x))
        carry, ys = lax.scan(lambda c, v: (c + v, c * v), jnp.float32(0), x)
        branched = lax.cond(n > 2, jnp.sin, jnp.cos, x)
        switched = lax.switch(idx, [jnp.exp, jnp.tanh, jnp.negative, jnp.square], x)
        return counted, summed, carry, ys, branched, switched

    return _jit(loops_and_branches)(np.arange(6, dtype=np.float32), np.int32(3), np.int32(2))


@_program("sort", "multi_operand_sort", "argsort", "top_k")
def program_sorting() -> Any:
    """Single- and multi-operand ``sort`` plus ``top_k``."""
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    def sorting(keys: jax.Array, vals: jax.Array) -> tuple[jax.Array, ...]:
        sorted_keys = jnp.sort(keys, axis=-1)
        by_key = lax.sort((keys, vals, keys.astype(jnp.int32)), dimension=1, num_keys=1)
        order = jnp.argsort(keys[0], descending=True)
        top_vals, top_idx = lax.top_k(keys, 3)
        return sorted_keys, *by_key, order, top_vals, top_idx

    rng = np.random.default_rng(0)
    keys, vals = rng.normal(size=(2, 4, 16)).astype(np.float32)
    return _jit(sorting)(keys, vals)


@_program("gather", "scatter_add", "scatter_set", "take_along_axis")
def program_gather_scatter() -> Any:
    """Fancy indexing and ``.at[]`` updates lowering to gather/scatter."""
    import jax.numpy as jnp
    import numpy as np

    def gather_scatter(table: jax.Array, idx: jax.Array, upd: jax.Array) -> tuple[jax.Array, ...]:
        rows = table[idx]
        columns = idx[:, None] % table.shape[1]
        picked = jnp.take_along_axis(table[: idx.shape[0]], columns, axis=1)
        added = table.at[idx].add(upd)
        replaced = table.at[idx, 1].set(upd[:, 0])
        return rows, picked, added, replaced

    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    idx = np.array([3, 1, 7, 1], dtype=np.int32)
    return _jit(gather_scatter)(table, idx, np.ones((4, 4), np.float32))


@_program("fft", "ifft", "rfft", "irfft", "fft2")
def program_fft() -> Any:
    """Complex and real FFTs in every ``fft_type``."""
    import jax.numpy as jnp
    import numpy as np

    def transforms(x: jax.Array) -> tuple[jax.Array, ...]:
        spectrum = jnp.fft.fft(x.astype(jnp.complex64))
        half = jnp.fft.rfft(x)
        restored = jnp.fft.irfft(half, n=x.shape[-1])
        return spectrum, jnp.fft.ifft(spectrum), half, restored, jnp.fft.fft2(x)

    return _jit(transforms)(np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32))


@_program("lapack_cholesky", "lapack_qr", "lapack_eigh", "lapack_svd", "lapack_lu", "linalg_solve")
def program_linalg() -> Any:
    """Dense linear algebra that lowers to LAPACK custom-calls on CPU."""
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl
    import numpy as np

    def decompositions(a: jax.Array, b: jax.Array) -> tuple[jax.Array, ...]:
        spd = a @ a.T + 4.0 * jnp.eye(a.shape[0], dtype=a.dtype)
        q, r = jnp.linalg.qr(a)
        w, v = jnp.linalg.eigh(spd)
        u, s, vt = jnp.linalg.svd(a)
        p, lower, upper = jsl.lu(a)
        solved = jnp.linalg.solve(spd, b)
        return jnp.linalg.cholesky(spd), q, r, w, v, u, s, vt, p, lower, upper, solved

    rng = np.random.default_rng(2)
    a = rng.normal(size=(6, 6)).astype(np.float32)
    return _jit(decompositions)(a, rng.normal(size=(6, 2)).astype(np.float32))


@_program("convolution", "grouped_convolution", "dilated_convolution", "convolution_grad")
def program_convolution() -> Any:
    """Grouped/dilated convolutions and their gradients (transposed convs)."""
    import jax
    import numpy as np
    from jax import lax

    def conv(x: jax.Array, w: jax.Array) -> jax.Array:
        return lax.conv_general_dilated(
            x,
            w,
            window_strides=(1, 2),
            padding="SAME",
            rhs_dilation=(2, 1),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=2,
        )

    def conv_loss(x: jax.Array, w: jax.Array) -> jax.Array:
        return (conv(x, w) ** 2).sum()

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 6)).astype(np.float32)
    return _jit(conv)(x, w), _jit(jax.grad(conv_loss, argnums=(0, 1)))(x, w)


@_program("reduce_window", "max_pool", "avg_pool", "select_and_scatter")
def program_pooling() -> Any:
    """Pooling via ``reduce-window`` and max-pool's ``select-and-scatter`` gradient."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    window = strides = (1, 2, 2, 1)

    def max_pool(x: jax.Array) -> jax.Array:
        return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, "VALID")

    def avg_pool(x: jax.Array) -> jax.Array:
        padding = [(0, 0), (0, 1), (0, 1), (0, 0)]
        return lax.reduce_window(x, 0.0, lax.add, window, strides, padding) / 4.0

    def pools(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        return max_pool(x), avg_pool(x), jax.grad(lambda v: max_pool(v).sum())(x)

    return _jit(pools)(np.random.default_rng(4).normal(size=(2, 8, 8, 3)).astype(np.float32))


@_program("shard_map", "psum", "all_gather", "ppermute", "all_to_all", "psum_scatter", "axis_index", cpu_only=True)
def program_shard_map_collectives() -> Any:
    """Explicit collectives over an 8-device mesh via ``shard_map``."""
    import jax
    import numpy as np
    from jax import lax
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:NUM_DEVICES]), ("x",))
    shift = [(i, (i + 1) % NUM_DEVICES) for i in range(NUM_DEVICES)]

    def per_shard(block: jax.Array) -> tuple[jax.Array, ...]:
        total = lax.psum(block, "x")
        gathered = lax.all_gather(block, "x", tiled=True)
        rotated = lax.ppermute(block, "x", perm=shift)
        exchanged = lax.all_to_all(block, "x", split_axis=1, concat_axis=1, tiled=True)
        scattered = lax.psum_scatter(block, "x", scatter_dimension=1, tiled=True)
        return total, gathered, rotated, exchanged, scattered + lax.axis_index("x")

    collectives = jax.shard_map(
        per_shard,
        mesh=mesh,
        in_specs=P("x"),
        out_specs=(P(), P(), P("x"), P("x"), P("x")),
        check_vma=False,
    )
    return _jit(collectives)(np.arange(8 * 16, dtype=np.float32).reshape(8, 16))


@_program("spmd_partitioner", "named_sharding", "sharding_annotations", cpu_only=True)
def program_spmd_jit() -> Any:
    """``jit`` with ``NamedSharding`` so the SPMD partitioner inserts collectives."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:NUM_DEVICES]).reshape(4, 2), ("data", "model"))

    def sharded(*axes: str | None) -> NamedSharding:
        return NamedSharding(mesh, P(*axes))

    def layer(x: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = jax.lax.with_sharding_constraint(jax.nn.relu(x @ w), sharded("data", None))
        return h, jnp.mean(h, axis=0)

    partitioned = _jit(
        layer,
        in_shardings=(sharded("data", "model"), sharded("model", None)),
        out_shardings=(sharded("data", None), sharded()),
    )
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 16)).astype(np.float32)
    return partitioned(x, rng.normal(size=(16, 4)).astype(np.float32))


@_program(
    "bf16",
    "f16",
    "int8_matmul_s32",
    "complex64",
    "uint32_bitops",
    "bitcast_convert",
    "reduce_precision",
    "convert",
)
def program_dtypes() -> Any:
    """Non-f32 element types and the bit-level ops that go with them."""
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    def mixed(a: jax.Array, q: jax.Array, z: jax.Array, bits: jax.Array) -> tuple[jax.Array, ...]:
        bf = a.astype(jnp.bfloat16)
        bf_mm = jnp.dot(bf, bf.T, preferred_element_type=jnp.float32)
        half = jnp.tanh(a.astype(jnp.float16)) * jnp.float16(0.5)
        int_mm = lax.dot(q, q.T, preferred_element_type=jnp.int32)
        cplx = jnp.abs(z * jnp.conj(z)) + jnp.angle(z)
        shuffled = ((bits << 3) ^ (bits >> 2)) & jnp.uint32(0xFF00FF)
        as_bits = lax.bitcast_convert_type(a, jnp.uint32) ^ shuffled | lax.population_count(bits)
        narrowed = lax.reduce_precision(a, exponent_bits=5, mantissa_bits=10)
        return bf_mm, half, int_mm, cplx, as_bits, narrowed

    rng = np.random.default_rng(6)
    return _jit(mixed)(
        rng.normal(size=(4, 8)).astype(np.float32),
        rng.integers(-100, 100, size=(4, 8)).astype(np.int8),
        (rng.normal(size=(4, 8)) + 1j * rng.normal(size=(4, 8))).astype(np.complex64),
        rng.integers(0, 2**32, size=(4, 8), dtype=np.uint32),
    )


def _mlp_loss(params: dict[str, jax.Array], x: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy of a 2-layer MLP (shared by the MLP programs).

    Args:
        params: Dict with ``w1``, ``b1``, ``w2``, ``b2`` arrays.
        x: Input batch ``[batch, features]`` (or one example ``[features]``).
        labels: Integer class labels matching ``x``'s leading dims.

    Returns:
        The mean cross-entropy loss as a scalar array.
    """
    import jax
    import jax.numpy as jnp

    hidden = jax.nn.gelu(x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    one_hot = jax.nn.one_hot(labels, logits.shape[-1])
    return -jnp.mean(jnp.sum(one_hot * jax.nn.log_softmax(logits), axis=-1))


def _init_mlp(key: jax.Array) -> dict[str, jax.Array]:
    """Initialise MLP parameters with ``jax.random`` (threefry).

    Args:
        key: A ``jax.random`` key.

    Returns:
        Parameter dict for ``_mlp_loss``.
    """
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (8, 16)) * 0.1,
        "b1": jnp.zeros(16),
        "w2": jax.random.normal(k2, (16, 4)) * 0.1,
        "b2": jnp.zeros(4),
    }


@_program(
    "mlp_forward_backward",
    "softmax_cross_entropy",
    "jax_random_threefry",
    "remat",
    "vmap_per_example_grad",
)
def program_mlp_training() -> Any:
    """MLP training step, rematerialised variant and per-example gradients."""
    import jax
    import numpy as np

    Params = dict[str, jax.Array]

    def train_step(seed: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Params]:
        key = jax.random.key(seed)
        params = _init_mlp(key)
        noisy = x + 0.01 * jax.random.uniform(jax.random.fold_in(key, 1), x.shape)
        loss, grads = jax.value_and_grad(_mlp_loss)(params, noisy, y)
        return loss, jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)

    def remat_grads(seed: jax.Array, x: jax.Array, y: jax.Array) -> Params:
        return jax.grad(jax.checkpoint(_mlp_loss))(_init_mlp(jax.random.key(seed)), x, y)

    def per_example_grads(seed: jax.Array, x: jax.Array, y: jax.Array) -> Params:
        example_grad = jax.vmap(jax.grad(_mlp_loss), in_axes=(None, 0, 0))
        return example_grad(_init_mlp(jax.random.key(seed)), x, y)

    rng = np.random.default_rng(7)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    labels = rng.integers(0, 4, size=16).astype(np.int32)
    programs = (train_step, remat_grads, per_example_grads)
    return [_jit(fn)(np.uint32(0), x, labels) for fn in programs]


@_program("cumsum", "cumprod", "argmax", "batched_einsum")
def program_reductions() -> Any:
    """Cumulative reductions, ``argmax`` and a batched ``einsum``."""
    import jax.numpy as jnp
    import numpy as np

    def reductions(x: jax.Array, y: jax.Array) -> tuple[jax.Array, ...]:
        return (
            jnp.cumsum(x, axis=1),
            jnp.cumprod(x, axis=0),
            jnp.argmax(x, axis=1),
            jnp.einsum("bij,bjk->bik", y, jnp.swapaxes(y, 1, 2)),
        )

    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 32)).astype(np.float32)
    return _jit(reductions)(x, rng.normal(size=(3, 4, 5)).astype(np.float32))


@_program(
    "dynamic_slice",
    "dynamic_update_slice",
    "pad",
    "concatenate",
    "reverse",
    "clamp",
    "iota",
    "select",
    "rng_bit_generator",
)
def program_array_ops() -> Any:
    """Slicing, padding, shuffling and elementwise selection ops."""
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    def array_ops(x: jax.Array, start: jax.Array, rng_key: jax.Array) -> tuple[jax.Array, ...]:
        window = lax.dynamic_slice(x, (start, 0), (2, 4))
        patched = lax.dynamic_update_slice(x, window * 2.0, (0, start))
        padded = jnp.pad(x, ((1, 2), (0, 3)), mode="constant", constant_values=-1.0)
        joined = jnp.concatenate([x, jnp.flip(x, axis=1)], axis=0)
        clamped = lax.clamp(-0.5, x, 0.5)
        ramp = lax.broadcasted_iota(jnp.int32, x.shape, 1)
        chosen = jnp.where(ramp % 2 == 0, x, clamped)
        new_key, random_bits = lax.rng_bit_generator(rng_key, (4, 4), dtype=jnp.uint32)
        return window, patched, padded, joined, chosen, new_key, random_bits

    x = np.arange(24, dtype=np.float32).reshape(4, 6) / 10.0
    return _jit(array_ops)(x, np.int32(1), np.zeros(4, np.uint32))


@_program("pure_callback", "debug_print", cpu_only=True)
def program_host_callbacks() -> Any:
    """Host callbacks, which lower to Python-callback custom-calls."""
    import jax
    import numpy as np

    def host_square(v: np.ndarray) -> np.ndarray:
        return np.square(v)

    def with_callbacks(x: jax.Array) -> jax.Array:
        squared = jax.pure_callback(host_square, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        jax.debug.print("make_dumps debug.print sum={s}", s=squared.sum())
        return squared + 1.0

    return _jit(with_callbacks)(np.arange(4, dtype=np.float32))


@_program("donate_argnums", "input_output_alias")
def program_donation() -> Any:
    """Donated buffers, which add ``input_output_alias`` to the module header."""
    import numpy as np

    def update(state: jax.Array, delta: jax.Array) -> tuple[jax.Array, jax.Array]:
        return state + delta, (state * delta).sum()

    donating = _jit(update, donate_argnums=0)
    return donating(np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32))


@_program("io_callback_in_loop", "custom_vjp", "remat_scan", "rbg_prng", "tuple_carry_while",
          "dynamic_update_slice_in_loop", "triangular_solve", "switch_on_tuples")
def program_more_control_flow() -> Any:
    """Tuple-carrying loops and branches around a callback, custom gradients, remat and the ``rbg`` PRNG.

    jax 0.11's XLA writes the tuple elements these pass around as ``%t#i`` operands in loop bodies, branches and
    custom-call operand lists; these programs make sure each of those places shows up in a dump.
    """
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl
    import numpy as np
    from jax import lax
    from jax.experimental import io_callback

    def host_log(step: np.ndarray, value: np.ndarray) -> np.ndarray:
        return np.asarray(value * 0 + step, dtype=np.float32)

    @jax.custom_vjp
    def clip_gradient(x: jax.Array) -> jax.Array:
        return x

    def clip_forward(x: jax.Array) -> tuple[jax.Array, None]:
        return x, None

    def clip_backward(_: None, g: jax.Array) -> tuple[jax.Array]:
        return (jnp.clip(g, -1.0, 1.0),)

    clip_gradient.defvjp(clip_forward, clip_backward)

    def loop_body(i: jax.Array, carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, ...]:
        buffer, total, scale = carry
        row = jnp.sin(buffer[i] * scale + i)
        # A deviceless GPU compile has no runtime to call back into; everything else is compiled there too.
        logged = 0.0 if _GPU_DEVICE else io_callback(host_log, jax.ShapeDtypeStruct((), jnp.float32), i, total,
                                                     ordered=True)
        return lax.dynamic_update_slice(buffer, row[None], (i, 0)), total + row.sum() + logged, scale * 0.5

    def logged_loop(scale: jax.Array) -> tuple[jax.Array, jax.Array]:
        buffer, total, _ = lax.fori_loop(0, 4, loop_body, (jnp.ones((4, 3)), jnp.float32(0), scale))
        return buffer, total

    def custom_gradients(x: jax.Array) -> jax.Array:
        def scanned(v: jax.Array) -> jax.Array:
            layer = jax.checkpoint(lambda c, w: (jnp.tanh(clip_gradient(c) * w), None))
            return lax.scan(layer, v, jnp.linspace(0.5, 1.5, 3))[0].sum()

        return jax.grad(scanned)(x)

    def branches(x: jax.Array, seed: jax.Array, a: jax.Array, branch: jax.Array) -> tuple[jax.Array, ...]:
        rbg = jax.random.uniform(jax.random.key(seed, impl="rbg"), (4,))
        pair = lax.switch(branch, [lambda t: (t[0] + 1, t[1]), lambda t: (t[1], t[0]), lambda t: (t[0], -t[1])],
                          (x, rbg))
        upper = jnp.triu(a) + 4.0 * jnp.eye(a.shape[0])
        solved = jsl.solve_triangular(upper, x[:, None], lower=False)
        return *pair, solved

    rng = np.random.default_rng(9)
    x = rng.normal(size=4).astype(np.float32)
    return (_jit(logged_loop)(np.float32(2)), _jit(custom_gradients)(x),
            _jit(branches)(x, np.uint32(3), rng.normal(size=(4, 4)).astype(np.float32), np.int32(1)))


def run_programs(outdir: Path, gpu_target: Path | None = None) -> list[Path]:
    """Compile and run every registered program, dumping HLO into ``outdir``.

    Args:
        outdir: Dump directory (created if missing).
        gpu_target: a ``GpuTargetConfigProto`` text file: compile the single-device programs for that GPU,
            deviceless, instead of compiling and running them on the CPU.

    Returns:
        All files present in ``outdir`` afterwards, sorted.

    Raises:
        SystemExit: If fewer than ``NUM_DEVICES`` devices exist, or with the
            failing program's name (after printing its traceback) if any
            program fails to trace, compile or run.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    configure_environment(outdir)
    import jax

    if gpu_target is not None:
        from jax.experimental import topologies

        topology = topologies.get_topology_desc(platform="cuda", target_config=gpu_target.read_text(),
                                                topology="1x1x1")
        _GPU_DEVICE.append(topology.devices[0])
    elif jax.device_count() < NUM_DEVICES:
        raise SystemExit(f"make_dumps: expected {NUM_DEVICES} devices, got {jax.device_count()}")
    for name, fn, cpu_only in _PROGRAMS:
        if cpu_only and gpu_target is not None:
            continue
        try:
            jax.block_until_ready(fn())
            jax.effects_barrier()
        except Exception:
            traceback.print_exc()
            raise SystemExit(f"make_dumps: program {name!r} failed; see traceback above") from None
    return sorted(p for p in outdir.rglob("*") if p.is_file())


def main(argv: Sequence[str]) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments after the script name: the output directory, optionally ``--gpu TARGET.txtpb``.

    Returns:
        Process exit status.
    """
    gpu_target = None
    if len(argv) == 3 and argv[1] == "--gpu":
        gpu_target = Path(argv[2]).resolve()
    elif len(argv) != 1:
        print(f"usage: {Path(sys.argv[0]).name} OUTDIR [--gpu TARGET.txtpb]", file=sys.stderr)
        return 2
    outdir = Path(argv[0]).resolve()
    started = time.perf_counter()
    files = run_programs(outdir, gpu_target)
    modules = sum(1 for p in files if p.name.endswith("optimizations.txt"))
    elapsed = time.perf_counter() - started
    print(
        f"make_dumps: wrote {len(files)} dump files ({modules} HLO module texts) "
        f"to {outdir} in {elapsed:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
