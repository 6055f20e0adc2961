"""Tests for ``xlainspect.output.render``: SVGs that are valid XML, hold every top-level kernel, and say what they cut."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import InputError
from xlainspect.output.render import NO_TIME_COLOUR, RenderOptions, _heat, kernel_graph, render_svg

REPO = Path(__file__).resolve().parents[1]
DUMPS = sorted((REPO / "dumps" / "cpu").glob("*/*/after_optimizations.txt"))
SVG = "{http://www.w3.org/2000/svg}"


def node_titles(svg: str) -> set[str]:
    """Names of the drawn nodes: graphviz writes each node as <g class="node"><title>name</title>...</g>."""
    root = ET.fromstring(svg)  # raises on invalid XML
    return {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"}


def svg_text(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


def module_of(program: str, framework: str):
    return read_hlo(REPO / "dumps" / "cpu" / program / framework / "after_optimizations.txt")[0]


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: f"{p.parts[-3]}-{p.parts[-2]}")
def test_svg_is_valid_xml_and_holds_every_top_level_kernel(path):
    module = read_hlo(path)[0]
    svg, rendering = render_svg(module)
    titles = node_titles(svg)
    top_level = {k.name for k in census(module).kernels if k.computation == module.entry.name}
    assert top_level and top_level <= titles, sorted(top_level - titles)
    assert set(rendering.nodes) <= titles
    assert rendering.total_nodes == len(rendering.nodes)  # reference dumps are small: nothing cut


def test_svg_is_self_contained():
    svg, _ = render_svg(module_of("dpsgd_mnist", "tf"))
    for banned in ("<script", "<image", "href=", "@import", "url("):
        assert banned not in svg, banned


def test_fusions_are_clusters_of_their_fused_ops_when_small():
    module = module_of("linear_grad", "jax")
    svg, _ = render_svg(module)
    titles = node_titles(svg)
    fusion = next(i for i in module.entry.instructions if i.opcode == "fusion")
    body = module.computation(fusion.called_computations[0].name)
    assert {f"{fusion.name}/{i.name}" for i in body.instructions if i.opcode != "parameter"} <= titles
    root = ET.fromstring(svg)
    clusters = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
    assert f"cluster_{fusion.name}" in clusters


def test_plumbing_is_not_drawn_but_edges_pass_through_it():
    module = module_of("dpsgd_ffnn", "jax")
    rendering = kernel_graph(module)
    drawn = set(rendering.nodes)
    assert not any(module.entry.by_name[n].opcode in ("get-tuple-element", "bitcast") for n in drawn)
    assert "not drawn (edges pass through them)" in rendering.left_out[0]
    # Every drawn fusion fed by something other than constants gets an incoming edge, even through a bitcast.
    targets = {line.split(" -> ")[1].split(" [")[0].strip('"') for line in rendering.dot.splitlines()
               if " -> " in line and "legend/" not in line and "/" not in line.split(" -> ")[0]}
    for name in drawn:
        instruction = module.entry.by_name[name]
        fed = [o for o in instruction.operands if module.entry.by_name[o].opcode != "constant"]
        if instruction.opcode == "fusion" and fed:
            assert name in targets, name


def test_big_graphs_are_cut_to_the_neighbourhood_of_the_costliest_kernel_and_say_so():
    module = module_of("dpsgd_mnist", "jax")
    svg, rendering = render_svg(module, RenderOptions(max_nodes=12))
    assert len(rendering.nodes) == 12 < rendering.total_nodes
    assert any("cut to 12 of" in note and "the costliest kernel" in note for note in rendering.left_out)
    assert any("fusions collapsed" in note for note in rendering.left_out)
    assert "Not shown: cut to 12 of" in svg_text(svg)
    assert set(rendering.nodes) <= node_titles(svg)


def test_around_and_radius():
    module = module_of("dpsgd_mnist", "jax")
    centre = next(i.name for i in module.entry.instructions if i.opcode == "convolution")
    alone = kernel_graph(module, RenderOptions(around=centre, radius=0))
    assert alone.nodes == (centre,)
    near = kernel_graph(module, RenderOptions(around=centre, radius=1))
    operands = set(module.entry.by_name[centre].operands)
    assert centre in near.nodes and len(near.nodes) > 1
    assert operands & set(near.nodes) or any(module.entry.by_name[o].opcode == "bitcast" for o in operands)
    farther = kernel_graph(module, RenderOptions(around=centre, radius=2))
    assert set(near.nodes) < set(farther.nodes)


def test_one_fusion_drawn_op_by_op():
    module = module_of("dpsgd_ffnn", "tf")
    fusion = max((i for i in module.entry.instructions if i.opcode == "fusion"),
                 key=lambda i: len(module.computation(i.called_computations[0].name).instructions))
    body = module.computation(fusion.called_computations[0].name)
    rendering = kernel_graph(module, RenderOptions(fusion=fusion.name))
    assert rendering.computation == body.name
    assert set(rendering.nodes) == {i.name for i in body.instructions if i.opcode != "constant" or i.is_root}


def test_colour_by_time():
    module = module_of("linear_grad", "jax")
    kernels = [k.name for k in census(module).kernels]
    times = {kernels[0]: 90.0, kernels[1]: 10.0}
    dot = kernel_graph(module, RenderOptions(color="time", kernel_times=times)).dot
    lines = {line.split(" [")[0].strip().strip('"'): line for line in dot.splitlines() if " [label=" in line}
    assert _heat(0.9) in lines[kernels[0]] and "90.0 us, 90% of kernel time" in lines[kernels[0]]
    assert _heat(0.1) in lines[kernels[1]]
    untimed = [k for k in kernels[2:] if k in lines]
    assert all(NO_TIME_COLOUR in lines[k] for k in untimed)
    assert _heat(0.9) != _heat(0.1)


@pytest.mark.parametrize("options, message", [
    (RenderOptions(computation="nope"), "--computation nope: no such computation"),
    (RenderOptions(fusion="nope"), "--fusion nope: no fusion instruction"),
    (RenderOptions(around="nope"), "--around nope: no instruction"),
    (RenderOptions(color="time"), "--color time needs per-kernel times"),
    (RenderOptions(max_nodes=0), "--max-nodes must be at least 1"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(InputError, match=message):
        kernel_graph(module_of("matvec", "jax"), options)


def test_render_cli_writes_the_svg_and_checks_the_timing_file(tmp_path, capsys):
    out = tmp_path / "g.svg"
    assert main(["render", str(REPO / "dumps/cpu/linear_grad/tf"), "-o", str(out)]) == 0
    assert node_titles(out.read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # written atomically, yet readable as open() would make it
    assert f"wrote {out}" in capsys.readouterr().out
    timing = tmp_path / "time.json"
    timing.write_text(json.dumps({"frameworks": {"jax": {"module": "jit_other", "kernels": []}}}))
    assert main(["render", str(REPO / "dumps/cpu/linear_grad/tf"), "--timing", str(timing), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no framework there ran module" in err and "jax: jit_other" in err


LOOP_OVER_A_TUPLE_ELEMENT = """\
    c {
      p = f32[4] parameter(0)
      ROOT t = pred[] constant(true)
    }
    b {
      ROOT p = f32[4] parameter(0)
    }
    ENTRY e {
      x = f32[4] parameter(0)
      y = f32[4] negate(x)
      t = (f32[4], f32[4]) tuple(x, y)
      g = f32[4] get-tuple-element(t), index=INDEX
      ROOT w = f32[4] while(g), condition=c, body=b, backend_config=CONFIG
    }
    """


@pytest.mark.parametrize("index, config, producers, label", [
    ("1", '{"known_trip_count":{"n":"7"}}', {"y"}, "while x7: condition=c, body=b"),
    ("x", '{"known_trip_count":5}', {"x", "y"}, "while: condition=c, body=b"),
    ("-1", '{"known_trip_count":{"n":"x"}}', {"x", "y"}, "while: condition=c, body=b"),
])
def test_tuple_indices_and_trip_counts_that_are_not_numbers_are_drawn_as_unknown(index, config, producers, label):
    # The parser keeps attribute values as text: an index the drawing cannot use routes the edge from every element
    # of the tuple, and a trip count it cannot read is left off the label, as the census leaves it uncounted.
    text = textwrap.dedent(LOOP_OVER_A_TUPLE_ELEMENT).replace("INDEX", index).replace("CONFIG", config)
    dot = kernel_graph(parse_hlo(text)).dot
    assert {line.split(" -> ")[0].strip().strip('"') for line in dot.splitlines() if ' -> "w"' in line} == producers
    assert label in dot


def test_a_fusion_that_calls_nothing_is_a_one_line_error():
    # The parser rejects a fusion without calls=; a module built in code can still hold one.
    module = parse_hlo(textwrap.dedent("""\
        f {
          ROOT p = f32[4] parameter(0)
        }
        ENTRY e {
          x = f32[4] parameter(0)
          ROOT fusion = f32[4] fusion(x), kind=kLoop, calls=f
        }
        """))
    entry = module.entry
    fusion = dataclasses.replace(entry.root, attributes={"kind": "kLoop"})
    entry = dataclasses.replace(entry, instructions=(entry.by_name["x"], fusion))
    module = dataclasses.replace(module, computations=(module.computation("f"), entry))
    with pytest.raises(InputError, match=r"^--fusion fusion: the fusion names no fused computation \(no calls=\), so "
                                         r"there are no fused ops to draw$"):
        kernel_graph(module, RenderOptions(fusion="fusion"))
    assert '"fusion" [label="fusion\\nkLoop, 0 ops' in kernel_graph(module).dot
