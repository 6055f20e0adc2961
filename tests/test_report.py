"""Tests for ``xlainspect report``: the page's content, its independence from any network, and a real browser.

The browser test opens the page in headless Chromium (Debian's package, which ``make test`` installs), checks that
the page logged nothing to the console, that the DOM holds both kernel graphs with every top-level kernel, and that
the screenshot shows the graphs' fusion colours. The clicking is tested in ``test_report_browser.py``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from xlainspect import parse_hlo, read_hlo
from xlainspect.analysis.census import census
from xlainspect.cli import main
from xlainspect.errors import RecordError
from xlainspect.measure.spread import Spread
from xlainspect.measure.timing import FrameworkTiming, KernelTime, TimingReport
from xlainspect.output.render import KIND_COLOURS
from xlainspect.output.report import build_report, kernel_sources
from xlainspect.runners.manifest import DumpManifest

REPO = Path(__file__).resolve().parents[1]
DUMPS = REPO / "dumps"


class _Collector(HTMLParser):
    """Tags, attributes and <title> texts of a page; fails on nothing, so it also shows what is there."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.titles: set[str] = set()
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.titles.add(data.strip())


def collect(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def top_level_kernels(program: str, framework: str, dumps: Path = DUMPS) -> set[str]:
    module = read_hlo(dumps / "cpu" / program / framework / "after_optimizations.txt")[0]
    return {k.name for k in census(module).kernels if k.computation == module.entry.name}


def test_page_holds_versions_censuses_diff_and_both_graphs():
    page = build_report("dpsgd_ffnn", str(DUMPS))
    seen = collect(page)
    assert seen.tags.count("svg") == 2
    for framework in ("jax", "tf"):
        assert top_level_kernels("dpsgd_ffnn", framework) <= seen.titles, framework
        manifest = DumpManifest.read(DUMPS / "cpu/dpsgd_ffnn" / framework / "manifest.json")
        assert manifest.framework_version in page and manifest.module_name in page
        assert html.escape(manifest.compiler) in page  # which front end and compiler, from the manifest
    for heading in ("Census", "Kernels", "Kernel graphs", "Pass timeline"):
        assert f"<h2>{heading}</h2>" in page
    kernels = census(read_hlo(DUMPS / "cpu/dpsgd_ffnn/jax/after_optimizations.txt")[0]).kernel_count
    assert f"jax has {kernels} kernels" in page  # the verdict names the frameworks, not A and B
    assert "no pass dumps; make them with" in page


NETWORK_CALLS = re.compile(r"\bfetch\s*\(|XMLHttpRequest|\bimport\s*\(|\bimportScripts\b|new\s+(?:WebSocket|"
                           r"EventSource|Worker)\b|sendBeacon|@import|url\(")


def network_references(page: str) -> list[str]:
    """What in a page could load something: an ``src``/``href`` to another document or a network URL, a script
    from a file, or a call that fetches (``fetch(``, ``XMLHttpRequest``, ``import(``, CSS ``url(`` and ``@import``)."""
    seen = collect(page)
    found = [f"{name}={value}" for name, value in seen.attributes
             if name in ("src", "href", "xlink:href", "action", "srcset", "data") and not value.startswith("#")]
    found += [f"<{tag}>" for tag in ("link", "img", "iframe", "object", "embed") if tag in seen.tags]
    return found + [match.group(0) for match in NETWORK_CALLS.finditer(page)]


def test_page_needs_no_network_and_scripts_are_inline():
    page = build_report("linear_grad", str(DUMPS))
    assert network_references(page) == []
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts == [' type="application/json" id="xi-data"', ""]  # the data and the code, both inline
    # The check itself sees each way a page could reach out.
    for planted in ('<script src="https://cdn.example/x.js"></script>', '<a href="http://example.com">x</a>',
                    "<script>fetch('data.json')</script>", "<script>new XMLHttpRequest()</script>",
                    "<script>import('./m.js')</script>", '<img src="x.png">',
                    "<style>@font-face { src: url(f.woff) }</style>"):
        assert network_references(page.replace("</body>", planted + "</body>")) != [], planted


def test_kernel_data_cannot_close_its_script_block(tmp_path):
    hlo = textwrap.dedent("""\
        HloModule m
        ENTRY e {
          x = f32[8]{0} parameter(0)
          ROOT c = f32[8]{0} cosine(x), metadata={op_name="a</script><script>alert(1)</script>&amp;"}
        }
        """)
    path = tmp_path / "m.hlo"
    path.write_text(hlo)
    page = build_report(None, sides=[str(path)])
    assert page.count("</script>") == 2 and page.count("<script") == 2  # the data block's end and the code's end
    data = re.search(r'<script type="application/json" id="xi-data">(.*?)</script>', page, re.DOTALL).group(1)
    kernel = json.loads(data)["sides"][0]["kernels"]["c"]
    assert kernel["fw"] == ["a</script><script>alert(1)</script>&amp;"]  # read back as written
    assert kernel["hlo"] == "ROOT c = f32[8]{0} cosine(x)"


def test_page_data_pairs_kernels_as_the_diff_does():
    from xlainspect.analysis.diff import diff_census

    page = build_report("dpsgd_ffnn", str(DUMPS))
    data = json.loads(re.search(r'id="xi-data">(.*?)</script>', page, re.DOTALL).group(1))
    a, b = (census(read_hlo(DUMPS / "cpu/dpsgd_ffnn" / side / "after_optimizations.txt")[0]) for side in ("jax", "tf"))
    diff = diff_census(a, b)
    for side, kernels in ((0, a.kernels), (1, b.kernels)):
        assert set(data["sides"][side]["kernels"]) == {k.name for k in kernels}
    for pair in diff.matched:
        assert pair.b.name in data["sides"][0]["kernels"][pair.a.name]["match"]
        assert pair.a.name in data["sides"][1]["kernels"][pair.b.name]["match"]
    assert all("match" not in data["sides"][0]["kernels"][k.name] for k in diff.only_a)
    # Rows name their kernels for the script: every matched row both, every unmatched row its own side's.
    assert page.count(" data-a=") == len(diff.matched) + len(diff.only_a)
    assert page.count(" data-b=") == len(diff.matched) + len(diff.only_b)


def test_timing_adds_step_and_kernel_times(tmp_path):
    jax_kernels = sorted(top_level_kernels("linear_grad", "jax"))
    spread = Spread(10.0, 11.5, 13.5, 15.0)
    jax = FrameworkTiming("jax", "0.10.2", 0.1, (0.04, 0.05, 0.09), (KernelTime(jax_kernels[0], 1, 12.5, 0.25, None,
                                                                               None, spread),))
    path = tmp_path / "time.json"
    path.write_text(json.dumps(TimingReport("linear_grad", None, {"jax": jax}).to_json()))
    page = build_report("linear_grad", str(DUMPS), timing_file=str(path))
    assert "<h2>Timing</h2>" in page and "25.0%" in page
    # The kernel's time, ± half its IQR, and its range over the profiled runs.
    assert (f"<td>{jax_kernels[0]}</td><td class=\"num\">1</td><td class=\"num\">12.5</td><td class=\"num\">±1.0</td>"
            "<td class=\"num\">10.0–15.0</td>") in page
    # Steps of 40, 50 and 90 µs: median, ± half the IQR (quartiles 40 and 90), min and max.
    assert ("<td class=\"num\">0.050</td><td class=\"num\">±0.025</td><td class=\"num\">0.040</td>"
            "<td class=\"num\">0.090</td>") in page
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(RecordError) as info:
        build_report("linear_grad", str(DUMPS), timing_file=str(bad))
    assert str(info.value) == (f"{bad}: it holds a list, not a JSON object; not the output of 'xlainspect time "
                               "--program P --json' (an older or foreign file?)")


def timing_of_dumps(program: str, scale: float = 1.0, half_iqr: float = 0.0) -> TimingReport:
    """Times for every kernel of both committed dumps of ``program``: 10 µs (times ``scale``) for each, ± half_iqr."""
    frameworks = {}
    for framework in ("jax", "tf"):
        module = read_hlo(DUMPS / "cpu" / program / framework / "after_optimizations.txt")[0]
        manifest = DumpManifest.read(DUMPS / "cpu" / program / framework / "manifest.json")
        us = 10.0 * (scale if framework == "tf" else 1.0)
        kernels = tuple(KernelTime(k.name, 1, us, us / 1e3, None, None,
                                   Spread(us - 2 * half_iqr, us - half_iqr, us + half_iqr, us + 2 * half_iqr))
                        for k in census(module).kernels)
        frameworks[framework] = FrameworkTiming(framework, "0", 0.5, (1.0, 1.1, 1.2), kernels,
                                                manifest.module_name)
    return TimingReport(program, DumpManifest.read(DUMPS / "cpu" / program / "jax" / "manifest.json").batch_size,
                        frameworks)


def test_matched_kernels_show_their_difference_or_that_it_is_noise(tmp_path):
    path = tmp_path / "time.json"
    path.write_text(json.dumps(timing_of_dumps("linear_grad", 1.2, 1.5).to_json()))  # 12 ± 1.5 against 10 ± 1.5
    page = build_report("linear_grad", str(DUMPS), timing_file=str(path))
    assert "<th data-num>tf − jax µs</th>" in page
    assert page.count("<td class=\"num\">within noise (±3.0)</td>") == 2  # both matched pairs: 2 apart, 3 of noise
    assert "<p>median step, tf − jax: within noise (±0.200 ms)</p>" in page  # equal runs of 1.0, 1.1 and 1.2 ms
    path.write_text(json.dumps(timing_of_dumps("linear_grad", 1.5, 1.0).to_json()))  # 15 ± 1 against 10 ± 1
    page = build_report("linear_grad", str(DUMPS), timing_file=str(path))
    assert "<td class=\"num\">within noise" not in page
    assert page.count("<td class=\"num\">+5.0</td>") == 2


@pytest.mark.parametrize("program", ["linear_grad", "dpsgd_ffnn", "dpsgd_mnist", "sgd_mnist"])
def test_tf_kernels_name_a_user_source_or_the_tf_op(program):
    # TF's metadata names only its own ops.py (skipped as a framework frame), so each TF kernel is named by its TF
    # op; kernels XLA made itself (split reductions, a max-pool gradient's iotas) by the nearest kernel that has one.
    module = read_hlo(DUMPS / "cpu" / program / "tf" / "after_optimizations.txt")[0]
    kernels = census(module).kernels
    sources = kernel_sources(kernels)
    assert set(sources) == {k.name for k in kernels}
    for kernel in kernels:
        text = sources[kernel.name]
        assert text and "tensorflow/python" not in text and "site-packages" not in text, (kernel.name, text)
        if kernel.sources:
            assert text.split("; ")[0] in {s.op_name for s in kernel.sources}, (kernel.name, text)
        else:
            assert text.startswith(("made by XLA, feeds ", "made by XLA, reads ")), (kernel.name, text)
    page = build_report(program, str(DUMPS))
    named = next(k for k in kernels if k.sources)
    assert f"<td>{html.escape(sources[named.name])}</td>" in page or \
        f"title=\"{html.escape(sources[named.name])}\"" in page


def test_jax_kernels_name_the_users_source_line():
    kernels = census(read_hlo(DUMPS / "cpu/dpsgd_ffnn/jax/after_optimizations.txt")[0]).kernels
    sources = kernel_sources(kernels)
    lines = [sources[k.name] for k in kernels if k.sources and any(s.location for s in k.sources)]
    assert lines and all(text.startswith("xlainspect/programs/") for text in lines), lines


def test_kernels_xla_made_are_named_by_the_nearest_kernel_with_a_source():
    module = textwrap.dedent("""\
        HloModule m
        ENTRY e {
          x = f32[8]{0} parameter(0)
          i = f32[8]{0} iota(), iota_dimension=0
          c = f32[8]{0} cosine(i)
          s = f32[8]{0} sine(c)
          ROOT t = f32[8]{0} tanh(s), metadata={op_name="step/Tanh" op_type="Tanh"}
        }
        """)
    kernels = census(parse_hlo(module)).kernels
    assert kernel_sources(kernels) == {"c": "made by XLA, feeds t: step/Tanh", "s": "made by XLA, feeds t: step/Tanh",
                                       "t": "step/Tanh"}
    orphan = module.replace(', metadata={op_name="step/Tanh" op_type="Tanh"}', "")
    assert set(kernel_sources(census(parse_hlo(orphan)).kernels).values()) == {"made by XLA"}
    # Nothing downstream has a source: the nearest kernel upstream names it.
    first = orphan.replace("c = f32[8]{0} cosine(i)", 'c = f32[8]{0} cosine(i), metadata={op_name="step/Cos"}')
    assert kernel_sources(census(parse_hlo(first)).kernels) == {
        "c": "step/Cos", "s": "made by XLA, reads c: step/Cos", "t": "made by XLA, reads c: step/Cos"}


def test_report_target_reads_the_deviceless_dumps(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--program", "linear_grad", "--backend", "gpu", "--target", "h100", "-o", str(out)]) == 0
    page = out.read_text()
    assert "dumps/gpu-h100/linear_grad/jax/after_optimizations.txt" in page
    assert main(["report", "--program", "linear_grad", "--dumps", str(tmp_path), "--backend", "gpu", "--target",
                 "a100", "-o", str(out)]) == 1
    assert capsys.readouterr().err == (f"xlainspect: {tmp_path}/gpu-a100/linear_grad/jax/after_optimizations.txt: no "
                                       "dump; make it with 'xlainspect dump --program linear_grad --framework jax "
                                       f"--backend gpu --target a100 --out {tmp_path}'\n")


def test_pass_timeline_section(linear_grad_pass_dumps):
    page = build_report("linear_grad", str(linear_grad_pass_dumps))
    assert "first divergence: after fusion (" in page
    assert re.search(r"jax: \d+ passes changed the module", page)


def test_missing_dump_says_how_to_make_it(tmp_path, capsys):
    assert main(["report", "--program", "matvec", "--dumps", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xlainspect dump --program matvec" in err
    assert not (tmp_path / "r.html").exists()


# -- in a real browser -------------------------------------------------------------------------------------------


def chromium(*args: str) -> subprocess.CompletedProcess:
    # A fresh profile and no background networking: the page must load from disk alone, and this machine's closed
    # network would otherwise refuse Chromium's own connections.
    with tempfile.TemporaryDirectory(prefix="xlainspect-chromium-") as profile:
        return subprocess.run([shutil.which("chromium") or "chromium", "--headless=new", "--no-sandbox",
                               "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                               "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True,
                              timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.requires_chromium
def test_console_detector_catches_errors(tmp_path):
    # The detector the next test relies on must see a page's console errors, or its silence proves nothing.
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); undefined_function();</script></body></html>")
    messages = console_messages(chromium("--dump-dom", page.as_uri()).stderr)
    assert any("boom" in m for m in messages) and any("undefined_function" in m for m in messages)


@pytest.mark.requires_chromium
def test_report_in_headless_chromium(tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "report.html"
    assert main(["report", "--program", "linear_grad", "-o", str(out)]) == 0
    loaded = chromium("--dump-dom", out.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-500:]
    assert console_messages(loaded.stderr) == []
    dom = collect(loaded.stdout)
    assert dom.tags.count("svg") == 2
    for framework in ("jax", "tf"):
        assert top_level_kernels("linear_grad", framework) <= dom.titles, framework

    shot = tmp_path / "shot.png"
    taken = chromium("--window-size=1400,2400", f"--screenshot={shot}", out.as_uri())
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-500:]
    assert console_messages(taken.stderr) == []
    pixels = (matplotlib.image.imread(str(shot))[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (2400, 1400)
    assert (pixels.min(axis=2) < 200).mean() > 0.01  # text and drawings, not a blank page
    loop_fill = np.array([int(KIND_COLOURS["kLoop"][i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - loop_fill).max(axis=2) <= 2).sum() > 500  # the kLoop fusion boxes were painted


# Measures the laid-out page from inside it (the test adds this script to a copy, after the page's own):
# every numeric cell and header on one line, long cells cut to their column and whole in their tooltip, and each
# graph as wide as its column at most.
GEOMETRY_PROBE = """<script>
const lines = cell => { const range = document.createRange(); range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size; };
const numbers = [...document.querySelectorAll('td.num, th')];
const noise = numbers.filter(cell => cell.textContent.startsWith('within noise')).length;
const spreads = numbers.filter(cell => cell.textContent.startsWith('±')).length;
const long = [...document.querySelectorAll('td.long')];
const graphs = [...document.querySelectorAll('.graph svg')];
document.title = JSON.stringify({
  numbers: numbers.length, noise: noise, spreads: spreads, wrapped: numbers.filter(cell => lines(cell) > 1).map(cell => cell.textContent),
  long: long.length, longWrapped: long.filter(cell => lines(cell) > 1).length,
  tooltips: long.every(cell => cell.title === cell.textContent),
  graphs: graphs.length, tooWide: graphs.filter(svg => svg.getBoundingClientRect().width
                                              > svg.parentElement.clientWidth + 1).length});
</script></body>"""


@pytest.mark.requires_chromium
def test_report_numbers_never_wrap_and_graphs_fit_the_width(tmp_path):
    out = tmp_path / "report.html"
    timing = tmp_path / "time.json"  # spreads, ranges and "within noise" cells in the kernel and timing tables
    timing.write_text(json.dumps(timing_of_dumps("dpsgd_mnist", 1.1, 2.0).to_json()))
    assert main(["report", "--program", "dpsgd_mnist", "--timing", str(timing), "-o", str(out)]) == 0  # TF's long
    # op paths and names
    page = out.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", GEOMETRY_PROBE))
    loaded = chromium("--window-size=900,1200", "--dump-dom", probed.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-500:]
    assert console_messages(loaded.stderr) == []
    title = re.search(r"<title>(.*?)</title>", loaded.stdout, re.DOTALL).group(1)
    geometry = json.loads(html.unescape(title))
    assert geometry["numbers"] > 500 and geometry["wrapped"] == []
    assert geometry["noise"] > 50 and geometry["spreads"] >= 30  # the new cells were among those measured
    assert geometry["long"] > 5 and geometry["longWrapped"] == 0 and geometry["tooltips"] is True
    assert geometry["graphs"] == 2 and geometry["tooWide"] == 0


@pytest.mark.parametrize("program", ["dpsgd_logreg", "dpsgd_embedding", "dpsgd_lstm", "sgd_cifar10"])
def test_the_new_models_report_both_sides(program):
    """Every kernel of each side is in the page (the loop kernels of the LSTM with their launch counts), and both
    kernel graphs are drawn."""
    page = build_report(program, str(DUMPS))
    assert collect(page).tags.count("svg") == 2
    verdict = {"jax": "jax has {} kernels ({} launches)", "tf": "tf has {} ({} launches)"}  # as diff words it
    for framework in ("jax", "tf"):
        kernels = census(read_hlo(DUMPS / "cpu" / program / framework / "after_optimizations.txt")[0])
        said = verdict[framework].format(kernels.kernel_count, kernels.launches)
        assert said in page.replace(",", ""), framework
        assert all(html.escape(k.name) in page for k in kernels.kernels), framework
