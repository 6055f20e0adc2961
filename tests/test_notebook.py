"""xlainspect.inspect, the notebook API: on a train step and a tf.function written here, against references the
test computes itself (JAX's own ``lower().compile()`` in this process, the arrays' own byte counts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import xlainspect
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.errors import InputError, RecordError, XlaInspectError
from xlainspect.hlo import parse_hlo
from xlainspect.runners.protocol import ArgumentBytes, InspectRequest, InspectResult, MemoryFigures, TimeResult


def QUIET(line: str) -> None:  # progress lines, unwanted in test output
    pass


# -- the programs: a 2-layer MLP train step with gradient accumulation over micro-batches (lax.scan) ---------------


def _jax_programs():
    import jax
    import jax.numpy as jnp

    def loss(params, batch, activation):
        def micro(total, xy):
            x, y = xy
            hidden = activation(x @ params["w1"] + params["b1"])
            return total + jnp.mean((hidden @ params["w2"] - y) ** 2), None

        total, _ = jax.lax.scan(micro, 0.0, batch)
        return total / batch[0].shape[0]

    def make_step(activation):
        def train_step(params, batch, lr):
            grads = jax.grad(loss)(params, batch, activation)
            return jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return train_step

    key = jax.random.PRNGKey(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    params = {"w1": jax.random.normal(k1, (32, 64)), "b1": jnp.zeros(64), "w2": jax.random.normal(k2, (64, 8))}
    batch = (jax.random.normal(k3, (4, 16, 32)), jax.random.normal(k4, (4, 16, 8)))
    return make_step, params, batch


@pytest.fixture(scope="module")
def jax_case():
    """The train step jitted with its parameters donated, its arguments, and JAX's own compile of it here."""
    import jax

    make_step, params, batch = _jax_programs()
    step = jax.jit(make_step(jax.numpy.tanh), donate_argnums=0)
    reference = step.lower(params, batch, 0.1).compile()
    return step, (params, batch, 0.1), reference


@pytest.fixture(scope="module")
def jax_inspection(jax_case):
    step, args, _ = jax_case
    return xlainspect.inspect(step, *args, progress=QUIET)


def _reference_census(compiled):
    return census(parse_hlo(compiled.as_text()))


@pytest.mark.slow
@pytest.mark.requires_jax
def test_child_compiles_what_jax_compiles_here(jax_inspection, jax_case):
    reference = _reference_census(jax_case[2])
    assert reference.kernel_count >= 5  # a real step: dots, fusions, a loop
    assert jax_inspection.module.name == parse_hlo(jax_case[2].as_text()).name == "jit_train_step"
    assert diff_census(reference, jax_inspection.census).same_structure
    assert "while" in {i.opcode for i in jax_inspection.module.instructions()}  # the scan survived as a loop
    assert jax_inspection.compiled_by.startswith("JAX's front end (jax ")
    assert "child process" in jax_inspection.notes[0] and not jax_inspection.in_process


@pytest.mark.slow
@pytest.mark.requires_jax
def test_memory_figures_are_jax_memory_analysis(jax_inspection, jax_case):
    stats = jax_case[2].memory_analysis()
    assert jax_inspection.memory == MemoryFigures(None, stats.argument_size_in_bytes, stats.output_size_in_bytes,
                                                  stats.alias_size_in_bytes, stats.temp_size_in_bytes,
                                                  stats.generated_code_size_in_bytes)
    params = _jax_programs()[1]
    assert jax_inspection.memory.alias == sum(p.nbytes for p in params.values())  # the donated parameters


