"""The programs in PyTorch (``xlainspect/programs/_torch.py``): eager ``torch`` (Opacus for DP-SGD) and ``torch_xla``
compute the same function as the float64 numpy reference and as JAX, on the same inputs.

The test process has no torch (see ``torch_helpers.py``): each framework's cases run in one child under the PyTorch
environment, once a session (``tests/programs/torch_steps.py``), on inputs written here; the tests compare what it
wrote. Steps are also compared on ``new - old``: the parameters dominate a step's outputs and would hide an error in
the update (as ``test_synthetic.test_updates_agree`` does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_synthetic import TOLERANCE, _update_tolerance, relative_error
from torch_helpers import REPO, run_torch_python
from xlainspect.programs import PROGRAMS, Program

CHILD = REPO / "tests" / "programs" / "torch_steps.py"
BATCH = 8
NAMES = tuple(PROGRAMS)
# Opacus scales a clipped example by C / (norm + 1e-6) where the reference scales by C / norm (documented in
# _torch.py): a clipped example's gradient moves by 1e-6 / norm relative. In the programs' own steps C is 1, so a
# clipped norm is above 1 and 1e-6 bounds it (measured at batch 8: up to 2.5e-7, dpsgd_embedding). Clipped at C = 1e-3
# (test_opacus_clips_at_c), dpsgd_ffnn's 8 norms are 0.88 to 15, and the update moves by their weighted mean, well
# under 1e-6. A wrong clip, noise or layout is off by 1e-2 or more.
OPACUS_TOLERANCE = 1e-6
# PyTorch/XLA cannot run the LSTM's DP-SGD step (Classifier.torch_xla_dp_unavailable says why; a test below checks
# that it says so); its SGD step loops with PyTorch/XLA's scan and is checked as every other.
XLA_UNAVAILABLE = tuple(name for name in PROGRAMS if PROGRAMS[name].unavailable("torch_xla"))
# The other children: 14 programs x 2 dtypes, about 2 minutes unloaded; 9 minutes were measured on a loaded 2-core
# machine, above setup.cfg's 300 s per test (the session fixture's setup counts against its first test).
pytestmark = pytest.mark.timeout(1200)


@dataclass(frozen=True)
class Case:
    """One step to run in the PyTorch child: a program (maybe with hyperparameters changed) on given inputs."""

    framework: str
    name: str
    dtype: str = "float64"
    batch_size: int | None = BATCH
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    noise: str = "as drawn"  # or "rolled": every noise array's elements shifted by one

    @property
    def id(self) -> str:
        changed = "".join(f"-{key}{value:g}" for key, value in sorted(self.hyperparameters.items()))
        rolled = "-rolled" if self.noise == "rolled" else ""
        return f"{self.framework}-{self.name}-{self.dtype}-b{self.batch_size}{changed}{rolled}"

    @property
    def program(self) -> Program:
        program = PROGRAMS[self.name]
        return program.with_hyperparameters(**self.hyperparameters) if self.hyperparameters else program

    def inputs(self) -> dict[str, np.ndarray]:
        program = PROGRAMS[self.name]
        batch = self.batch_size if program.default_batch_size is not None else None
        inputs = program.inputs(batch, self.dtype)
        if self.noise == "rolled":
            inputs = {key: np.roll(value, 1) if key.startswith("noise_") else value for key, value in inputs.items()}
        return inputs


def _plain(framework: str, name: str, dtype: str) -> Case:
    return Case(framework, name, dtype, BATCH)


DP_NEGATIVES = (  # dpsgd_ffnn with one thing changed: the step must follow it
    Case("torch", "dpsgd_ffnn", hyperparameters={"sigma": 2.2}),
    Case("torch", "dpsgd_ffnn", noise="rolled"),
    Case("torch", "dpsgd_ffnn", hyperparameters={"sigma": 0.0, "C": 1e-3}),
    Case("torch", "dpsgd_ffnn", hyperparameters={"sigma": 0.0, "C": 1e3}),
    Case("torch_xla", "dpsgd_ffnn", noise="rolled"),
)
CASES = {
    "torch": (*(_plain("torch", name, dtype) for name in NAMES for dtype in ("float64", "float32")),
              *(case for case in DP_NEGATIVES if case.framework == "torch")),
    "torch_xla": (*(_plain("torch_xla", name, "float64") for name in NAMES if name not in XLA_UNAVAILABLE),
                  *(_plain("torch_xla", name, "float32") for name in NAMES if name not in XLA_UNAVAILABLE),
                  *(case for case in DP_NEGATIVES if case.framework == "torch_xla")),
}


@dataclass(frozen=True)
class ChildRun:
    """What one framework's child computed: outputs per case id, or the error that case raised."""

    outputs: Mapping[str, tuple[np.ndarray, ...]]
    errors: Mapping[str, str]
    seconds: Mapping[str, float]

    def of(self, case: Case) -> tuple[np.ndarray, ...]:
        assert case.id not in self.errors, f"{case.id}: {self.errors[case.id]}"
        assert case.id in self.outputs, f"{case.id}: the child wrote no outputs"
        return self.outputs[case.id]


