"""Tests for ``xlainspect.output.render``: SVGs that are valid XML, hold every top-level kernel, and say what they cut."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import FrameworkUnavailable, InputError
from xlainspect.measure.records import KernelTime, TimingRecord, TimingSummary
from xlainspect.output.layout import LAYOUT_BUDGET, layout_cost
from xlainspect.output.render import (
    NO_TIME_COLOUR,
    DotTimeout,
    RenderOptions,
    _edges,
    _heat,
    dot_to_svg,
    kernel_graph,
    render_svg,
)

REPO = Path(__file__).resolve().parents[1]
DUMPS = sorted((REPO / "dumps" / "cpu").glob("*/*/after_optimizations.txt"))
SVG = "{http://www.w3.org/2000/svg}"
SHAPES = {f"{SVG}polygon", f"{SVG}ellipse", f"{SVG}path"}
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"


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
            # The shape sits inside the <a> that carries the node's tooltip.
            fill = next(child.get("fill") for child in g.iter() if child.tag in SHAPES and child.get("fill"))
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
    assert set(rendering.nodes) <= titles
    if rendering.total_nodes == len(rendering.nodes):
        assert top_level and top_level <= titles, sorted(top_level - titles)
    else:
        # Too big to lay out quickly (JAX's and TF's CIFAR10 DP-SGD step, PyTorch/XLA's MNIST and CIFAR10 steps):
        # cut, the picture says so, and what it draws is the module's (the costliest kernel's neighbourhood, kernels
        # among them). The small ones never are (the test above fails for a cut that drops a top-level kernel).
        assert path.parts[-3] in ("dpsgd_cifar10", "sgd_cifar10", "dpsgd_mnist"), "a small module was cut"
        assert any(note.startswith("cut to ") for note in rendering.left_out)
        assert "cut to " in svg and top_level & titles


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


# -- drawing within dot's budget ------------------------------------------------------------------------------------


def tooltips(svg: str) -> dict[str, str]:
    """Each drawn node's tooltip, by name: graphviz wraps the node's shapes in <a xlink:title="tooltip">."""
    found = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") == "node":
            link = next(g.iter(f"{SVG}a"), None)
            found[g.find(f"{SVG}title").text] = link.get(XLINK_TITLE) if link is not None else None
    return found


def drawn_as_stated(svg: str, rendering) -> None:
    """The SVG draws exactly the nodes the rendering claims, each fusion as one node unless listed as a cluster,
    and edge shapes as labels only when it says so."""
    root = ET.fromstring(svg)
    kernels = {t for t in node_titles(svg) if not t.startswith("legend/")}
    members = {t for t in kernels if "/" in t}
    assert kernels - members == set(rendering.nodes)
    assert {t.split("/", 1)[0] for t in members} == set(rendering.clusters)
    clusters = {g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
    assert clusters == {f"cluster_{name}" for name in rendering.clusters} | {"cluster_legend"}
    labelled = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge" and g.find(f".//{SVG}text") is not None]
    assert bool(labelled) == rendering.edge_labels


def stated_cut(rendering) -> tuple[int, int, int, str]:
    """(kept, total, hops, centre) from the caption's "cut to N of M nodes ...: within K hops of C" note."""
    note = next(n for n in rendering.left_out if n.startswith("cut to "))
    found = re.match(r"cut to (\d+) of (\d+) nodes.*?: within (\d+) hops of ([\w.\-]+)", note)
    return int(found[1]), int(found[2]), int(found[3]), found[4]


def within_hops(module, centre: str, hops: int) -> set[str]:
    entry = module.entry
    drawn = {i.name for i in entry.instructions if i.opcode not in ("tuple", "get-tuple-element", "bitcast",
                                                                     "constant") or i.is_root}
    neighbours: dict[str, set[str]] = {}
    for tail, head, _ in _edges(entry, drawn):
        neighbours.setdefault(tail, set()).add(head)
        neighbours.setdefault(head, set()).add(tail)
    reached = {centre}
    for _ in range(hops):
        reached |= {n for node in reached for n in neighbours.get(node, ())}
    return reached