class _Page(HTMLParser):
    """Table cells' text, the tags seen, and the text of every SVG ``<title>`` (graphviz names nodes there)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.tags: list[str] = []
        self.svg_titles: set[str] = set()
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in.append(tag)
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "td":
            self.cells[-1] += data
        if self._in and self._in[-1] == "title" and "svg" in self._in:
            self.svg_titles.add(data.strip())


def parse_page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.mark.slow
@pytest.mark.requires_jax
def test_notebook_cell_shows_every_kernel_memory_and_the_graph(jax_inspection, jax_case):
    # What Jupyter does with the result of a cell, without IPython: call _repr_html_ and read the HTML.
    page = parse_page(jax_inspection._repr_html_())
    names = {kernel.name for kernel in _reference_census(jax_case[2]).kernels}
    assert names <= set(page.cells)
    assert f"{jax_case[2].memory_analysis().temp_size_in_bytes:,}" in page.cells
    assert "svg" in page.tags and "table" in page.tags and "script" not in page.tags
    entry_kernels = {k.name for k in jax_inspection.census.kernels if k.computation == jax_inspection.module.entry.name}
    assert entry_kernels and entry_kernels <= page.svg_titles  # the graph draws the entry's kernels


@pytest.mark.slow
@pytest.mark.requires_jax
def test_render_is_the_kernel_graph(jax_inspection):
    svg = jax_inspection.render()
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
    assert "<svg" in svg and jax_inspection.census.kernels[0].name in svg


@pytest.mark.slow
@pytest.mark.requires_jax
def test_without_graphviz_the_cell_still_shows_the_census(jax_inspection, monkeypatch):
    import xlainspect.inspection

    def no_graphviz(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'graphviz'")

    monkeypatch.setattr(xlainspect.inspection, "render_svg", no_graphviz)
    with pytest.raises(xlainspect.FrameworkUnavailable, match=r"^xlainspect\.inspect: drawing the kernel graph "
                                                              r"needs graphviz's Python package: pip install graphviz"):
        jax_inspection.render()
    page = parse_page(jax_inspection._repr_html_())
    assert "svg" not in page.tags
    assert {k.name for k in jax_inspection.census.kernels} <= set(page.cells)
    assert "no kernel graph: xlainspect.inspect: drawing the kernel graph needs" in jax_inspection._repr_html_()


@pytest.fixture(scope="module")
def jax_variants():
    """The same step written again (another Python function: the same math), and one with another activation."""
    import jax

    make_step, params, batch = _jax_programs()
    same = xlainspect.inspect(make_step(jax.numpy.tanh), params, batch, 0.1, progress=QUIET)
    other = xlainspect.inspect(make_step(jax.nn.relu), params, batch, 0.1, progress=QUIET)
    return same, other


@pytest.mark.slow
@pytest.mark.requires_jax
def test_diff_of_the_same_math_finds_no_difference(jax_inspection, jax_variants):
    diff = jax_inspection.diff(jax_variants[0])
    assert diff.same_math
    assert diff.verdict.startswith("same kernels:")


@pytest.mark.slow
@pytest.mark.requires_jax
def test_diff_of_other_math_reports_the_difference(jax_inspection, jax_variants):
    diff = jax_inspection.diff(jax_variants[1])
    assert not diff.same_math
    assert "only in" in diff.verdict
    page = parse_page(diff._repr_html_())
    assert "pre" in page.tags
    assert diff.verdict.split(":")[0] in diff._repr_html_()


def test_diff_of_something_else_is_one_line():
    fake = xlainspect.Inspection("f", "jax", "jax 0", "jaxlib 0", "cpu", "", None, census(parse_hlo(
        "HloModule m\nENTRY e { ROOT p = f32[2] parameter(0) }")), MemoryFigures(None, 8, 8, 0, 0), 0.0, False)
    with pytest.raises(InputError, match=r"^Inspection\.diff: the argument is a str, not an Inspection; pass what "
                                         r"xlainspect\.inspect returned for the other function$"):
        fake.diff("jit_f.txt")


@pytest.mark.slow
@pytest.mark.requires_jax
def test_time_gives_positive_step_times_and_kernel_times(jax_inspection):
    timing = jax_inspection.time(repeats=5, profile_runs=3, progress=QUIET)
    assert len(timing.runs_ms) == 5 and min(timing.runs_ms) > 0
    assert timing.spread is not None and timing.spread.low <= timing.median_ms <= timing.spread.high
    names = {kernel.name for kernel in jax_inspection.census.kernels}
    assert timing.kernels and {k.hlo_op for k in timing.kernels} <= names
    assert all(k.total_us > 0 for k in timing.kernels)
    assert "donated" in timing.note  # the step donates its parameters: each run got fresh copies
    cell = timing._repr_html_()
    assert f"train_step: {timing.median_ms:.3f} ± {timing.spread.half_iqr:.3f} ms per step (median of 5 runs)" in cell
    costliest = max(timing.kernels, key=lambda k: k.total_us)
    assert costliest.hlo_op in cell and "<pre>" in cell


@pytest.mark.requires_jax
def test_in_process_compile_is_jax_compile(jax_case):
    step, args, reference = jax_case
    here = xlainspect.inspect(step, *args, in_process=True, progress=QUIET)
    assert here.in_process and "in this process" in here.notes[0]
    assert diff_census(_reference_census(reference), here.census).same_structure
    assert here.memory.temp == reference.memory_analysis().temp_size_in_bytes
    assert here.time(repeats=2, profile_runs=0).median_ms > 0


@pytest.mark.slow
@pytest.mark.requires_jax
def test_child_says_so_on_stderr(capsys):
    import jax.numpy as jnp

    def double(x):
        return x * 2

    result = xlainspect.inspect(double, jnp.ones(4))
    err = capsys.readouterr().err
    assert "xlainspect: compiling double in a child process with JAX's XLA" in err
    assert result.census.kernel_count == 1


@pytest.mark.slow
@pytest.mark.requires_jax
def test_shapes_only_compile_but_do_not_time():
    import jax
    import jax.numpy as jnp

    def layer(w, x):
        return jnp.tanh(x @ w)

    w, x = jax.ShapeDtypeStruct((32, 32), jnp.float32), jax.ShapeDtypeStruct((8, 32), jnp.float32)
    result = xlainspect.inspect(layer, w, x, progress=QUIET)
    assert result.memory.argument == (32 * 32 + 8 * 32) * 4
    assert any("shapes only" in note for note in result.notes)
    with pytest.raises(InputError, match=r"^xlainspect\.inspect: layer cannot be timed: shapes only "):
        result.time(repeats=2)


# What the lowering must get right for the child to run the module: static arguments (positional and by name) and an
# unused argument are not parameters, keyword arguments are, and under x64 a Python float is a float64. Run in a
# fresh interpreter, as a notebook with x64 on would, so the switch cannot leak into other tests.
_DESIGN_SCRIPT = """
import functools, json, sys
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import xlainspect

