"""Tests for ``xlainspect.output.render``: SVGs that are valid XML, hold every top-level kernel, and say what they cut."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.measure.records import KernelTime, TimingRecord, TimingSummary
from xlainspect.output.render import NO_TIME_COLOUR, RenderOptions, _heat, dot_to_svg, kernel_graph, render_svg

REPO = Path(__file__).resolve().parents[1]
DUMPS = sorted((REPO / "dumps" / "cpu").glob("*/*/after_optimizations.txt"))
SVG = "{http://www.w3.org/2000/svg}"


def node_titles(svg: str) -> set[str]:
    """Names of the drawn nodes: graphviz writes each node as <g class="node"><title>name</title>...</g>."""
    root = ET.fromstring(svg)  # raises on invalid XML
    return {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"}


def svg_text(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


def svg_edges(svg: str) -> set[tuple[str, str]]:
    """(tail, head) of the drawn edges: graphviz titles each <g class="edge"> ``tail->head`` (names hold no '>')."""
    root = ET.fromstring(svg)
    return {tuple(g.find(f"{SVG}title").text.split("->", 1)) for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}


def svg_nodes(svg: str) -> dict[str, tuple[str, list[str]]]:
    """Each drawn node's fill colour (of its outline shape) and the lines of its label, by name."""
    nodes = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") == "node":
            fill = next(child.get("fill") for child in g if child.tag != f"{SVG}title" and child.get("fill"))
            nodes[g.find(f"{SVG}title").text] = (fill, [t.text or "" for t in g.iter(f"{SVG}text")])
    return nodes


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
    module = module_of("dpsgd_mnist", "jax")
    entry = module.entry
    svg, rendering = render_svg(module)
    drawn = set(rendering.nodes)
    assert not any(entry.by_name[n].opcode in ("get-tuple-element", "bitcast") for n in drawn)
    assert "not drawn (edges pass through them)" in rendering.left_out[0]
    edges = svg_edges(svg)
    # Every drawn kernel fed by something other than constants gets an incoming edge.
    fed = [n for n in drawn if entry.by_name[n].opcode != "parameter"
           and any(entry.by_name[o].opcode != "constant" for o in entry.by_name[n].operands)]
    assert sorted(set(fed) - {head for _, head in edges}) == []
    # A kernel that reads a bitcast of a drawn node gets its edge from that node, through the bitcast.
    through_bitcasts = {(entry.by_name[o].operands[0], n) for n in drawn for o in entry.by_name[n].operands
                        if entry.by_name[o].opcode == "bitcast" and entry.by_name[o].operands[0] in drawn}
    assert len(through_bitcasts) >= 3  # the module has the case the test is about
    assert sorted(through_bitcasts - edges) == []


def test_big_graphs_are_cut_to_the_neighbourhood_of_the_costliest_kernel_and_say_so():
    module = module_of("dpsgd_mnist", "jax")
    svg, rendering = render_svg(module, RenderOptions(max_nodes=12))
    assert len(rendering.nodes) == 12 < rendering.total_nodes
    assert any("cut to 12 of" in note and "the costliest kernel" in note for note in rendering.left_out)
    assert any("fusions collapsed" in note for note in rendering.left_out)
    assert "Not shown: cut to 12 of" in svg_text(svg)
    assert set(rendering.nodes) <= node_titles(svg)


def test_around_and_radius_keep_exactly_the_nodes_within_that_many_hops_in_the_whole_drawing():
    module = module_of("dpsgd_mnist", "jax")
    centre = next(i.name for i in module.entry.instructions if i.opcode == "convolution")
    whole_svg, whole = render_svg(module, RenderOptions(expand_fusions_up_to=0))
    assert len(whole.nodes) == whole.total_nodes  # nothing cut: its edges are the whole graph's
    neighbours: dict[str, set[str]] = {}
    for tail, head in svg_edges(whole_svg):
        neighbours.setdefault(tail, set()).add(head)
        neighbours.setdefault(head, set()).add(tail)
    within = {centre}
    for radius in range(4):
        cut = kernel_graph(module, RenderOptions(around=centre, radius=radius))
        assert set(cut.nodes) == within, radius
        assert f"within {radius} hops of {centre}" in cut.left_out[-1]
        within = within | {n for node in within for n in neighbours.get(node, ())}
    assert len(within) > 4  # the hops reach further each time: radius is not ignored


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
    nodes = svg_nodes(render_svg(module, RenderOptions(color="time", kernel_times=times))[0])
    # Shares 0.9 and 0.1 of the kernel time: the red channel full, green and blue 255 - sqrt(share) * 195.
    assert nodes[kernels[0]][0] == "#ff4646" and "90.0 us, 90% of kernel time" in nodes[kernels[0]][1]
    assert nodes[kernels[1]][0] == "#ffc1c1" and "10.0 us, 10% of kernel time" in nodes[kernels[1]][1]
    untimed = [k for k in kernels[2:] if k in nodes]
    assert untimed and all(nodes[k][0] == NO_TIME_COLOUR for k in untimed)
    assert nodes["legend/most time"][0] == "#ff3c3c" and nodes["legend/no time measured"][0] == NO_TIME_COLOUR


