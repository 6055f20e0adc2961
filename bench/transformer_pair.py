"""Compile one transformer training step three ways, for benchmarking and testing ``xlainspect diff``.

A diff is only worth trusting if it holds up on the pairs users actually compare: the same model before and after a
change in how it is compiled. This module takes the decoder-only transformer of ``big_module.py`` (its model code is
imported, not copied, so both benchmarks compile the same program) and writes the optimized HLO of one SGD training
step in three variants:

- ``unrolled.txt``: the layers unrolled by a Python ``for`` loop, exactly what ``big_module.py`` builds;
- ``scan.txt``: the same layers with their parameters stacked and run by ``jax.lax.scan``, so the module holds one
  layer as a ``while`` body (forward and backward) whose ``backend_config`` gives ``known_trip_count`` = layers;
- ``sharded.txt``: the unrolled step SPMD-partitioned over 8 CPU devices (batch over a ``data`` axis of 2,
  Megatron-style column/row sharding of the layer matrices over a ``model`` axis of 4), as a user comparing a
  single-device run with a multi-device one would.

The unrolled and sharded modules share one layer count, chosen (unless ``--layers`` is given) from probe builds so
that each reaches ``--min-mb``; the scan module uses the same count. ``manifest.json`` records how the files were
made, so a cache folder can be reused safely (see ``diff_speed.py``). Inputs are ``jax.ShapeDtypeStruct`` (with
shardings for the sharded variant), so nothing is allocated.

XLA reads ``XLA_FLAGS`` once, when the backend starts, so the 8 host devices the sharded variant needs must be
forced before jax is imported: the command line does that itself; library callers that want ``sharded`` either run
the command line in a child (:func:`build_pair_in_child`) or set the flag before importing jax.

Usage::

    python bench/transformer_pair.py OUTDIR [--min-mb 15] [--layers N] [--variants unrolled,scan,sharded]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

if TYPE_CHECKING:  # big_module imports jax at module level; at run time it is imported only inside functions.
    import jax

    from bench.big_module import ModelConfig, Params

VARIANTS = ("unrolled", "scan", "sharded")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
HOST_DEVICES = 8
MESH_SHAPE = (2, 4)
MESH_AXES = ("data", "model")
HOST_DEVICE_FLAG = f"--xla_force_host_platform_device_count={HOST_DEVICES}"
SIZED_VARIANTS = ("unrolled", "sharded")  # the ones that must reach --min-mb; scan stays small by design
PROBE_LAYERS = (1, 2)
MAX_ATTEMPTS = 4
TRIP_COUNT_RE = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')
WHILE_RE = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\swhile\(.*$", re.M)


@dataclass(frozen=True)
class ModuleInfo:
    """One written module.

    Attributes:
        file: File name inside the output folder.
        size_mb: UTF-8 size of the text in MB (1e6 bytes).
        compile_s: Seconds to lower and compile it (probes excluded).
    """

    file: str
    size_mb: float
    compile_s: float


@dataclass(frozen=True)
class PairManifest:
    """How a folder of variant modules was made; written last, so its presence means the folder is complete.

    Attributes:
        n_layers: Decoder blocks in every variant.
        min_mb: Size the unrolled and sharded modules were built to reach, or ``None`` when ``--layers`` fixed the
            count instead.
        config: The ``ModelConfig`` fields, ``n_layers`` included.
        modules: Written modules keyed by variant name.
        scan_trip_counts: ``known_trip_count`` of every ``while`` in the scan module (empty without it).
        jax_version: The jax that compiled the modules.
        mesh: Mesh shape and axis names of the sharded variant.
    """

    n_layers: int
    min_mb: float | None
    config: dict[str, int]
    modules: dict[str, ModuleInfo]
    scan_trip_counts: tuple[int, ...]
    jax_version: str
    mesh: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """Return the manifest as a JSON-ready dict."""
        return {"version": MANIFEST_VERSION, **asdict(self), "scan_trip_counts": list(self.scan_trip_counts)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairManifest:
        """Read a manifest written by :meth:`to_json`.

        Raises:
            ValueError: The data comes from another manifest version.
        """
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"manifest version {data.get('version')!r}, expected {MANIFEST_VERSION}; rebuild it")
        return cls(
            n_layers=int(data["n_layers"]),
            min_mb=None if data["min_mb"] is None else float(data["min_mb"]),
            config={k: int(v) for k, v in data["config"].items()},
            modules={k: ModuleInfo(**v) for k, v in data["modules"].items()},
            scan_trip_counts=tuple(int(n) for n in data["scan_trip_counts"]),
            jax_version=str(data["jax_version"]),
            mesh={k: int(v) for k, v in data["mesh"].items()},
        )

    def path(self, folder: str | os.PathLike[str], variant: str) -> Path:
        """Return the file of ``variant`` inside ``folder``."""
        return Path(folder) / self.modules[variant].file


def configure_jax_environment(host_devices: bool) -> None:
    """Pin jax to the CPU and, if asked, force ``HOST_DEVICES`` CPU devices; only works before jax is imported.

    With jax's CUDA plugin installed (``make install-gpu``) and no GPU, jax would otherwise try ``cuInit`` and print a
    traceback. Existing ``JAX_PLATFORMS`` and device-count flags are left alone; other ``XLA_FLAGS`` are kept.

    Args:
        host_devices: Also add ``HOST_DEVICE_FLAG`` to ``XLA_FLAGS`` (the sharded variant needs it).

    Raises:
        RuntimeError: jax is already imported, so the settings would be ignored.
    """
    if "jax" in sys.modules:
        raise RuntimeError("transformer_pair: jax is already imported; configure its environment before importing it")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    if host_devices and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICE_FLAG}".strip()


def stacked_param_shapes(cfg: ModelConfig) -> Params:
    """Describe the parameters with the layers stacked along a leading axis, as ``lax.scan`` consumes them.

    Args:
        cfg: Model configuration.

    Returns:
        The pytree of ``big_module.param_shapes`` with ``layers`` one dict of ``[n_layers, ...]`` leaves.
    """
    import jax

    from bench.big_module import param_shapes

    one = param_shapes(replace(cfg, n_layers=1))
    stack = {name: jax.ShapeDtypeStruct((cfg.n_layers, *leaf.shape), leaf.dtype)
             for name, leaf in one["layers"][0].items()}
    return {**one, "layers": stack}


def scan_loss_fn(params: Params, tokens: jax.Array, targets: jax.Array, cfg: ModelConfig) -> jax.Array:
    """``big_module.loss_fn`` with the layer loop as a ``lax.scan`` over stacked parameters.

    Everything but the layer loop is the same code path, so the two modules compute the same function and differ only
    in how XLA sees the repetition.
    """
    import jax
    import jax.numpy as jnp

    from bench.big_module import decoder_block, rms_norm

    def layer(x: jax.Array, params_i: Params) -> tuple[jax.Array, None]:
        with jax.named_scope("TransformerLM/decoder/layers"):
            return decoder_block(x, params_i, cfg), None

    x = params["embed"][tokens] + params["pos"]
    x, _ = jax.lax.scan(layer, x, params["layers"])
    logits = rms_norm(x, params["ln_f"]) @ params["embed"].T
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)
    return -jnp.mean(picked)


def make_scan_train_step(cfg: ModelConfig, lr: float = 1e-3) -> Callable[..., tuple[Params, jax.Array]]:
    """Return the SGD step of ``big_module.make_train_step`` for the scanned model."""
    import jax

    def train_step(params: Params, tokens: jax.Array, targets: jax.Array) -> tuple[Params, jax.Array]:
        loss, grads = jax.value_and_grad(scan_loss_fn)(params, tokens, targets, cfg)
        new_params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return new_params, loss

    return train_step


def sharded_param_shapes(cfg: ModelConfig, mesh: jax.sharding.Mesh) -> Params:
    """Attach Megatron-style shardings to the unrolled model's parameter shapes.

    Column-parallel ``wqkv`` and ``w_up``, row-parallel ``wo`` and ``w_down`` over the ``model`` axis; norms and
    embeddings replicated. XLA's SPMD partitioner inserts the collectives, which is what makes this module differ from
    the single-device one in ways a diff has to cope with (per-device shapes, all-reduces, all-gathers).

    Args:
        cfg: Model configuration.
        mesh: A mesh with axes ``MESH_AXES``.

    Returns:
        ``big_module.param_shapes`` with a ``NamedSharding`` on every leaf.
    """
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from bench.big_module import param_shapes

    specs = {"wqkv": P(None, "model"), "w_up": P(None, "model"), "wo": P("model", None), "w_down": P("model", None)}

    def shard(leaf: jax.ShapeDtypeStruct, spec: P) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=NamedSharding(mesh, spec))

    shapes = param_shapes(cfg)
    layers = [{name: shard(leaf, specs.get(name, P())) for name, leaf in layer.items()} for layer in shapes["layers"]]
    top = {name: shard(leaf, P()) for name, leaf in shapes.items() if name != "layers"}
    return {**top, "layers": layers}


def host_mesh() -> jax.sharding.Mesh:
    """Return the ``MESH_SHAPE`` mesh over the first ``HOST_DEVICES`` CPU devices.

    Raises:
        RuntimeError: Fewer devices exist, because jax was imported before
            :func:`configure_jax_environment`.
    """
    import jax
    import numpy as np

    devices = jax.devices()
    if len(devices) < HOST_DEVICES:
        raise RuntimeError(
            f"transformer_pair: the sharded variant needs {HOST_DEVICES} devices, jax has {len(devices)}; set "
            f"XLA_FLAGS={HOST_DEVICE_FLAG} before importing jax, or use build_pair_in_child()")
    return jax.sharding.Mesh(np.array(devices[:HOST_DEVICES]).reshape(MESH_SHAPE), MESH_AXES)


def compile_variant(variant: str, cfg: ModelConfig) -> str:
    """Compile one variant's training step on CPU and return its optimized HLO text.

    Args:
        variant: One of ``VARIANTS``.
        cfg: Model configuration (``n_layers`` included).

    Returns:
        ``jax.jit(step).lower(...).compile().as_text()``.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from bench.big_module import compile_hlo_text, make_train_step

    tokens = jax.ShapeDtypeStruct((cfg.batch, cfg.seq_len), jnp.int32)
    if variant == "unrolled":
        return compile_hlo_text(cfg)  # big_module's own build, so both benchmarks parse the same program
    if variant == "scan":
        lowered = jax.jit(make_scan_train_step(cfg)).lower(stacked_param_shapes(cfg), tokens, tokens)
        return lowered.compile().as_text()
    if variant == "sharded":
        mesh = host_mesh()
        tokens = jax.ShapeDtypeStruct(tokens.shape, tokens.dtype, sharding=NamedSharding(mesh, P("data", None)))
        lowered = jax.jit(make_train_step(cfg)).lower(sharded_param_shapes(cfg, mesh), tokens, tokens)
        return lowered.compile().as_text()
    raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def while_trip_counts(text: str) -> list[int]:
    """Return the ``known_trip_count`` of every ``while`` instruction in a module's text, in order."""
    counts = []
    for line in WHILE_RE.findall(text):
        match = TRIP_COUNT_RE.search(line)
        if match:
            counts.append(int(match.group(1)))
    return counts


