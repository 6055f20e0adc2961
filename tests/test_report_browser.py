"""The clickable report in a real browser: Debian's Chromium driven through Debian's chromedriver by selenium.

Nothing here downloads a browser or a driver: both come from Debian (``make test-deps`` installs them), and selenium
is handed their paths, so its driver manager never runs. What the page should do is worked out here from the
library (the diff's pairing, the census), not read back from the page's own data, so a page that pairs or sorts
wrongly fails.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from xlainspect import read_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.output.report import build_report

from browser_helpers import chromium

REPO = Path(__file__).resolve().parents[1]
DUMPS = REPO / "dumps"
PROGRAM = "dpsgd_mnist"

pytestmark = pytest.mark.requires_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(1400, 1000) as driver:
        yield driver


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(build_report(PROGRAM, str(DUMPS)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairing() -> tuple[dict[str, set[str]], list[str]]:
    """The diff's pairing of the program's JAX and TF kernels (A's name -> B's names) and A's unmatched kernels."""
    a, b = (census(read_hlo(DUMPS / "cpu" / PROGRAM / side / "after_optimizations.txt")[0]) for side in ("jax", "tf"))
    diff = diff_census(a, b)
    matches: dict[str, set[str]] = {}
    for pair in diff.matched:
        matches.setdefault(pair.a.name, set()).add(pair.b.name)
    return matches, [k.name for k in diff.only_a]


def open_page(driver, path: Path) -> None:
    driver.get(path.as_uri())
    driver.get_log("browser")  # from here on, the logs are this page's
    driver.get_log("performance")


def reopen(driver, path: Path) -> list[dict]:
    """Loads the page afresh; returns the browser console's entries of the load."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(path.as_uri())
    return driver.get_log("browser")


def graph_node(driver, side: int, kernel: str):
    """The kernel's own node (not a fused op's) in the graph of side 0 (A) or 1 (B), or None when it is not drawn."""
    return driver.execute_script(
        "return [...document.querySelectorAll(`.graph[data-side='${arguments[0]}'] g.node`)]"
        ".find(g => g.querySelector('title').textContent === arguments[1]) || null", side, kernel)


def highlighted(driver) -> dict[str, list[str]]:
    """What is highlighted: kernel nodes per graph and the kernels named by highlighted table rows."""
    return driver.execute_script("""
        const own = side => [...document.querySelectorAll(`.graph[data-side='${side}'] g.node.xi-sel`)]
            .filter(g => g.dataset.own).map(g => g.dataset.kernel);
        const rows = [...document.querySelectorAll('tr.xi-sel')];
        return {a: own(0), b: own(1), rowsA: rows.map(r => r.dataset.a).filter(x => x !== undefined),
                rowsB: rows.map(r => r.dataset.b).filter(x => x !== undefined),
                details: document.getElementById('xi-details').hidden ? null
                    : document.getElementById('xi-details').innerText};""")


def drawn(driver, side: int) -> set[str]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll(`.graph[data-side='${arguments[0]}'] g.xi-k`)]"
        ".filter(g => g.dataset.own).map(g => g.dataset.kernel)", side))


def test_page_loads_clean_and_offline(browser, report):
    console = reopen(browser, report)
    assert console == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert page_requests(browser, report) == [report.as_uri()]  # the page itself, nothing it asked for


def page_requests(browser, page: Path) -> list[str]:
    """The URLs the browser requested for the page, from Chrome's performance log (the DevTools network events)."""
    messages = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"
            and m["params"].get("documentURL") == page.as_uri()]
    assert browser.execute_script("return document.body.classList.contains('js')")