@pytest.mark.slow
@pytest.mark.requires_jax
def test_a_240_node_training_step_is_drawn_within_the_budget_as_its_caption_says(transformer_step_3_layers,
                                                                                 monkeypatch):
    from xlainspect.output import render

    monkeypatch.setattr(render, "_PROGRESS_EVERY_S", 0.05)  # dot takes about a second: progress, so the
    module = read_hlo(transformer_step_3_layers)[0]        # announcement is said
    # With every detail (edge shapes as labels), this entry is far beyond what dot lays out in seconds.
    unbudgeted = kernel_graph(module, RenderOptions(layout_budget=10**9))
    assert unbudgeted.total_nodes >= 230 and unbudgeted.edge_labels
    assert unbudgeted.cost.work > 2 * LAYOUT_BUDGET
    progress: list[str] = []
    svg, rendering = render_svg(module, report=progress.append)
    assert rendering.cost.fits(LAYOUT_BUDGET) and not rendering.simplified
    drawn_as_stated(svg, rendering)
    fusions = [n for n in rendering.nodes if module.entry.by_name[n].opcode == "fusion"]
    assert len(fusions) > 100 and not rendering.clusters  # every fusion collapsed to a node
    assert any("fusions collapsed to one node each" in note for note in rendering.left_out)
    if any(note.startswith("cut to ") for note in rendering.left_out):
        kept, total, _, _ = stated_cut(rendering)
        assert (kept, total) == (len(rendering.nodes), rendering.total_nodes)
    else:
        assert len(rendering.nodes) == rendering.total_nodes
    if not rendering.edge_labels:
        assert "Not shown: shapes on edges (hover over an edge for its shape)" in svg_text(svg)
    assert progress[0] == (f"drawing {len(rendering.nodes)} of {rendering.total_nodes} nodes of main.65, "
                           f"{rendering.cost.edges} edges, layout work {rendering.cost.work:,}; dot has 10 s")
    width_pt = float(ET.fromstring(svg).get("width").removesuffix("pt"))
    assert width_pt <= 40 * 72  # graphviz's size caps what a screen is asked to show


@pytest.mark.slow
@pytest.mark.requires_jax
def test_a_15_mb_unrolled_module_is_cut_as_its_caption_says(unrolled_transformer_15mb):
    module = read_hlo(unrolled_transformer_15mb)[0]
    assert unrolled_transformer_15mb.stat().st_size >= 15e6
    svg, rendering = render_svg(module)
    drawn_as_stated(svg, rendering)
    kept, total, hops, centre = stated_cut(rendering)
    assert (kept, total) == (len(rendering.nodes), rendering.total_nodes) and total > 10_000
    assert f"Not shown: cut to {kept} of {total} nodes" in svg_text(svg)
    assert centre in rendering.nodes and set(rendering.nodes) <= within_hops(module, centre, hops)
    assert not set(rendering.nodes) <= within_hops(module, centre, hops - 1)  # the stated hops are needed
    assert rendering.cost.fits(LAYOUT_BUDGET)


def test_when_dot_runs_out_of_time_a_simpler_drawing_replaces_it_and_says_so():
    module = module_of("linear_grad", "jax")  # small: the full drawing has clusters and edge labels
    progress: list[str] = []
    # No dot starts, reads its input and lays out a graph within a millisecond: the first drawing always times out.
    svg, rendering = render_svg(module, RenderOptions(time_limit_s=0.001), report=progress.append)
    assert rendering.simplified and not rendering.clusters and not rendering.edge_labels
    assert rendering.cost.work <= LAYOUT_BUDGET // 4 and "splines=line" in rendering.dot
    drawn_as_stated(svg, rendering)
    caption = svg_text(svg)
    assert ("Not shown: the chosen drawing, which dot did not lay out within 0.001 s; this is a simpler one "
            "(straight edges, fusions collapsed, shapes on edges shown on hover only)") in caption
    assert "dot did not finish within 0.001 s; drawing a simpler layout" in progress[1]
    full_svg, full = render_svg(module)  # the same module with time to spare: clusters and labels, no such note
    assert full.clusters and full.edge_labels and not full.simplified
    assert "did not lay out" not in svg_text(full_svg)


def test_when_the_simpler_drawing_runs_out_of_time_too_it_is_a_one_line_error():
    options = RenderOptions(time_limit_s=0.001, fallback_time_limit_s=0.001)
    with pytest.raises(DotTimeout) as caught:
        render_svg(module_of("matvec", "jax"), options)
    assert str(caught.value) == ("graphviz's dot did not finish within 0.001 s, nor a simpler layout within "
                                 "0.001 s; draw less (--around NAME --radius 2, or a smaller --max-nodes)")


