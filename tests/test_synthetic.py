"""Tests for ``synthetic/``: the registry and its inputs, the three implementations of every program agreeing, the
numpy reference's own gradients, and DP-SGD's clipping and noise.

Compiling is the slow part (TF's import alone takes seconds), so each program's JAX and TF functions are built once
per module and shared through the ``run_jax`` / ``run_tf`` fixtures.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xlainspect.programs import PROGRAMS, Program, get_program
from xlainspect.programs.dpsgd import clip_jax, clip_numpy, clip_tf, global_norms_numpy, per_example_grads_numpy
from xlainspect.programs.cifar10_cnn import CIFAR10_CNN
from xlainspect.programs.embedding import EMBEDDING
from xlainspect.programs.ffnn import FFNN
from xlainspect.programs.logreg import LOGREG
from xlainspect.programs.lstm import LSTM
from xlainspect.programs.mnist_cnn import MNIST_CNN

REPO = Path(__file__).resolve().parents[1]
MODELS = {"ffnn": FFNN, "mnist": MNIST_CNN, "logreg": LOGREG, "cifar10": CIFAR10_CNN, "embedding": EMBEDDING,
          "lstm": LSTM}
STEPS = tuple(f"{kind}_{model}" for model in MODELS for kind in ("dpsgd", "sgd"))
NAMES = ("matvec", "linear_grad", *STEPS)
SMALL_BATCH = {"dpsgd_ffnn": 8, "sgd_ffnn": 8, **{name: 4 for name in STEPS if "ffnn" not in name}}
TOKEN_MODELS = ("embedding", "lstm")
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}

Outputs = tuple[np.ndarray, ...]


def relative_error(actual: Any, expected: Any) -> float:
    """``||a - b|| / max(||b||, tiny)`` in float64."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), np.finfo(np.float64).tiny))


def small_inputs(program: Program, dtype: str = "float32", seed: int = 0) -> dict[str, np.ndarray]:
    return program.inputs(batch_size=SMALL_BATCH.get(program.name), dtype=dtype, seed=seed)