def test_clicking_a_kernel_in_graph_a_highlights_its_match_everywhere(browser, report, pairing):
    matches, _ = pairing
    open_page(browser, report)
    both = [(a, sorted(bs)) for a, bs in matches.items() if a in drawn(browser, 0) and set(bs) & drawn(browser, 1)]
    name, expected = next((a, bs) for a, bs in both if "fusion" in a)
    graph_node(browser, 0, name).click()
    seen = highlighted(browser)
    assert seen["a"] == [name]
    assert sorted(seen["b"]) == sorted(b for b in expected if b in drawn(browser, 1)) != []
    assert name in seen["rowsA"] and set(expected) <= set(seen["rowsB"])
    assert set(seen["rowsA"]) == {name}  # only its own rows on side A
    assert f"jax: {name}, matched in tf" in seen["details"]
    outlines = browser.execute_script("""return [...document.querySelectorAll('g.node.xi-sel')].filter(g => g.dataset.own)
        .map(g => getComputedStyle(g.querySelector('polygon, ellipse')).stroke)""")
    assert set(outlines) == {"rgb(209, 20, 106)"}  # painted in the highlight colour, not only given a class
    hlo = browser.execute_script("return document.querySelector('#xi-details pre').textContent")
    assert hlo.startswith(f"{name} = ") and "fusion(" in hlo and "ROOT " in hlo  # the fused computation's ops
    assert browser.get_log("browser") == []


def test_clicking_a_table_row_highlights_both_graphs(browser, report, pairing):
    matches, _ = pairing
    open_page(browser, report)
    name, expected = next((a, bs) for a, bs in matches.items()
                          if a in drawn(browser, 0) and set(bs) <= drawn(browser, 1) and "fusion" not in a
                          and a not in bs)  # its match has another name: lighting by name, not by the pairing, fails
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    row = browser.execute_script("return [...document.querySelectorAll('table.xi-kernels tr')]"
                                 ".find(r => r.dataset.a === arguments[0] && r.dataset.b !== undefined)", name)
    row.click()
    seen = highlighted(browser)
    assert seen["a"] == [name] and sorted(seen["b"]) == sorted(expected)


def test_an_unmatched_kernel_highlights_nothing_on_the_other_side(browser, report, pairing):
    _, only_a = pairing
    open_page(browser, report)
    name = next(n for n in only_a if n in drawn(browser, 0))
    graph_node(browser, 0, name).click()
    seen = highlighted(browser)
    assert seen["a"] == [name] and seen["b"] == [] and seen["rowsB"] == []
    assert seen["rowsA"] == [name]  # its row in "Only in jax"
    assert "only in jax: no match in tf" in seen["details"]


def numeric_column(browser, table_index: int, column: int) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('table.xi-kernels')[arguments[0]].tBodies[0].rows]"
        ".filter(r => !r.hidden).map(r => r.cells[arguments[1]].textContent)", table_index, column)


def test_sorting_a_numeric_column_and_filtering(browser, report):
    open_page(browser, report)
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    tables = browser.find_elements("css selector", "table.xi-kernels")
    index = 1  # "Only in jax": kernel, kind, fused ops, runs, µs, from
    header = tables[index].find_elements("css selector", "th")[3]
    assert header.text == "runs"
    # Numbers that sort differently as text: runs of 1, 2 and 10 would read 1, 10, 2.
    browser.execute_script("""const rows = arguments[0].tBodies[0].rows;
        [10, 2, 1, 33, 4].forEach((n, i) => { if (rows[i]) rows[i].cells[3].textContent = String(n); });""",
                           tables[index])
    header.click()
    values = [int(v) for v in numeric_column(browser, index, 3)]
    assert values == sorted(values) and len(values) >= 3
    header.click()
    assert [int(v) for v in numeric_column(browser, index, 3)] == sorted(values, reverse=True)

    rows_before = len(numeric_column(browser, index, 0))
    box = browser.execute_script("return arguments[0].previousElementSibling", tables[index])
    first = numeric_column(browser, index, 0)[0]
    box.send_keys(first)
    shown = numeric_column(browser, index, 0)
    assert first in shown and len(shown) < rows_before
    box.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('input'))", box)
    assert len(numeric_column(browser, index, 0)) == rows_before