def test_the_heat_scale_runs_from_white_to_the_legends_red_and_is_redder_for_every_larger_share():
    assert (_heat(0.0), _heat(1.0)) == ("#ffffff", "#ff3c3c")  # the legend's "most time" is _heat(1.0)
    shares = [i / 40 for i in range(41)]
    colours = [_heat(share) for share in shares]
    assert all(c[1:3] == "ff" and c[3:5] == c[5:7] for c in colours)  # red fixed, green = blue: shades of red
    green = [int(c[3:5], 16) for c in colours]
    assert all(a > b for a, b in itertools.pairwise(green)), green  # strictly redder as the share grows
    assert (_heat(-0.5), _heat(1.5)) == (_heat(0.0), _heat(1.0))  # out-of-range shares are clamped


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


def timing_file(path: Path, module: str, kernels: dict[str, float]) -> Path:
    """A ``time --json`` file in which JAX ran ``module`` with these per-kernel µs per step."""
    summary = TimingSummary("0.10.2", 0.1, 1.0, 1.0, 1.0, 1.0, 1.0, 3, module,
                            tuple(KernelTime(name, 1, us, us / 1e3) for name, us in kernels.items()), "")
    path.write_text(json.dumps(TimingRecord("linear_grad", 5, {"jax": summary}).to_json()))
    return path


def test_render_cli_writes_the_svg_and_checks_the_timing_file(tmp_path, capsys):
    out = tmp_path / "g.svg"
    dump = REPO / "dumps/cpu/linear_grad/jax"
    assert main(["render", str(dump), "-o", str(out)]) == 0
    assert set(kernel_graph(module_of("linear_grad", "jax")).nodes) <= node_titles(out.read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # written atomically, yet readable as open() would make it
    assert capsys.readouterr().out == (f"wrote {out}: 8 of 8 nodes of main.1\n  not shown: 1 tuple, get-tuple-element, "
                                       "bitcast and constant instructions not drawn (edges pass through them)\n")
    timing = timing_file(tmp_path / "time.json", "jit_linear_grad", {"dot.2": 30.0, "broadcast_multiply_fusion": 10.0})
    assert main(["render", str(dump), "--timing", str(timing), "--color", "time", "-o", str(out)]) == 0
    nodes = svg_nodes(out.read_text())
    assert nodes["dot.2"][0] == _heat(0.75) and "30.0 us, 75% of kernel time" in nodes["dot.2"][1]
    other = timing_file(tmp_path / "other.json", "jit_other", {"dot.2": 30.0})
    assert main(["render", str(dump), "--timing", str(other), "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"xlainspect: {other}: no framework there ran module jit_linear_grad (it timed "
                                       "jax: jit_other); time the same program and batch size that the dump holds\n")


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
    svg, _ = render_svg(parse_hlo(text))
    assert {tail for tail, head in svg_edges(svg) if head == "w"} == producers
    assert label in svg_nodes(svg)["w"][1]


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
    assert svg_nodes(render_svg(module)[0])["fusion"][1][:2] == ["fusion", "kLoop, 0 ops"]


def test_labels_show_the_hlo_text_as_written_not_as_dot_escapes():
    # A custom-call target is free text: a backslash sequence such as \l (a DOT line break) or a quote is drawn as
    # the HLO text has it, on one line.
    module = parse_hlo(textwrap.dedent(r"""
        ENTRY e {
          x = f32[2] parameter(0)
          ROOT c = f32[2] custom-call(x), custom_call_target="a\lb \"q\" <i>x</i>"
        }
        """))
    assert svg_nodes(render_svg(module)[0])["c"][1] == ["c", r'a\lb \"q\" <i>x</i>', "f32[2]", "ROOT"]


def test_a_missing_dot_program_is_one_line_naming_the_package_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    with pytest.raises(FrameworkUnavailable) as caught:
        render_svg(module_of("matvec", "jax"))
    assert str(caught.value) == ("drawing needs graphviz's 'dot' program: sudo apt-get install graphviz "
                                 "(make install does it)")


def test_dot_rejecting_the_source_is_one_line_and_prints_nothing(capfd):
    with pytest.raises(InputError, match=r"^graphviz's dot failed: .*syntax error in line 1") as caught:
        dot_to_svg("digraph { a -> }")
    assert "\n" not in str(caught.value)
    assert capfd.readouterr() == ("", "")  # dot's complaint is in the error, not on the caller's stderr