def check_scan_module(text: str, n_layers: int) -> tuple[int, ...]:
    """Make sure XLA kept the layer loop, with the layer count as its known trip count.

    XLA may unroll or simplify loops with few trips; a scan module without its loop would silently turn the
    unrolled-vs-scan comparison into unrolled-vs-unrolled.

    Args:
        text: The scan variant's HLO text.
        n_layers: Expected trip count.

    Returns:
        The trip counts of all ``while`` loops.

    Raises:
        RuntimeError: No ``while`` has ``known_trip_count`` equal to ``n_layers``.
    """
    counts = tuple(while_trip_counts(text))
    if n_layers not in counts:
        raise RuntimeError(f"transformer_pair: the scan module has no while loop with known_trip_count {n_layers} "
                           f"(found {list(counts) or 'none'})")
    return counts


def choose_layers(min_mb: float, base: ModelConfig, variants: Sequence[str]) -> int:
    """Pick one layer count that makes each sized variant reach ``min_mb``, from 1- and 2-layer probe builds.

    Args:
        min_mb: Minimum size in MB of the unrolled and sharded modules.
        base: Model configuration whose ``n_layers`` gets chosen.
        variants: The variants being built; only ``SIZED_VARIANTS`` among them are probed.

    Returns:
        The largest count any probed variant needs (1 when none is probed).
    """
    from bench.big_module import layers_needed, text_size_mb

    needed = [1]
    for variant in (v for v in variants if v in SIZED_VARIANTS):
        probes = {n: text_size_mb(compile_variant(variant, replace(base, n_layers=n))) for n in PROBE_LAYERS}
        needed.append(layers_needed(min_mb, probes))
        print(f"probe {variant}: " + ", ".join(f"{n} layer(s) {mb:.3f} MB" for n, mb in probes.items()),
              file=sys.stderr)
    return max(needed)