def test_search_pan_zoom_and_screenshot(browser, report, tmp_path):
    import matplotlib.image

    open_page(browser, report)
    search = browser.find_element("id", "xi-search")
    search.send_keys("convolution")
    browser.execute_script("return new Promise(done => setTimeout(done, 400))")
    count = browser.find_element("id", "xi-count").text
    assert count.startswith(("1", "2", "3", "4", "5", "6", "7", "8", "9")) and "in jax" in count and "in tf" in count
    hits = browser.execute_script("return document.querySelectorAll('g.xi-hit').length")
    assert hits > 0
    search.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('input'))", search)

    svg = browser.find_element("css selector", ".graph[data-side='0'] svg")
    view_box = lambda: browser.execute_script("return arguments[0].getAttribute('viewBox')", svg)
    before = view_box()
    browser.execute_script("arguments[0].dispatchEvent(new WheelEvent('wheel', {deltaY: -300, clientX: 50, "
                           "clientY: 50, bubbles: true, cancelable: true}))", svg)
    zoomed = view_box()
    assert float(zoomed.split()[2]) < float(before.split()[2])  # narrower: zoomed in
    browser.find_element("css selector", ".graph[data-side='0'] .xi-reset").click()
    assert view_box() == before

    shot = tmp_path / "shot.png"
    assert browser.save_screenshot(str(shot))
    pixels = (matplotlib.image.imread(str(shot))[..., :3] * 255).round().astype(int)
    assert (pixels.min(axis=2) < 200).mean() > 0.01  # text and drawings, not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert browser.get_log("browser") == []


SCRIPT_IN_METADATA = textwrap.dedent("""\
    HloModule m
    ENTRY e {
      x = f32[8]{0} parameter(0)
      c = f32[8]{0} cosine(x), metadata={op_name="step/</script><script>document.title='broken'</script>"}
      ROOT t = f32[8]{0} tanh(c)
    }
    """)


def test_script_text_in_metadata_stays_data(browser, tmp_path):
    a = tmp_path / "a.hlo"
    a.write_text(SCRIPT_IN_METADATA)
    b = tmp_path / "b.hlo"
    b.write_text(SCRIPT_IN_METADATA.replace("tanh", "sine"))
    page = tmp_path / "report.html"
    page.write_text(build_report(None, sides=[str(a), str(b)]), encoding="utf-8")
    assert reopen(browser, page) == []
    assert browser.title.startswith("xlainspect report")
    browser.execute_script("[...document.querySelectorAll('tr')].find(r => r.dataset.a === 'c').click()")
    assert "step/</script><script>document.title='broken'</script>" in highlighted(browser)["details"]
    assert browser.get_log("browser") == []


def test_console_errors_are_seen(browser, tmp_path):
    # The clean-console checks above prove something only if an error would show up in the log.
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); undefined_function();</script></body></html>")
    logged = " ".join(entry["message"] for entry in reopen(browser, page))
    assert "boom" in logged and "undefined_function" in logged


def test_network_requests_are_seen(browser, tmp_path):
    # And a page that asks for anything (here a local style sheet, as it would a font or a script from a URL) shows
    # up in the performance log. (The page's resource list, also checked above, records http(s) loads only.)
    page = tmp_path / "asks.html"
    (tmp_path / "style.css").write_text("body { color: #222; }")
    page.write_text("<html><head><link rel='stylesheet' href='style.css'></head><body>x</body></html>")
    reopen(browser, page)
    assert page_requests(browser, page) == [page.as_uri(), (tmp_path / "style.css").as_uri()]


@pytest.mark.skipif(not os.environ.get("XLAINSPECT_SCREENSHOT"), reason="set XLAINSPECT_SCREENSHOT=PATH to save one")
def test_save_readme_screenshot(browser, report, pairing):
    """Saves the README's screenshot of the clickable report: a kernel selected, its match lit in the other graph."""
    matches, _ = pairing
    open_page(browser, report)
    name = next(a for a, bs in matches.items() if "fusion" in a and a in drawn(browser, 0)
                and set(bs) & drawn(browser, 1))
    browser.execute_script("document.querySelector('.sides').scrollIntoView()")
    graph_node(browser, 0, name).click()
    browser.execute_script("document.querySelector('.sides').scrollIntoView(); window.scrollBy(0, -40)")
    browser.save_screenshot(os.environ["XLAINSPECT_SCREENSHOT"])