@functools.partial(jax.jit, static_argnums=2, static_argnames="activation", donate_argnums=0)
def step(params, x, layers, unused, *, scale, activation="tanh"):
    for _ in range(layers):
        x = getattr(jnp, activation)(x @ params["w"] + params["b"]) * scale
    return {"w": params["w"] * 0.5, "b": params["b"]}, x.sum()

args = ({"w": jnp.ones((16, 16)), "b": jnp.zeros(16)}, jnp.ones((4, 16)), 3, jnp.ones(5))
kwargs = {"scale": 0.5, "activation": "sin"}
result = xlainspect.inspect(step, *args, progress=lambda line: None, **kwargs)
stats = step.lower(*args, **kwargs).compile().memory_analysis()
timing = result.time(repeats=3, profile_runs=0, progress=lambda line: None)
print(json.dumps({"module": result.module.name, "f64": "f64[16,16]" in result.module_text,
                  "parameters": len(result.module.entry.parameters),
                  "memory": [result.memory.argument, result.memory.alias, result.memory.temp],
                  "reference": [stats.argument_size_in_bytes, stats.alias_size_in_bytes, stats.temp_size_in_bytes],
                  "runs": list(timing.runs_ms), "sines": sum(k.fused_op_counts["sine"] for k in result.census.kernels)}))
