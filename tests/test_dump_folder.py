"""The main-module rule on a folder XLA's dumper wrote for a small step whose inputs JAX made eagerly: the step
must win over ``jax.random``'s ``jit__normal``, which has twenty times its instructions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlainspect.errors import InputError
from xlainspect.hlo.dump_folder import dumped_modules, main_module, pick_module

SCRIPT = textwrap.dedent("""\
    import jax, jax.numpy as jnp

    @jax.jit
    def tiny_step(w, x):
        return jnp.tanh(x @ w)

    w = jax.random.normal(jax.random.key(0), (8, 4))
    x = jnp.ones((2, 8)) + 1
    print(tiny_step(w, x).sum())
    """)


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    (folder / "script.py").write_text(SCRIPT)
    env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={folder / 'dump'} --xla_dump_hlo_as_text",
               JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, str(folder / "script.py")], env=env, check=True, capture_output=True, timeout=300)
    return folder / "dump"


@pytest.mark.requires_jax
@pytest.mark.slow
def test_the_users_step_beats_a_larger_jax_helper(raw_folder):
    modules = dumped_modules(raw_folder)
    step = [m for m in modules if m.name == "jit_tiny_step"]
    helpers = [m for m in modules if m.name == "jit__normal"]
    assert step and helpers and helpers[0].instructions > step[0].instructions  # the trap is really there
    assert main_module(modules).name == "jit_tiny_step"
    assert [m.number for m in modules] == sorted(m.number for m in modules)
    assert pick_module(modules, "normal", str(raw_folder)).name == "jit__normal"
    assert pick_module(modules, "-1", str(raw_folder)) == modules[-1]


def test_pick_module_refuses_ambiguity_and_bad_expressions():
    from xlainspect.hlo.dump_folder import DumpedModule

    modules = (DumpedModule(1, "jit_a_step", None, Path("a"), 10), DumpedModule(2, "jit_b_step", None, Path("b"), 5))
    assert pick_module(modules, None, "f").name == "jit_a_step"
    assert pick_module(modules, "^jit_b", "f").name == "jit_b_step"
    for selector, expected in (("step", "2 modules match"), ("zzz", "no module name matches"),
                               ("(", "not a regular expression"), ("5", "must be 0 to 1")):
        with pytest.raises(InputError, match=expected):
            pick_module(modules, selector, "f")


TORCH_SCRIPT = textwrap.dedent("""\
    import torch, torch_xla

    device = torch_xla.device()
    w, x = torch.randn(64, 32, device=device), torch.randn(16, 64, device=device)  # pending when compile starts

    def tiny_step(w, x):
        return torch.tanh(x @ w).sum(dim=0)

    print(torch_xla.compile(tiny_step, name="tiny_step")(w, x).cpu().sum())
    """)


@pytest.mark.requires_torch_xla
def test_the_users_step_beats_torch_xlas_larger_clear_pending_graph(tmp_path):
    # torch_xla.compile(name=...) first syncs whatever was pending, as '<name>_clear_pending': here the random
    # inputs, a graph far larger than the step. The rule must pick the step, in a folder PyTorch/XLA really wrote.
    from torch_helpers import torch_python

    (tmp_path / "script.py").write_text(TORCH_SCRIPT)
    env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={tmp_path / 'dump'} --xla_dump_hlo_as_text", PJRT_DEVICE="CPU")
    subprocess.run([str(torch_python()), str(tmp_path / "script.py")], env=env, check=True, capture_output=True,
                   timeout=300)
    modules = dumped_modules(tmp_path / "dump")
    pending = [m for m in modules if m.name.startswith("tiny_step_clear_pending")]
    step = [m for m in modules if m.name.startswith("tiny_step.")]
    assert pending and step and pending[0].instructions > step[0].instructions  # the trap is really there
    assert pending[0].helper and not step[0].helper
    assert main_module(modules).name == step[0].name