def _run_child(group: str, folder: Path, timeout: float = 1200) -> ChildRun:
    request = []
    for case in CASES[group]:
        path = folder / f"{case.id}.inputs.npz"
        np.savez(path, **case.inputs())
        request.append({"id": case.id, "program": case.name, "framework": case.framework, "dtype": case.dtype,
                        "batch_size": case.batch_size if PROGRAMS[case.name].default_batch_size else None,
                        "hyperparameters": dict(case.hyperparameters), "inputs": str(path)})
    (folder / "request.json").write_text(json.dumps(request))
    out = folder / "out"
    out.mkdir()
    report = run_torch_python([str(CHILD), str(folder / "request.json"), str(out)], timeout=timeout)
    outputs, errors, seconds = {}, {}, {}
    for case in CASES[group]:
        result = report["cases"].get(case.id, {"error": "the child did not report this case"})
        if "error" in result:
            errors[case.id] = result["error"]
            continue
        seconds[case.id] = result["seconds"]
        with np.load(out / f"{case.id}.npz") as stored:
            outputs[case.id] = tuple(stored[name] for name in case.program.output_names)
    return ChildRun(outputs, errors, seconds)


@pytest.fixture(scope="session")
def eager_run(tmp_path_factory: pytest.TempPathFactory) -> ChildRun:
    """Every ``torch`` case, run once a session in one child."""
    return _run_child("torch", tmp_path_factory.mktemp("torch_steps"))


@pytest.fixture(scope="session")
def xla_run(tmp_path_factory: pytest.TempPathFactory) -> ChildRun:
    """Every ``torch_xla`` case but the LSTM's, run once a session in one child."""
    return _run_child("torch_xla", tmp_path_factory.mktemp("torch_xla_steps"))


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Any:
    """The child run that holds the test's ``case`` (or, without one, its ``framework``'s)."""
    if request.node.callspec.params["framework"] == "torch":
        return request.getfixturevalue("eager_run")
    return request.getfixturevalue("xla_run")


def _tolerance(case: Case) -> float:
    """float64: 1e-10 relative, but Opacus' clipping epsilon for its DP steps; float32: test_synthetic's 1e-4."""
    if case.dtype == "float32":
        return TOLERANCE["float32"]
    if case.framework == "torch" and case.name.startswith("dpsgd_"):
        return OPACUS_TOLERANCE
    return TOLERANCE["float64"]