def test_a_small_budget_cuts_to_the_neighbourhood_that_fits_and_says_how_much():
    module = module_of("dpsgd_mnist", "tf")
    whole = kernel_graph(module)
    budget = 300  # less than the whole graph needs even without clusters and edge labels
    svg, cut = render_svg(module, RenderOptions(layout_budget=budget))
    drawn_as_stated(svg, cut)
    kept, total, hops, centre = stated_cut(cut)
    assert (kept, total) == (len(cut.nodes), whole.total_nodes) and kept < total
    assert cut.cost.work <= budget < whole.cost.work
    assert any(f"(estimated layout work {cut.cost.work:,} of {budget:,}," in note for note in cut.left_out)
    bigger = kernel_graph(module, RenderOptions(layout_budget=budget, max_nodes=kept + 1, around=centre, radius=hops))
    assert len(bigger.nodes) <= kept  # the cut is the largest that fits, not an arbitrary one


def test_dot_reports_progress_while_it_runs(monkeypatch):
    from xlainspect.output import render

    monkeypatch.setattr(render, "_PROGRESS_EVERY_S", 0.001)
    lines: list[str] = []
    dot_to_svg(kernel_graph(module_of("dpsgd_mnist", "tf")).dot, 30, lines.append)
    assert lines and all(re.fullmatch(r"dot: laying out, \d+ s of 30 s", line) for line in lines)


def test_a_quick_drawing_says_nothing_a_slow_one_says_what_it_draws_first(monkeypatch):
    from xlainspect.output import render

    module = module_of("linear_grad", "jax")
    quiet: list[str] = []
    render_svg(module, report=quiet.append)
    assert quiet == []  # dot lays this out well within the first two seconds
    monkeypatch.setattr(render, "_PROGRESS_EVERY_S", 0.01)  # dot needs about 0.2 s for this one
    told: list[str] = []
    _, rendering = render_svg(module_of("dpsgd_mnist", "tf"), report=told.append)
    assert told[0].startswith(f"drawing {len(rendering.nodes)} of {rendering.total_nodes} nodes of ")
    assert len(told) >= 2 and all(re.fullmatch(r"dot: laying out, \d+ s of 10 s", line) for line in told[1:])


def test_layout_cost_counts_the_ranks_long_edges_cross_and_doubles_them_for_labels():
    chain = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    plain = layout_cost(chain, edges)
    assert (plain.ranks, plain.virtual_nodes, plain.widest_rank) == (4, 2, 2)  # a->d crosses b's and c's ranks
    labelled = layout_cost(chain, edges, edge_labels=True)
    assert (labelled.ranks, labelled.virtual_nodes) == (7, 8)  # every span doubled: 3 x 1 + 5
    assert labelled.work == 4 + 2 * 8
    # A weight read only by the last kernel sits just above it, as dot ranks it, not at the top with the inputs.
    late = layout_cost(["x", "k1", "k2", "k3", "w"], [("x", "k1"), ("k1", "k2"), ("k2", "k3"), ("w", "k3")])
    assert (late.ranks, late.virtual_nodes) == (4, 0)


TOOLTIPS = r"""
    f {
      p = f32[4] parameter(0)
      ROOT e = f32[4] exponential(p), metadata={op_name="jit(step)/exp" source_file="/home/me/model.py" source_line=12}
    }
    ENTRY e {
      x = f32[4] parameter(0)
      m = f32[4] negate(x), metadata={op_type="Neg" op_name="dpsgd_step/Neg" source_file="/usr/lib/python3/dist-packages/tensorflow/python/framework/ops.py" source_line=1221}
      ROOT k = f32[4] fusion(m), kind=kLoop, calls=f
    }
    """


def test_node_tooltips_name_the_users_source_line_else_the_framework_op():
    svg, _ = render_svg(parse_hlo(textwrap.dedent(TOOLTIPS)))
    tips = tooltips(svg)
    assert tips["k"].splitlines()[-1] == "from /home/me/model.py:12"  # a fused op's line, on the fusion
    assert tips["m"].splitlines()[-1] == "op dpsgd_step/Neg"  # TF's own ops.py is not the user's source
    assert "from" not in tips["x"] and "op " not in tips["x"]  # no metadata, no source line
    assert tips["k/e"].splitlines()[-1] == "from /home/me/model.py:12"  # the op inside the cluster too