def build_pair(outdir: str | os.PathLike[str], cfg: ModelConfig, variants: Sequence[str] = VARIANTS,
               min_mb: float | None = None) -> PairManifest:
    """Compile the variants for ``cfg`` and write them with their manifest into ``outdir``.

    When ``min_mb`` is given, ``cfg.n_layers`` is replaced by a probed count, raised again if a sized module still
    falls short (the same loop as ``big_module.build_big_module_with_stats``).

    Args:
        outdir: Output folder (created).
        cfg: Model configuration.
        variants: Which of ``VARIANTS`` to build.
        min_mb: Minimum size of the unrolled and sharded modules, or ``None`` to keep ``cfg.n_layers``.

    Returns:
        The manifest written to ``outdir/manifest.json``.

    Raises:
        RuntimeError: The modules stay too small after several attempts, or the scan module lost its loop.
    """
    import jax

    from bench.big_module import text_size_mb, write_atomic

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; expected some of {', '.join(VARIANTS)}")
    if min_mb is not None:
        cfg = replace(cfg, n_layers=choose_layers(min_mb, cfg, variants))
    for _ in range(MAX_ATTEMPTS):
        texts: dict[str, str] = {}
        modules: dict[str, ModuleInfo] = {}
        for variant in variants:
            start = time.perf_counter()
            texts[variant] = compile_variant(variant, cfg)
            modules[variant] = ModuleInfo(f"{variant}.txt", text_size_mb(texts[variant]), time.perf_counter() - start)
            print(f"compiled {variant}: {cfg.n_layers} layers, {modules[variant].size_mb:.2f} MB, "
                  f"{modules[variant].compile_s:.1f} s", file=sys.stderr)
        short = [v for v in variants if v in SIZED_VARIANTS and min_mb is not None and modules[v].size_mb < min_mb]
        if not short:
            break
        worst = min(modules[v].size_mb for v in short)
        cfg = replace(cfg, n_layers=max(cfg.n_layers + 1, math.ceil(cfg.n_layers * min_mb / worst)))
    else:
        raise RuntimeError(f"transformer_pair: {short} still under {min_mb} MB with {cfg.n_layers} layers")
    trips = check_scan_module(texts["scan"], cfg.n_layers) if "scan" in texts else ()
    os.makedirs(outdir, exist_ok=True)
    manifest_path = Path(outdir) / MANIFEST
    manifest_path.unlink(missing_ok=True)  # the folder is incomplete until the new manifest lands
    for variant, text in texts.items():
        write_atomic(str(Path(outdir) / modules[variant].file), text)
    manifest = PairManifest(
        n_layers=cfg.n_layers, min_mb=min_mb, config=asdict(cfg), modules=modules, scan_trip_counts=trips,
        jax_version=jax.__version__, mesh=dict(zip(MESH_AXES, MESH_SHAPE)),
    )
    write_atomic(str(manifest_path), json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


def read_manifest(outdir: str | os.PathLike[str]) -> PairManifest | None:
    """Return the manifest of a complete folder, or ``None`` if it is missing, stale or a module file is gone."""
    path = Path(outdir) / MANIFEST
    try:
        manifest = PairManifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(manifest.path(outdir, variant).is_file() for variant in manifest.modules):
        return None
    return manifest


def build_pair_in_child(outdir: str | os.PathLike[str], min_mb: float | None = 15.0, layers: int | None = None,
                        variants: Sequence[str] = VARIANTS) -> PairManifest:
    """Run this file's command line in a fresh interpreter and return the manifest it wrote.

    A child gets the 8 host devices whatever the caller has imported, and keeps JAX's compile memory out of the
    caller's peak RSS.

    Args:
        outdir: Output folder.
        min_mb: Minimum size of the unrolled and sharded modules (ignored when ``layers`` is given).
        layers: Fixed layer count, or ``None`` to choose one from ``min_mb``.
        variants: Which of ``VARIANTS`` to build.

    Returns:
        The manifest.

    Raises:
        subprocess.CalledProcessError: The build failed (its messages went to this process's stderr).
        RuntimeError: The child exited 0 but left no readable manifest.
    """
    command = [sys.executable, str(Path(__file__).resolve()), str(outdir), "--variants", ",".join(variants)]
    command += ["--layers", str(layers)] if layers is not None else ["--min-mb", str(min_mb)]
    subprocess.run(command, check=True, stdout=sys.stderr)
    manifest = read_manifest(outdir)
    if manifest is None:
        raise RuntimeError(f"transformer_pair: the build left no readable {Path(outdir) / MANIFEST}")
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The parsed options; ``variants`` is a list.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder to write <variant>.txt and manifest.json into")
    parser.add_argument("--min-mb", type=float, default=15.0,
                        help="minimum size in MB of the unrolled and sharded modules (default 15)")
    parser.add_argument("--layers", type=int, help="use this many layers instead of sizing by --min-mb")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown or not args.variants:
        parser.error(f"--variants: expected some of {', '.join(VARIANTS)}, got {args.variants}")
    if args.layers is not None and args.layers < 1:
        parser.error("--layers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the requested variants into the output folder and print one line per module.

    Args:
        argv: Command-line arguments, ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    args = parse_args(argv)
    configure_jax_environment(host_devices="sharded" in args.variants)  # before big_module imports jax
    from bench.big_module import ModelConfig

    start = time.perf_counter()
    base = ModelConfig(n_layers=args.layers or 1)
    manifest = build_pair(args.outdir, base, args.variants, None if args.layers else args.min_mb)
    for variant, info in manifest.modules.items():
        print(f"{manifest.path(args.outdir, variant)}: {info.size_mb:.2f} MB, {manifest.n_layers} layers, "
              f"compiled in {info.compile_s:.1f} s")
    if manifest.scan_trip_counts:
        print(f"scan while loops, known_trip_count: {list(manifest.scan_trip_counts)}")
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