"""


@pytest.mark.slow
@pytest.mark.requires_jax
def test_static_keyword_unused_and_x64_arguments(tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(_DESIGN_SCRIPT)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "JAX_PLATFORMS": "cpu",
                              "PYTHONPATH": str(Path(xlainspect.__file__).parents[1])})
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["module"] == "jit_step" and seen["f64"]
    assert seen["parameters"] == 4  # w, b, x and the scale keyword; not the static layers/activation, not unused
    assert seen["memory"] == seen["reference"] and seen["memory"][1] == (16 * 16 + 16) * 8  # donated, float64
    assert len(seen["runs"]) == 3 and min(seen["runs"]) > 0
    assert seen["sines"] == 3  # activation="sin" reached the module, three layers deep


@pytest.mark.slow
@pytest.mark.requires_jax
def test_child_refuses_a_module_lowered_for_another_platform(jax_inspection):
    # A notebook on a GPU lowers for the GPU; a child that sees only the CPU must say so, not compile it for the CPU.
    import dataclasses

    from xlainspect.inspection import _compile_in_child

    assert jax_inspection._lowering.platform == "cpu"
    on_gpu = dataclasses.replace(jax_inspection._lowering, platform="gpu")
    with pytest.raises(xlainspect.CaptureError) as caught:
        _compile_in_child(on_gpu, QUIET)
    assert str(caught.value) == ("xlainspect.inspect: jax: the function was lowered for gpu, but JAX in the child "
                                 "process sees only cpu; run it with in_process=True, or make the gpu visible to child "
                                 "processes")


# -- bad input: one clear line, before any child starts ---------------------------------------------------------


def test_not_a_function_is_one_line():
    with pytest.raises(XlaInspectError) as caught:
        xlainspect.inspect("train.py", 1.0)
    assert str(caught.value) == ("xlainspect.inspect: the first argument is not a function but str 'train.py'; pass "
                                 "a JAX function (jitted or not) or a tf.function, then its arguments")


@pytest.mark.requires_jax
def test_function_that_fails_to_trace_is_one_line():
    import jax.numpy as jnp

    def broken(x):
        return x.no_such_method()

    with pytest.raises(InputError) as caught:
        xlainspect.inspect(broken, jnp.ones(3), progress=QUIET)
    message = str(caught.value)
    assert message.startswith("xlainspect.inspect: broken does not trace with these arguments: AttributeError: ")
    assert "no_such_method" in message and "\n" not in message


@pytest.mark.requires_jax
def test_arguments_that_do_not_match_are_one_line():
    import jax.numpy as jnp

    def matmul(a, b):
        return a @ b

    with pytest.raises(InputError) as caught:
        xlainspect.inspect(matmul, jnp.ones((2, 3)), jnp.ones((4, 5)), progress=QUIET)
    message = str(caught.value)
    assert message.startswith("xlainspect.inspect: matmul does not trace with these arguments: TypeError: ")
    assert "\n" not in message
    with pytest.raises(InputError, match=r"missing 1 required positional argument: 'b'"):
        xlainspect.inspect(matmul, jnp.ones((2, 3)), progress=QUIET)


# -- a tf.function: TF's front end, JAX's XLA ----------------------------------------------------------------------


def _tf_step():
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def tf_train_step(w1, w2, x, y):
        with tf.GradientTape() as tape:
            tape.watch([w1, w2])
            loss = tf.reduce_mean(tf.square(tf.tanh(x @ w1) @ w2 - y))
        g1, g2 = tape.gradient(loss, [w1, w2])
        return w1 - 0.1 * g1, w2 - 0.1 * g2

    rng = np.random.default_rng(0)
    args = [rng.standard_normal(shape).astype(np.float32) for shape in ((32, 64), (64, 8), (16, 32), (16, 8))]
    return tf_train_step, args


@pytest.fixture(scope="module")
def tf_case():
    step, args = _tf_step()
    return step, args, xlainspect.inspect(step, *args, progress=QUIET)


@pytest.mark.slow
@pytest.mark.requires_tf
@pytest.mark.requires_jax
def test_tf_function_is_tf_front_end_and_jax_xla(tf_case):
    step, args, result = tf_case
    assert result.front_end == "tf" and result.compiled_by.startswith("TF's front end (tensorflow ")
    assert "JAX's XLA (jaxlib " in result.compiled_by
    assert {"dot", "fusion"} & {k.opcode for k in result.census.kernels}
    outputs = step(*args)
    assert result.memory.argument == sum(a.nbytes for a in args)  # the arrays' own sizes, not XLA's word
    # The result is a tuple: XLA counts its index table too, one 8-byte pointer per element.
    assert result.memory.output == sum(o.numpy().nbytes for o in outputs) + 8 * len(outputs)
    page = parse_page(result._repr_html_())
    assert {k.name for k in result.census.kernels} <= set(page.cells) and "svg" in page.tags


@pytest.mark.slow
@pytest.mark.requires_tf
@pytest.mark.requires_jax
def test_tf_function_times_and_diffs(tf_case):
    step, args, result = tf_case
    timing = result.time(repeats=5, profile_runs=2, progress=QUIET)
    assert len(timing.runs_ms) == 5 and min(timing.runs_ms) > 0 and timing.kernels
    import tensorflow as tf

    shapes = xlainspect.inspect(step, *[tf.TensorSpec(a.shape, tf.float32) for a in args], progress=QUIET)
    assert result.diff(shapes).same_structure  # the same module from shapes alone


@pytest.mark.requires_tf
def test_tf_function_with_wrong_arguments_is_one_line():
    step, args = _tf_step()
    with pytest.raises(InputError) as caught:
        xlainspect.inspect(step, args[0], progress=QUIET)
    message = str(caught.value)
    assert message.startswith("xlainspect.inspect: tf_train_step does not trace with these arguments: TypeError: ")
    assert "\n" not in message


# -- the records that cross the process boundary, and the import ------------------------------------------------


def test_inspect_records_round_trip():
    request = InspectRequest("step", "jax", "/tmp/m.mlir", "stablehlo", "/tmp/a.npz",
                             (ArgumentBytes("a0", "bfloat16", (2, 3)),), 5, 1, 2, "gpu")
    assert InspectRequest.from_json(json.loads(json.dumps(request.to_json())), "child") == request
    timing = TimeResult("jaxlib 0.12", 0.5, (0.001, 0.002), "m", "HloModule m", {"dot.1": (3.0, 4.0)}, 2,
                        kernel_runs={"dot.1": (0, 1)})
    result = InspectResult("jaxlib 0.12", "cpu", 0.5, "HloModule m", MemoryFigures(None, 1, 2, 3, 4), timing)
    assert InspectResult.from_json(json.loads(json.dumps(result.to_json())), "child") == result
    with pytest.raises(RecordError, match="'module_format' is 'onnx', expected one of stablehlo, hlo_proto"):
        InspectRequest.from_json({**request.to_json(), "module_format": "onnx"}, "child")
    with pytest.raises(RecordError, match="'figures' is missing"):
        InspectResult.from_json({k: v for k, v in result.to_json().items() if k != "figures"}, "child")


def test_inspect_loads_no_framework_until_called():
    code = ("import sys, json, xlainspect; xlainspect.inspect; xlainspect.Inspection; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    assert "xlainspect.inspection" in loaded
    assert sorted(name for name in loaded if name.split(".")[0] in ("jax", "jaxlib", "tensorflow")) == []


# -- in a real browser: the cell's SVG lays out --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.requires_jax
@pytest.mark.requires_chromium
def test_notebook_cell_in_headless_chromium(jax_inspection, tmp_path):
    from test_report import chromium, console_messages

    # The cell has no script of its own; this copy adds one that measures the laid-out SVG and its table.
    measure = ("<script>const svg = document.querySelector('.xlainspect svg').getBoundingClientRect();"
               "const rows = document.querySelectorAll('.xlainspect tbody tr').length;"
               "document.body.dataset.measured = JSON.stringify([svg.width, svg.height, rows]);</script>")
    page = tmp_path / "cell.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>"
                    f"{jax_inspection._repr_html_()}{measure}</body></html>", encoding="utf-8")
    loaded = chromium("--dump-dom", page.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-500:]
    assert console_messages(loaded.stderr) == []
    dom = parse_page(loaded.stdout)
    entry_kernels = {k.name for k in jax_inspection.census.kernels if k.computation == jax_inspection.module.entry.name}
    assert entry_kernels <= dom.svg_titles
    measured = loaded.stdout.split('data-measured="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    width, height, rows = json.loads(measured)
    assert width > 100 and height > 100  # drawn at a visible size, not collapsed
    assert rows >= jax_inspection.census.kernel_count  # every kernel's row (and the memory and facts rows)
