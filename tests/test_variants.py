"""The seed's ablation builds (``xlainspect.programs.variants``): each computes the same step, and each is built as it says.

Turning ``vmap``/``vectorized_map`` or ``jit``/XLA off must change how the step runs, never what it computes, or the
ablation's timings would compare different math.
"""

from __future__ import annotations

import numpy as np
import pytest

from xlainspect import parse_hlo
from xlainspect.programs import ABLATION, Variant, get_program

BATCH = 3


def relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-300))


def test_labels_and_slugs_name_each_build_as_the_seed_did():
    assert [v.slug for v in ABLATION] == ["full", "novec", "nocompile", "novec-nocompile"]
    assert Variant(vectorize=False).label("jax") == "jit, no vmap"
    assert Variant(compiled=False).label("tf") == "no XLA, vectorized_map"
    assert len(set(ABLATION)) == 4


def test_only_programs_with_per_example_gradients_can_drop_vectorization():
    assert get_program("dpsgd_mnist").has_per_example_gradients
    assert not get_program("sgd_mnist").has_per_example_gradients
    with pytest.raises(ValueError, match="no per-example gradients"):
        get_program("sgd_ffnn").jax_function(Variant(vectorize=False))


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_tf
@pytest.mark.parametrize("name", ["dpsgd_ffnn", "dpsgd_mnist", "dpsgd_logreg", "dpsgd_cifar10", "dpsgd_embedding",
                                  "dpsgd_lstm"])
@pytest.mark.parametrize("variant", ABLATION, ids=lambda v: v.slug)
def test_every_build_computes_the_reference_step(name, variant):
    program = get_program(name)
    inputs = program.inputs(batch_size=BATCH)
    expected = program.reference(inputs)
    for framework, function in (("jax", program.jax_function(variant)), ("tf", program.tf_function(variant))):
        outputs = function(*inputs.values())
        for output_name, actual, reference in zip(program.output_names, outputs, expected):
            error = relative_error(actual, reference)
            assert error < 1e-4, f"{name} {variant.label(framework)}: {output_name} off by {error:.2e}"


@pytest.mark.requires_jax
def test_uncompiled_jax_build_runs_op_by_op():
    function = get_program("sgd_ffnn").jax_function(Variant(compiled=False))
    assert not hasattr(function, "lower")  # nothing to lower: no jax.jit around it


@pytest.mark.requires_jax
def test_the_unvectorized_loop_unrolls_one_gradient_per_example():
    # vmap keeps one batched gradient whatever the batch; the loop traces one gradient computation per example.
    program = get_program("dpsgd_ffnn")

    def dots(variant: Variant, batch: int) -> int:
        lowered = program.jax_function(variant).lower(*program.inputs(batch_size=batch).values())
        module = parse_hlo(lowered.as_text(dialect="hlo"))
        return sum(1 for i in module.instructions() if i.opcode == "dot")

    looped = Variant(vectorize=False)
    assert dots(Variant(), 2) == dots(Variant(), 4)
    assert dots(looped, 4) > dots(looped, 2) > 0