def test_colour_by_time_and_back_by_kind(browser, report, tmp_path):
    from xlainspect.measure.timing import FrameworkTiming, KernelTime, TimingReport
    from xlainspect.output.render import KIND_COLOURS, _heat
    from xlainspect.runners.manifest import DumpManifest

    open_page(browser, report)
    assert browser.find_element("id", "xi-colour-time").get_attribute("disabled") is not None  # no --timing given
    frameworks, times = {}, {}
    for framework in ("jax", "tf"):
        folder = DUMPS / "cpu" / "linear_grad" / framework
        kernels = census(read_hlo(folder / "after_optimizations.txt")[0]).kernels
        times[framework] = {k.name: 10.0 * (i + 1) for i, k in enumerate(kernels)}  # unequal: the heat must differ
        frameworks[framework] = FrameworkTiming(
            framework, "0", 0.5, (1.0, 1.1, 1.2), tuple(KernelTime(name, 1, us, us / 1e3, None, None, None)
                                                        for name, us in times[framework].items()),
            DumpManifest.read(folder / "manifest.json").module_name)
    timing = tmp_path / "time.json"
    timing.write_text(json.dumps(TimingReport("linear_grad", None, frameworks).to_json()))
    page = tmp_path / "timed.html"
    page.write_text(build_report("linear_grad", str(DUMPS), timing_file=str(timing)), encoding="utf-8")
    reopen(browser, page)
    fills = """return Object.fromEntries([...document.querySelectorAll(".graph[data-side='0'] g.xi-k")]
        .filter(g => g.dataset.own).map(g => [g.dataset.kernel, g.querySelector('polygon, ellipse').getAttribute('fill')]))"""
    by_kind = browser.execute_script(fills)
    assert by_kind and set(by_kind.values()) <= {*KIND_COLOURS.values(), "#ffffff", "#e76f51"}
    browser.find_element("id", "xi-colour-time").click()
    total = sum(times["jax"].values())
    assert browser.execute_script(fills) == {name: _heat(times["jax"][name] / total) for name in by_kind}
    browser.find_element("id", "xi-colour-kind").click()
    assert browser.execute_script(fills) == by_kind
    assert browser.get_log("browser") == []


def test_without_javascript_the_page_still_reads(browser, report, tmp_path):
    # As a browser with scripts off shows it: the page less its code (the data block is inert without it).
    page = report.read_text(encoding="utf-8")
    code = page.rindex("<script>")
    plain = tmp_path / "plain.html"
    plain.write_text(page[:code] + page[page.index("</script>", code) + len("</script>"):], encoding="utf-8")
    assert reopen(browser, plain) == []
    seen = browser.execute_script("""return {js: document.body.classList.contains('js'),
        graphs: [...document.querySelectorAll('.graph svg')].map(svg => svg.getBoundingClientRect().width),
        fullSize: [...document.querySelectorAll('.zoom + label')].filter(l => l.offsetWidth > 0).length,
        rows: document.querySelectorAll('table.xi-kernels tbody tr').length,
        bar: document.getElementById('xi-bar') !== null};""")
    assert seen["js"] is False and seen["bar"] is False
    assert len(seen["graphs"]) == 2 and min(seen["graphs"]) > 300 and seen["fullSize"] == 2
    diff = diff_census(*(census(read_hlo(DUMPS / "cpu" / PROGRAM / side / "after_optimizations.txt")[0])
                         for side in ("jax", "tf")))
    assert seen["rows"] == len(diff.matched) + len(diff.only_a) + len(diff.only_b)  # every kernel's row is there