def _updates(program: Program, inputs: Mapping[str, np.ndarray],
             outputs: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(old parameter, new - old) per output of a step; empty for matvec and linear_grad, which are not steps."""
    if program.default_batch_size is None:
        return []
    return [(np.asarray(inputs[name], np.float64), np.asarray(new, np.float64) - np.asarray(inputs[name], np.float64))
            for name, new in zip(program.output_names, outputs)]


def _assert_agree(case: Case, outputs: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...], what: str) -> None:
    program, inputs, tolerance = case.program, case.inputs(), _tolerance(case)
    assert len(outputs) == len(expected) == len(program.output_names), case.id
    for output, actual, wanted in zip(program.output_names, outputs, expected):
        assert actual.shape == np.shape(wanted), f"{case.id}.{output}: shape {actual.shape} vs {np.shape(wanted)}"
        assert actual.dtype == np.dtype(case.dtype), f"{case.id}.{output}: {actual.dtype}"
        error = relative_error(actual, wanted)
        assert error < tolerance, f"{case.id}.{output}: {error:.2e} from {what} (tolerance {tolerance:g})"
    for output, (old, update), (_, wanted) in zip(program.output_names, _updates(program, inputs, outputs),
                                                  _updates(program, inputs, expected)):
        bound = _update_tolerance(old, wanted) if case.dtype == "float32" else tolerance
        error = relative_error(update, wanted)
        assert error < bound, f"{case.id}.{output}: update {error:.2e} from {what}'s (tolerance {bound:g})"


def _params(framework: str, dtypes: tuple[str, ...]) -> list[Any]:
    params = []
    for case in CASES[framework]:
        if case.dtype not in dtypes or case.hyperparameters or case.noise != "as drawn":
            continue
        marks = [pytest.mark.requires_torch if framework == "torch" else pytest.mark.requires_torch_xla]
        params.append(pytest.param(framework, case, marks=marks, id=case.id))
    return params


ALL_DTYPES = ("float64", "float32")


@pytest.mark.parametrize("framework, case", [*_params("torch", ALL_DTYPES), *_params("torch_xla", ALL_DTYPES)])
def test_matches_the_reference(framework, case, run):
    assert case.framework == framework
    _assert_agree(case, run.of(case), case.program.reference(case.inputs()), "the float64 reference")


@pytest.fixture(scope="session")
def jax_outputs() -> Any:
    """Runs a program's JAX function on inputs, compiled once per program and dtype (in the test process)."""
    pytest.importorskip("jax", reason="jax is not installed: pip install jax")
    functions: dict[str, Any] = {}

    def outputs(case: Case) -> tuple[np.ndarray, ...]:
        if case.name not in functions:
            functions[case.name] = case.program.jax_function()
        return tuple(np.asarray(out) for out in functions[case.name](*case.inputs().values()))

    return outputs


@pytest.mark.requires_jax
@pytest.mark.parametrize("framework, case", [*_params("torch", ("float64",)), *_params("torch_xla", ("float64",))])
def test_matches_jax(framework, case, run, jax_outputs):
    _assert_agree(case, run.of(case), jax_outputs(case), "JAX")


# -- changing what a DP step is given changes its result ---------------------------------------------------------------


def _case(framework: str, **changes: Any) -> Case:
    hyperparameters = changes.pop("hyperparameters", {})
    return next(case for case in DP_NEGATIVES if case.framework == framework
                and dict(case.hyperparameters) == hyperparameters and all(getattr(case, k) == v
                                                                          for k, v in changes.items()))


def _update_error(case: Case, outputs: tuple[np.ndarray, ...], program: Program,
                  inputs: Mapping[str, np.ndarray]) -> float:
    """The largest relative error of the step's updates from ``program``'s reference step on ``inputs``."""
    expected = program.reference(inputs)
    return max(relative_error(update, wanted) for (_, update), (_, wanted)
               in zip(_updates(program, inputs, outputs), _updates(program, inputs, expected)))


@pytest.mark.requires_torch
@pytest.mark.parametrize("framework", ["torch"])
def test_opacus_step_follows_sigma(framework, run):
    case = _case(framework, hyperparameters={"sigma": 2.2})
    outputs, inputs = run.of(case), case.inputs()
    assert _update_error(case, outputs, case.program, inputs) < OPACUS_TOLERANCE
    assert _update_error(case, outputs, PROGRAMS["dpsgd_ffnn"], inputs) > 1e-2  # sigma 1.1's step is another


@pytest.mark.parametrize("framework", [pytest.param("torch", marks=pytest.mark.requires_torch),
                                       pytest.param("torch_xla", marks=pytest.mark.requires_torch_xla)])
def test_dp_step_uses_the_noise_it_is_given(framework, run):
    case = _case(framework, noise="rolled")
    outputs, rolled = run.of(case), case.inputs()
    drawn = PROGRAMS["dpsgd_ffnn"].inputs(BATCH, "float64")
    assert _update_error(case, outputs, case.program, rolled) < _tolerance(case)
    assert _update_error(case, outputs, case.program, drawn) > 1e-2  # the noise as drawn gives another step


@pytest.mark.requires_torch
@pytest.mark.parametrize("framework", ["torch"])
def test_opacus_clips_at_c(framework, run):
    tight, loose = (_case(framework, hyperparameters={"sigma": 0.0, "C": c}) for c in (1e-3, 1e3))
    tight_out, loose_out = run.of(tight), run.of(loose)
    for case, outputs in ((tight, tight_out), (loose, loose_out)):
        assert _update_error(case, outputs, case.program, case.inputs()) < OPACUS_TOLERANCE, case.id
    inputs = tight.inputs()
    for (_, small), (_, large) in zip(_updates(tight.program, inputs, tight_out),
                                      _updates(loose.program, inputs, loose_out)):
        assert relative_error(small, large) > 0.9  # every example clipped to 1e-3: the update nearly vanishes


def test_torch_xla_says_why_it_has_no_dp_lstm():
    # Asked for the step, the program refuses with the reason, before any framework is imported; and it does not
    # list torch_xla among its frameworks, which dump, time and bench go by. Its SGD step has no such limit.
    program = PROGRAMS["dpsgd_lstm"]
    assert XLA_UNAVAILABLE == ("dpsgd_lstm",)
    with pytest.raises(ValueError, match="scan.*vmap"):
        program.torch_step("torch_xla", batch_size=2)
    assert "torch_xla" not in program.frameworks() and "torch" in program.frameworks()
    assert "torch_xla" in PROGRAMS["sgd_lstm"].frameworks() and not PROGRAMS["sgd_lstm"].unavailable("torch_xla")