def data_of(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``x`` for the numpy reference: float64, or the int32 token ids as they are."""
    x = np.asarray(inputs["x"])
    return x if x.dtype.kind in "iu" else x.astype(np.float64)


def parameters_of(program: Program, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(inputs[name], np.float64) for name in program.output_names]


# -- fixtures: each program compiled once per framework ----------------------------------------------------------------


def _cached_runner(build: Callable[[Program], Callable[..., Any]],
                   call: Callable[[Callable[..., Any], Mapping[str, np.ndarray]], Outputs]) -> Callable[..., Outputs]:
    functions: dict[tuple[str, tuple[tuple[str, float], ...]], Callable[..., Any]] = {}

    def run(program: Program, inputs: Mapping[str, np.ndarray]) -> Outputs:
        key = (program.name, tuple(sorted(program.hyperparameters.items())))
        if key not in functions:
            functions[key] = build(program)
        return call(functions[key], inputs)

    return run


@pytest.fixture(scope="module")
def jax_module() -> Any:
    return pytest.importorskip("jax", reason="jax is not installed: pip install jax")


@pytest.fixture(scope="module")
def tf_module() -> Any:
    return pytest.importorskip("tensorflow", reason="tensorflow is not installed: pip install tensorflow-cpu")


@pytest.fixture(scope="module")
def run_jax(jax_module: Any) -> Callable[[Program, Mapping[str, np.ndarray]], Outputs]:
    """Runs a program's JAX function (built once per program and hyperparameters) on the inputs' values."""
    return _cached_runner(lambda program: program.jax_function(),
                          lambda fn, inputs: tuple(np.asarray(out) for out in fn(*inputs.values())))


@pytest.fixture(scope="module")
def run_tf(tf_module: Any) -> Callable[[Program, Mapping[str, np.ndarray]], Outputs]:
    """Runs a program's TF function (built once per program and hyperparameters) on the inputs' values."""
    return _cached_runner(lambda program: program.tf_function(),
                          lambda fn, inputs: tuple(out.numpy() for out in fn(*map(tf_module.constant,
                                                                                  inputs.values()))))


# -- the registry ------------------------------------------------------------------------------------------------------


def test_registry_holds_the_seed_programs_in_order():
    assert tuple(PROGRAMS) == NAMES
    assert all(isinstance(p, Program) and p.name == name for name, p in PROGRAMS.items())
    assert get_program("dpsgd_mnist") is PROGRAMS["dpsgd_mnist"]


def test_unknown_program_lists_the_valid_names():
    with pytest.raises(KeyError) as info:
        get_program("dpsgd_transformer")
    assert info.value.args[0] == ("unknown synthetic program 'dpsgd_transformer'; choose one of: matvec, linear_grad, "
                                  "dpsgd_ffnn, sgd_ffnn, dpsgd_mnist, sgd_mnist, dpsgd_logreg, sgd_logreg, "
                                  "dpsgd_cifar10, sgd_cifar10, dpsgd_embedding, sgd_embedding, dpsgd_lstm, sgd_lstm")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        PROGRAMS["other"] = PROGRAMS["matvec"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROGRAMS["matvec"].name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        PROGRAMS["dpsgd_ffnn"].hyperparameters["sigma"] = 0.0  # type: ignore[index]


def test_metadata():
    for program in PROGRAMS.values():
        assert program.description and "\n" not in program.description
        assert "float32" in program.dtypes
        assert len(program.output_names) == len(set(program.output_names)) >= 1
    assert PROGRAMS["matvec"].default_batch_size is None and PROGRAMS["linear_grad"].default_batch_size is None
    assert all(PROGRAMS[name].default_batch_size == 128 for name in STEPS)
    assert dict(PROGRAMS["dpsgd_mnist"].hyperparameters) == {"C": 1.0, "sigma": 1.1, "lr": 0.15}
    assert dict(PROGRAMS["sgd_ffnn"].hyperparameters) == {"lr": 0.15}
    assert dict(PROGRAMS["matvec"].hyperparameters) == {}
    assert PROGRAMS["matvec"].output_names == ("y",)
    assert PROGRAMS["linear_grad"].output_names == ("grad_w", "grad_b")
    assert PROGRAMS["dpsgd_ffnn"].output_names == ("dense1_w", "dense1_b", "dense2_w", "dense2_b")
    assert PROGRAMS["dpsgd_ffnn"].function_name == "dpsgd_ffnn_step"
    assert PROGRAMS["linear_grad"].function_name == "linear_grad"


def test_parameter_counts():
    assert PROGRAMS["dpsgd_mnist"].parameter_count() == 26_010
    assert PROGRAMS["sgd_mnist"].parameter_count() == 26_010
    assert MNIST_CNN.parameter_count == 26_010
    assert PROGRAMS["dpsgd_ffnn"].parameter_count() == 104 * 50 + 50 + 50 * 2 + 2
    assert PROGRAMS["matvec"].parameter_count() == 30
    assert PROGRAMS["dpsgd_logreg"].parameter_count() == 104 + 1
    # The CIFAR10 CNN's convolutions, counted from the seed's layer list: 3x3 kernels plus biases.
    channels = [3, 32, 32, 64, 64, 128, 128, 256, 10]
    assert PROGRAMS["dpsgd_cifar10"].parameter_count() == sum(9 * a * b + b for a, b in zip(channels, channels[1:]))
    assert PROGRAMS["sgd_cifar10"].parameter_count() == 605_226  # the seed's "about 605k"
    assert PROGRAMS["dpsgd_embedding"].parameter_count() == 10_004 * 16 + 16 * 16 + 16 + 16 * 2 + 2
    assert PROGRAMS["dpsgd_lstm"].parameter_count() == 10_004 * 100 + 2 * (100 * 400) + 400 + 100 * 2 + 2


def test_shapes():
    assert PROGRAMS["matvec"].shapes() == {"w": (5, 5), "b": (5,), "x": (5,)}
    assert PROGRAMS["linear_grad"].shapes() == {"w": (5, 5), "b": (5,), "x": (5,), "y": (5,)}
    assert PROGRAMS["sgd_ffnn"].shapes(16) == {"dense1_w": (104, 50), "dense1_b": (50,), "dense2_w": (50, 2),
                                               "dense2_b": (2,), "x": (16, 104), "y": (16,)}
    mnist = PROGRAMS["dpsgd_mnist"].shapes()
    assert list(mnist) == ["conv1_w", "conv1_b", "conv2_w", "conv2_b", "dense1_w", "dense1_b", "dense2_w",
                           "dense2_b", "x", "y", "noise_conv1_w", "noise_conv1_b", "noise_conv2_w", "noise_conv2_b",
                           "noise_dense1_w", "noise_dense1_b", "noise_dense2_w", "noise_dense2_b"]
    assert mnist["conv1_w"] == (8, 8, 1, 16) and mnist["conv2_w"] == (4, 4, 16, 32)
    assert mnist["dense1_w"] == (512, 32) and mnist["x"] == (128, 28, 28, 1) and mnist["y"] == (128,)
    assert all(mnist[f"noise_{name}"] == mnist[name] for name in PROGRAMS["dpsgd_mnist"].output_names)
    assert PROGRAMS["sgd_logreg"].shapes(16) == {"dense_w": (104, 1), "dense_b": (1,), "x": (16, 104), "y": (16,)}
    cifar = PROGRAMS["sgd_cifar10"].shapes(16)
    assert cifar["x"] == (16, 32, 32, 3) and cifar["conv1_w"] == (3, 3, 3, 32) and cifar["conv8_w"] == (3, 3, 256, 10)
    assert PROGRAMS["sgd_embedding"].shapes(16) == {
        "embedding": (10_004, 16), "dense1_w": (16, 16), "dense1_b": (16,), "dense2_w": (16, 2), "dense2_b": (2,),
        "x": (16, 256), "y": (16,)}
    assert PROGRAMS["sgd_lstm"].shapes(16) == {
        "embedding": (10_004, 100), "lstm_wx": (100, 400), "lstm_wh": (100, 400), "lstm_b": (400,),
        "dense_w": (100, 2), "dense_b": (2,), "x": (16, 256), "y": (16,)}


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_ordered_seeded_and_typed(name):
    program = PROGRAMS[name]
    inputs = small_inputs(program)
    assert {k: v.shape for k, v in inputs.items()} == program.shapes(SMALL_BATCH.get(name))
    assert list(inputs) == list(program.shapes(SMALL_BATCH.get(name)))
    roles = [spec.role for spec in program.input_specs(SMALL_BATCH.get(name))]
    assert roles == sorted(roles, key=["parameter", "data", "label", "noise"].index)
    for spec in program.input_specs(SMALL_BATCH.get(name)):
        value = inputs[spec.name]
        tokens = spec.name == "x" and any(model in name for model in TOKEN_MODELS)
        assert value.dtype == (np.int32 if spec.role == "label" or tokens else np.float32), spec.name
        assert np.all(np.isfinite(value))
    again = small_inputs(program)
    assert all(np.array_equal(inputs[k], again[k]) for k in inputs)
    other = small_inputs(program, seed=1)
    assert all(not np.array_equal(inputs[k], other[k]) for k in inputs if inputs[k].size > 1 and k != "y")
    as64 = small_inputs(program, dtype="float64")
    assert all(np.array_equal(inputs[k], as64[k].astype(inputs[k].dtype)) for k in inputs)


def test_labels_and_sharing_between_programs():
    dp, sgd = PROGRAMS["dpsgd_mnist"], PROGRAMS["sgd_mnist"]
    big, small = dp.inputs(batch_size=64), sgd.inputs(batch_size=4)
    assert big["y"].min() >= 0 and big["y"].max() <= 9 and len(set(big["y"].tolist())) > 5
    assert 0.0 <= big["x"].min() and big["x"].max() < 1.0
    # Parameters depend on the seed only, not on the batch size or on DP-SGD vs SGD.
    for name in dp.output_names:
        assert np.array_equal(big[name], small[name])
    # The per-parameter noise is standard normal.
    noise = np.concatenate([big[f"noise_{name}"].ravel() for name in dp.output_names])
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1.0) < 0.02


def test_input_errors():
    with pytest.raises(ValueError, match=r"^dpsgd_ffnn runs in float32 or float64, not 'float16'$"):
        PROGRAMS["dpsgd_ffnn"].inputs(dtype="float16")
    with pytest.raises(ValueError, match=r"^matvec has no batch dimension; leave batch_size as None$"):
        PROGRAMS["matvec"].inputs(batch_size=4)
    with pytest.raises(ValueError, match=r"^sgd_ffnn: batch_size must be a positive integer, got 0$"):
        PROGRAMS["sgd_ffnn"].shapes(0)
    with pytest.raises(KeyError) as info:
        PROGRAMS["sgd_ffnn"].with_hyperparameters(sigma=0.0)
    assert info.value.args[0] == "sgd_ffnn has no hyperparameter 'sigma'; it has: lr"
    inputs = small_inputs(PROGRAMS["linear_grad"])
    del inputs["y"]
    with pytest.raises(ValueError, match=r"^linear_grad: reference\(\) needs inputs named w, b, x, y; got w, b, x$"):
        PROGRAMS["linear_grad"].reference(inputs)


def test_with_hyperparameters_returns_a_new_program():
    program = PROGRAMS["dpsgd_ffnn"]
    quiet = program.with_hyperparameters(sigma=0.0)
    assert dict(quiet.hyperparameters) == {"C": 1.0, "sigma": 0.0, "lr": 0.15}
    assert program.hyperparameters["sigma"] == 1.1
    assert quiet != program and quiet.name == program.name


def test_programs_pickle():
    for program in PROGRAMS.values():
        assert pickle.loads(pickle.dumps(program)) == program


def test_importing_the_programs_loads_no_framework():
    code = "import sys, json, xlainspect.programs; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    loaded = json.loads(result.stdout)
    assert "xlainspect.programs.dpsgd" in loaded
    assert sorted(name for name in loaded if name.split(".")[0] in ("jax", "jaxlib", "tensorflow", "keras")) == []


# -- the numpy reference on its own ------------------------------------------------------------------------------------


def _finite_difference_check(model: Any, program: Program) -> float:
    inputs = program.inputs(batch_size=3, dtype="float64", seed=3)
    params = [inputs[p.name] for p in model.parameters]
    _, grads = model.numpy_loss_and_grads(params, inputs["x"], inputs["y"])
    rng = np.random.default_rng(0)
    worst, eps = 0.0, 1e-6
    for k, (param, grad) in enumerate(zip(params, grads)):
        assert grad.shape == param.shape
        for _ in range(4):
            index = tuple(int(rng.integers(0, n)) for n in param.shape)
            losses = []
            for sign in (1.0, -1.0):
                moved = [p.copy() for p in params]
                moved[k][index] += sign * eps
                losses.append(model.numpy_loss_and_grads(moved, inputs["x"], inputs["y"])[0])
            numeric = (losses[0] - losses[1]) / (2 * eps)
            worst = max(worst, abs(numeric - grad[index]) / max(abs(grad[index]), 1e-3))
    return worst


def test_reference_gradients_match_finite_differences():
    """The hand-written backward passes (im2col/col2im, max-pool routing) against central differences."""
    assert _finite_difference_check(FFNN, PROGRAMS["sgd_ffnn"]) < 1e-5
    assert _finite_difference_check(MNIST_CNN, PROGRAMS["sgd_mnist"]) < 1e-5


def _directional_check(model: Any, batch: int = 3, seed: int = 3) -> float:
    """The backward pass against central differences of the float64 forward along random directions: every
    parameter element moves at once, so an element that a coordinate check would rarely pick (an embedding row,
    one gate of the LSTM) cannot hide. Returns the worst relative error over three directions.

    A direction whose step crosses a ReLU or max-pool kink has different one-sided slopes there; such a direction
    is told by its forward and backward differences disagreeing, and another is drawn (at most ten in all).
    """
    program = PROGRAMS[f"sgd_{model.name}"]
    inputs = program.inputs(batch_size=batch, dtype="float64", seed=seed)
    params = [inputs[p.name] for p in model.parameters]
    loss, grads = model.numpy_loss_and_grads(params, inputs["x"], inputs["y"])
    assert [g.shape for g in grads] == [p.shape for p in params]
    rng = np.random.default_rng(seed)
    errors, eps = [], 1e-8
    for _ in range(10):
        directions = [rng.standard_normal(p.shape) for p in params]
        plus, minus = (model.numpy_loss_and_grads([p + sign * eps * d for p, d in zip(params, directions)],
                                                  inputs["x"], inputs["y"])[0] for sign in (1.0, -1.0))
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, directions))
        forward, backward = (plus - loss) / eps, (loss - minus) / eps
        if abs(forward - backward) > 1e-3 * abs(analytic):
            continue  # a kink within eps of the point along this direction
        errors.append(abs((plus - minus) / (2 * eps) - analytic) / abs(analytic))
        if len(errors) == 3:
            return max(errors)
    raise AssertionError(f"{model.name}: only {len(errors)} of 10 directions were free of kinks")


@pytest.mark.parametrize("model", MODELS)
def test_reference_gradients_match_directional_differences(model):
    """Every model's hand-written backward (BPTT for the LSTM, scatter-add for embeddings, average-pool sharing).

    With steps of 1e-8 in float64, truncation and rounding errors are below 1e-7 of the derivative.
    """
    assert _directional_check(MODELS[model]) < 1e-6


def test_embedding_gradient_adds_up_repeated_tokens():
    """Text repeats words: a row read n times gets n gradients (a scatter that overwrote would keep one).

    Every position of one example receives the same gradient, d(pooled) / 256, through the mean over time, so
    row r's gradient is count(r) times that vector and every read row divided by its count is the same vector.
    """
    inputs = PROGRAMS["sgd_embedding"].inputs(batch_size=1, dtype="float64")
    values, counts = np.unique(inputs["x"][0], return_counts=True)
    assert counts.max() > 5, "Zipf-distributed tokens should repeat the commonest words"
    params = [inputs[p.name] for p in EMBEDDING.parameters]
    table_grad = EMBEDDING.numpy_loss_and_grads(params, inputs["x"], inputs["y"])[1][0]
    assert sorted(np.flatnonzero(np.abs(table_grad).sum(axis=1))) == sorted(values.tolist())
    per_read = table_grad[values] / counts[:, None]
    assert np.abs(per_read[0]).max() > 0
    np.testing.assert_allclose(per_read, np.broadcast_to(per_read[0], per_read.shape), rtol=1e-12)


def test_reference_per_example_gradients_sum_to_the_batch_gradient():
    program = PROGRAMS["sgd_mnist"]
    inputs = program.inputs(batch_size=3, dtype="float64")
    params = parameters_of(program, inputs)
    _, batch_grads = MNIST_CNN.numpy_loss_and_grads(params, inputs["x"], inputs["y"])
    per_example = per_example_grads_numpy(MNIST_CNN, params, inputs["x"], inputs["y"])
    for mean_grad, stacked in zip(batch_grads, per_example):
        assert relative_error(stacked.mean(axis=0), mean_grad) < 1e-12


# -- JAX, TF and the reference agree -----------------------------------------------------------------------------------


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.parametrize("name", NAMES)
def test_frameworks_agree_with_each_other_and_the_reference(name, run_jax, run_tf):
    program = PROGRAMS[name]
    inputs = small_inputs(program)
    jax_out, tf_out, reference = run_jax(program, inputs), run_tf(program, inputs), program.reference(inputs)
    assert len(jax_out) == len(tf_out) == len(reference) == len(program.output_names)
    for output, j, t, r in zip(program.output_names, jax_out, tf_out, reference):
        assert j.shape == t.shape == r.shape, output
        assert j.dtype == t.dtype == np.float32, output
        assert relative_error(j, r) < TOLERANCE["float32"], f"{name}.{output}: JAX vs numpy"
        assert relative_error(t, r) < TOLERANCE["float32"], f"{name}.{output}: TF vs numpy"
        assert relative_error(j, t) < TOLERANCE["float32"], f"{name}.{output}: JAX vs TF"


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.parametrize("name", STEPS)
def test_updates_agree(name, run_jax, run_tf):
    """The same check on ``new - old``: the parameters dominate the outputs and would hide an error in the step."""
    program = PROGRAMS[name]
    inputs = small_inputs(program)
    old = parameters_of(program, inputs)
    reference = [r - p for r, p in zip(program.reference(inputs), old)]
    for framework, outputs in (("JAX", run_jax(program, inputs)), ("TF", run_tf(program, inputs))):
        for output, new, p, r in zip(program.output_names, outputs, old, reference):
            assert relative_error(new - p, r) < _update_tolerance(p, r), f"{name}.{output}: {framework} update"


def _update_tolerance(old: np.ndarray, update: np.ndarray) -> float:
    """TOLERANCE plus what float32 rounding of ``old + update`` alone costs, relative to the update.

    Where an update is tiny against its parameter (an embedding row that one token of 256 touched), storing the
    new parameter in float32 moves it by up to half an ulp of the parameter, which can be 1e-4 of the update. That
    floor is computed here from the numbers, element by element, rather than loosening the tolerance for all.
    """
    rounding = np.linalg.norm(np.where(update != 0, np.spacing(np.abs(old).astype(np.float32)), 0.0))
    return TOLERANCE["float32"] + float(rounding) / max(float(np.linalg.norm(update)), np.finfo(np.float64).tiny)


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.parametrize("name", NAMES)
def test_float64(name, run_jax, run_tf, jax_module):
    program = PROGRAMS[name]
    inputs = small_inputs(program, dtype="float64")
    reference = program.reference(inputs)
    for framework, outputs in (("JAX", run_jax(program, inputs)), ("TF", run_tf(program, inputs))):
        for output, out, r in zip(program.output_names, outputs, reference):
            assert out.dtype == np.float64, f"{name}.{output}: {framework}"
            assert relative_error(out, r) < TOLERANCE["float64"], f"{name}.{output}: {framework} vs numpy"
    # x64 was on for that call only: the process default, and float32 calls of the same function, are unchanged.
    assert not jax_module.config.jax_enable_x64
    assert run_jax(program, small_inputs(program))[0].dtype == np.float32


# -- compiled module names ---------------------------------------------------------------------------------------------


@pytest.mark.requires_jax
@pytest.mark.parametrize("name", NAMES)
def test_jax_module_is_named_after_the_program(name, jax_module):
    program = PROGRAMS[name]
    function = program.jax_function()
    assert function.__name__ == program.function_name
    text = function.lower(*small_inputs(program).values()).as_text(dialect="hlo")
    assert text.startswith(f"HloModule jit_{program.function_name},")


@pytest.mark.requires_tf
@pytest.mark.parametrize("name", ["linear_grad", "dpsgd_ffnn"])
def test_tf_module_is_named_after_the_program(name, tf_module):
    program = PROGRAMS[name]
    function = program.tf_function()
    assert function.python_function.__name__ == program.function_name
    args = [tf_module.constant(v) for v in small_inputs(program).values()]
    text = function.experimental_get_compiler_ir(*args)(stage="hlo")
    assert f"_{program.function_name}_" in text.splitlines()[0]


# -- DP-SGD: clipping and noise ----------------------------------------------------------------------------------------

CLIPS: dict[str, Callable[[list[np.ndarray], float], list[Any]]] = {
    "numpy": clip_numpy, "jax": clip_jax, "tf": clip_tf}


def _clip(framework: str, grads: list[np.ndarray], clip_norm: float) -> list[np.ndarray]:
    if framework != "numpy":
        pytest.importorskip("jax" if framework == "jax" else "tensorflow")
    return [np.asarray(g) for g in CLIPS[framework](grads, clip_norm)]


@st.composite
def per_example_gradients(draw: st.DrawFn) -> tuple[list[np.ndarray], float, np.ndarray]:
    """Per-example gradients of 1-3 parameters whose global norms are drawn on both sides of C."""
    clip_norm = draw(st.sampled_from([0.1, 1.0, 4.5]))
    batch = draw(st.integers(1, 5))
    shapes = draw(st.lists(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), min_size=1, max_size=3))
    # Magnitudes stay far above float32's subnormal range: XLA on CPU flushes subnormals to zero, which would make
    # "left unchanged" fail for a reason that has nothing to do with clipping.
    element = st.one_of(st.just(0.0), st.floats(1e-6, 1), st.floats(-1, -1e-6))
    directions = [draw(hnp.arrays(np.float64, (batch, *shape), elements=element)) for shape in shapes]
    ratios = np.array(draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 0.999), st.floats(1.001, 1e3)),
                                    min_size=batch, max_size=batch)))
    norms = global_norms_numpy(directions)
    scale = np.where(norms > 0, ratios * clip_norm / np.where(norms > 0, norms, 1.0), 0.0)
    grads = [(d * scale.reshape((-1,) + (1,) * (d.ndim - 1))).astype(np.float32) for d in directions]
    return grads, clip_norm, global_norms_numpy([g.astype(np.float64) for g in grads])


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=per_example_gradients())
def test_clipping_bounds_large_gradients_and_keeps_small_ones(case):
    grads, clip_norm, norms = case
    for framework in CLIPS:
        clipped = _clip(framework, grads, clip_norm)
        assert [c.shape for c in clipped] == [g.shape for g in grads]
        after = global_norms_numpy([c.astype(np.float64) for c in clipped])
        assert np.all(after <= clip_norm * (1 + 1e-6)), framework
        small, large = norms <= clip_norm, norms > clip_norm
        np.testing.assert_allclose(after[large], clip_norm, rtol=1e-5, err_msg=framework)
        for g, c in zip(grads, clipped):
            # Exactly unchanged: the factor is 1.0, not norm-dependent, for gradients already within C.
            assert np.array_equal(c[small], g[small]), framework
            # A large gradient is scaled by C / norm: same direction, norm C.
            factor = (clip_norm / norms[large]).reshape((-1,) + (1,) * (g.ndim - 1))
            np.testing.assert_allclose(c[large], g[large] * factor, rtol=1e-5, atol=1e-6 * clip_norm,
                                       err_msg=framework)


@pytest.mark.parametrize("framework", ["numpy", pytest.param("jax", marks=pytest.mark.requires_jax),
                                       pytest.param("tf", marks=pytest.mark.requires_tf)])
def test_clipping_never_scales_a_gradient_up(framework):
    """The published JAX code divided by clip(norm / C, max=1): norm 0.5 became 1.0 and norm 3.0 stayed 3.0."""
    small = [np.array([[0.3, 0.0]], np.float32), np.array([[0.4]], np.float32)]  # global norm 0.5
    large = [np.array([[1.8, 0.0]], np.float32), np.array([[2.4]], np.float32)]  # global norm 3.0
    zero = [np.zeros((1, 2), np.float32), np.zeros((1, 1), np.float32)]
    both = [np.concatenate(pair) for pair in zip(small, large, zero)]
    clipped = _clip(framework, both, 1.0)
    norms = global_norms_numpy([c.astype(np.float64) for c in clipped])
    np.testing.assert_allclose(norms, [0.5, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[0], [[0.3, 0.0], [0.6, 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(clipped[1], [[0.4], [0.8], [0.0]], rtol=1e-6)


def _clipped_mean_step(program: Program, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``param - lr * mean(clipped per-example gradients)``, the DP step without noise, in numpy."""
    model = program.implementation.model  # type: ignore[attr-defined]
    params = parameters_of(program, inputs)
    x, y = data_of(inputs), inputs["y"]
    grads = per_example_grads_numpy(model, params, x, y)
    norms = global_norms_numpy(grads)
    clip_norm = program.hyperparameters["C"]
    assert norms.min() < clip_norm < norms.max(), "inputs should exercise both sides of C"
    return [-program.hyperparameters["lr"] * g.mean(axis=0) for g in clip_numpy(grads, clip_norm)]


@pytest.mark.requires_jax
@pytest.mark.requires_tf
# Each C lies between the smallest and largest per-example norm of the small batch (checked in _clipped_mean_step).
@pytest.mark.parametrize("name, clip_norm", [("dpsgd_ffnn", 1.0), ("dpsgd_mnist", 4.5), ("dpsgd_logreg", 5.0),
                                             ("dpsgd_cifar10", 2.28), ("dpsgd_embedding", 1.0), ("dpsgd_lstm", 1.8)])
def test_without_noise_the_dp_step_is_the_clipped_mean_step(name, clip_norm, run_jax, run_tf):
    program = PROGRAMS[name].with_hyperparameters(sigma=0.0, C=clip_norm)
    inputs = small_inputs(program)  # noise inputs are standard normal: sigma = 0 must drop them
    old = parameters_of(program, inputs)
    expected = _clipped_mean_step(program, inputs)
    for framework, outputs in (("JAX", run_jax(program, inputs)), ("TF", run_tf(program, inputs)),
                               ("numpy", program.reference(inputs))):
        for output, new, p, e in zip(program.output_names, outputs, old, expected):
            assert relative_error(new - p, e) < _update_tolerance(p, e), f"{name}.{output}: {framework}"


@pytest.mark.requires_jax
@pytest.mark.requires_tf
def test_noise_enters_as_sigma_times_c_times_noise_over_batch(run_jax, run_tf):
    program = PROGRAMS["dpsgd_ffnn"]
    quiet = program.with_hyperparameters(sigma=0.0)
    inputs = small_inputs(program)
    lr, sigma, clip_norm = (program.hyperparameters[k] for k in ("lr", "sigma", "C"))
    batch = SMALL_BATCH["dpsgd_ffnn"]
    for run in (run_jax, run_tf, lambda p, i: p.reference(i)):
        noisy, plain = run(program, inputs), run(quiet, inputs)
        for output, a, b in zip(program.output_names, noisy, plain):
            expected = -lr * sigma * clip_norm * np.asarray(inputs[f"noise_{output}"], np.float64) / batch
            difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
            assert relative_error(difference, expected) < TOLERANCE["float32"], output


@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.parametrize("name, model", [(f"sgd_{name}", model) for name, model in MODELS.items()])
def test_sgd_step_is_the_mean_gradient_step(name, model, run_jax, run_tf):
    """Against per-example numpy gradients averaged here, a different path from the reference's batched backward."""
    program = PROGRAMS[name]
    inputs = small_inputs(program)
    old = parameters_of(program, inputs)
    grads = per_example_grads_numpy(model, old, data_of(inputs), inputs["y"])
    expected = [-program.hyperparameters["lr"] * g.mean(axis=0) for g in grads]
    for framework, outputs in (("JAX", run_jax(program, inputs)), ("TF", run_tf(program, inputs))):
        for output, new, p, e in zip(program.output_names, outputs, old, expected):
            assert relative_error(new - p, e) < _update_tolerance(p, e), f"{name}.{output}: {framework}"


@pytest.mark.parametrize("name", NAMES)
def test_input_types_describe_the_inputs_without_making_them(name):
    program = get_program(name)
    batch = SMALL_BATCH.get(name)
    for dtype in program.dtypes:
        made = program.inputs(batch_size=batch, dtype=dtype)
        assert program.input_types(batch, dtype) == {k: (v.shape, v.dtype.name) for k, v in made.items()}


def test_programs_command_lists_every_program_with_its_inputs_types(capsys):
    from xlainspect.cli import main

    assert main(["programs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listed] == list(NAMES)
    rows = {row["name"]: row for row in listed}
    lstm = rows["dpsgd_lstm"]
    assert lstm["shapes"]["x"] == [128, 256] and lstm["dtypes"]["x"] == "int32" and lstm["dtypes"]["y"] == "int32"
    assert lstm["dtypes"]["lstm_wx"] == "float32" and lstm["parameter_count"] == LSTM.parameter_count
    assert rows["dpsgd_ffnn"]["dtypes"]["x"] == "float32"
    assert rows["dpsgd_lstm"]["description"] != rows["sgd_lstm"]["description"]
    assert main(["programs"]) == 0
    text = capsys.readouterr().out
    assert "x 128x256 int32, y 128 int32" in text  # token ids say they are integers...
    assert "x 128x104, y 128 int32" in text  # ...float inputs take the type asked for and say nothing
