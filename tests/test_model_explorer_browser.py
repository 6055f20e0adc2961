"""``xlainspect view`` in a real browser: Model Explorer's page, served by :func:`serve` on 127.0.0.1, in Debian's
Chromium driven through Debian's chromedriver by selenium (nothing downloads a browser or a driver).

The page must show the dump's kernels with the census's figures and the timing file's times, and load nothing from
the network; two modules open side by side, and a click on a kernel in one selects its diff partner in the other.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xlainspect import read_hlo
from xlainspect.analysis.census import census
from xlainspect.analysis.diff import diff_census
from xlainspect.output.model_explorer import build_view, serve, write_mapping

from browser_helpers import chromium
from browser_helpers import wait_for as _wait_for

REPO = Path(__file__).resolve().parents[1]
JAX_DUMP = REPO / "dumps/cpu/dpsgd_mnist/jax"
TF_DUMP = REPO / "dumps/cpu/dpsgd_mnist/tf"
KERNEL = "ynn_fusion.20"
TIMING = REPO / "docs/time-dpsgd_mnist-cpu.json"  # xlainspect time --program dpsgd_mnist --json, of these dumps

pytestmark = [pytest.mark.requires_chromium, pytest.mark.requires_explorer]

LOAD_S = 120.0  # a loaded 2-core CI machine renders with software WebGL


@pytest.fixture()
def browser() -> Iterator[object]:
    # laying out two graphs keeps the page's thread busy on a loaded machine: scripts get LOAD_S
    with chromium(1800, 1000, script_timeout_s=LOAD_S) as driver:
        yield driver


def wait_for(driver, script: str, timeout: float = LOAD_S):
    return _wait_for(driver, script, timeout)


def open_view(driver, url: str) -> float:
    """Opens the page; returns the seconds until every pane shows its graph's node count."""
    driver.get("about:blank")
    driver.get_log("performance")  # from here on, the logs are this page's
    driver.get_log("browser")
    start = time.monotonic()
    driver.get(url)
    panes = url.count("paneStates") and 2 or 1
    wait_for(driver, f"return (document.body.innerText.match(/op node count/g) || []).length >= {panes}")
    return time.monotonic() - start


def locate(driver, name: str, pane: int = 0) -> None:
    """Searches ``name`` in a pane's search box and Alt+clicks its op node among the results (locate and select)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_elements(By.CSS_SELECTOR, "input[placeholder^='Search nodes']")[pane]
    box.send_keys(f"^{name}$")
    # Two results carry the name: the fusion's layer and, inside it, its kernel node (the last one).
    rows = wait_for(driver, f"""const rows = [...document.querySelectorAll('.search-results-container .node-label')]
                                  .filter(e => e.textContent.trim() == {json.dumps(name)});
                                return rows.length ? rows : null""", 30)
    ActionChains(driver).key_down(Keys.ALT).click(rows[-1]).key_up(Keys.ALT).perform()


def side_panel(driver, pane: int = 0) -> dict[str, str]:
    """The selected node's NODE INFO and ATTRIBUTES rows of a pane's side panel, key -> value."""
    text = wait_for(driver, f"""const panels = [...document.querySelectorAll('info-panel, .info-panel')];
                               const t = panels.length > {pane} ? panels[{pane}].innerText : '';
                               return t.includes('ATTRIBUTES') ? t : null""", 30)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return dict(itertools.pairwise(lines))  # each key's value is the next line (values become keys too: harmless)


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_a_dump_opens_with_its_kernels_named_and_measured_and_nothing_from_the_network(browser, tmp_path):
    kernel = {k.name: k for k in census(read_hlo(JAX_DUMP / "after_optimizations.txt")[0]).kernels}[KERNEL]
    timed = {k["hlo_op"]: k for k in json.loads(TIMING.read_text())["frameworks"]["jax"]["kernels"]}[KERNEL]
    with serve(build_view(str(JAX_DUMP), timing=str(TIMING))) as server:
        seconds = open_view(browser, server.url)
        locate(browser, KERNEL)
        panel = side_panel(browser)
        # the time overlays, as the timing file has them
        assert float(panel["time per step (µs)"]) == pytest.approx(timed["total_us"])
        assert float(panel["share of step (%)"]) == pytest.approx(100 * timed["share"])
        assert panel["op name"] == KERNEL
        assert panel["kind"] == "__ynn_fusion"
        assert (panel["bytes_read"], panel["bytes_written"], panel["flops"]) == (
            str(kernel.bytes_read), str(kernel.bytes_written), str(kernel.flops))
        assert panel["source"] == "xlainspect/programs/mnist_cnn.py:45"
        time.sleep(1)  # let the located node's neighbourhood finish drawing
        shot = tmp_path / "shot.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        if os.environ.get("XLAINSPECT_EXPLORER_SCREENSHOT"):
            browser.save_screenshot(os.environ["XLAINSPECT_EXPLORER_SCREENSHOT"])
        urls = requested_urls(browser)
        web = [url for url in urls if url.split(":", 1)[0] in ("http", "https", "ws", "wss")]
        assert web and all(url.startswith(f"http://127.0.0.1:{server.port}/") for url in web), \
            [url for url in web if not url.startswith("http://127.0.0.1")]
        assert any("load_graphs_json" in url for url in web) and any("load_node_data" in url for url in web)
        severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
    print(f"page ready in {seconds:.1f} s")


def selected(driver, pane: int) -> tuple[str, str] | None:
    """The op name and node id a pane's side panel shows, or None when it shows no node."""
    rows = driver.execute_script(f"""const panels = [...document.querySelectorAll('info-panel, .info-panel')];
                                   return panels.length > {pane} ? panels[{pane}].innerText : '';""")
    lines = [line.strip() for line in rows.splitlines() if line.strip()]
    if "NODE INFO" not in lines:
        return None
    info = dict(itertools.pairwise(lines))
    return info.get("op name"), info.get("id")


def click_node(driver, name: str, pane: int) -> None:
    """Selects a node the way a user does, with a click on it in the graph, which is what starts Model Explorer's
    synced navigation (selecting from the search results does not). The node is found by name in the pane's search
    box and located (a plain click on the result centres it in the pane without selecting it), then the pane is
    clicked at its centre; again if the click missed (the page may still be animating on a loaded machine)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    panes = driver.find_elements(By.CSS_SELECTOR, ".pane-container")
    box = panes[pane].find_element(By.CSS_SELECTOR, "input[placeholder^='Search nodes']")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(f"^{re.escape(name)}$")
    # A fusion's name gives two results: its layer and, inside it, its kernel node (the last one).
    rows = wait_for(driver, f"""const pane = document.querySelectorAll('.pane-container')[{pane}];
                                const rows = pane.querySelectorAll('.search-results-container .node-label');
                                const hits = [...rows].filter(e => e.textContent.trim() == {json.dumps(name)});
                                return hits.length ? hits : null""", 30)
    rows[-1].click()
    canvas = driver.find_elements(By.CSS_SELECTOR, "webgl-renderer")[pane]
    for _ in range(4):
        time.sleep(1.5)  # the locate animation
        ActionChains(driver).move_to_element_with_offset(canvas, 20, 20).pause(0.3).move_to_element(canvas) \
            .pause(0.5).click().perform()
        shown = wait_selected(driver, pane, name, 15)
        if shown is not None and shown[0] == name:
            return
    raise AssertionError(f"could not select {name} in pane {pane} with a click; it shows {selected(driver, pane)}")


def wait_selected(driver, pane: int, name: str, timeout: float = 30) -> tuple[str, str] | None:
    """Waits until a pane selects ``name``; returns what it shows then, or at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = selected(driver, pane)
        if shown is not None and shown[0] == name:
            return shown
        time.sleep(0.2)
    return selected(driver, pane)


def watch_no_mapped_node(driver) -> None:
    """Counts, in ``window.xiNoMappedNode``, the times Model Explorer shows its "No mapped node found" message (for
    3 s, by a class: a poll could miss it)."""
    driver.execute_script("""window.xiNoMappedNode = 0;
        const message = document.querySelector('.no-mapped-node-message');
        new MutationObserver(() => { if (message.classList.contains('show')) window.xiNoMappedNode += 1; })
            .observe(message, {attributes: true, attributeFilter: ['class']});""")


# Four clicks in software-rendered WebGL take 20 to 45 s each: 160 to 270 s measured, once past the suite's 300 s.
@pytest.mark.timeout(600)
def test_two_modules_side_by_side_select_each_kernels_diff_partner(browser, tmp_path):
    """``view A B``: a click on a kernel in one pane selects, in the other, the kernel the diff pairs it with, worked
    out here from the library's diff, not read from the page: a pair whose names differ, where the other side has a
    kernel of the A kernel's name that the diff pairs elsewhere (a sync by names would pick that one). A kernel
    only A has selects nothing in B, even where B has a kernel of its name: Model Explorer says no mapped node was
    found. Then the ``--mapping`` file, uploaded as a user does, links what node ids cannot: a B kernel that is the
    second partner of an A kernel selects that A kernel."""
    modules = [read_hlo(path / "after_optimizations.txt")[0] for path in (JAX_DUMP, TF_DUMP)]
    diff = diff_census(census(modules[0]), census(modules[1]))
    partners: dict[str, list[str]] = {}
    for pair in diff.matched:
        partners.setdefault(pair.a.name, []).append(pair.b.name)
    once = {a: bs[0] for a, bs in partners.items() if len(bs) == 1}
    names_b = {instruction.name for instruction in modules[1].instructions()}
    crossed = next(a for a, b in once.items() if a != b and a in names_b)
    # an A-only kernel, one whose name B has too where there is one (a sync by names would select that)
    lonely = sorted((k.name not in names_b, k.name) for k in diff.only_a)[0][1]
    view = build_view(str(JAX_DUMP), str(TF_DUMP))
    ids_b = {name: node_id for ids in view.models[1].graphs.node_ids.values() for name, node_id in ids.items()}
    # an A kernel paired with two B kernels, and the one of those whose node id is not the A kernel's
    split, second = next((a, b) for a, bs in partners.items() if len(bs) > 1 for b in bs if ids_b[b] != a)
    mapping = write_mapping(view.mapping, tmp_path / "mapping.json")
    with serve(view) as server:
        open_view(browser, server.url)
        # the sync button shows once both panes are laid out
        headers = wait_for(browser, """const t = document.body.innerText;
                                      return t.includes('Sync') ? t : null""")
        assert f"jax | {modules[0].entry_name}" in headers
        assert f"tf | {modules[1].entry_name}" in headers.replace("\n", " ")
        watch_no_mapped_node(browser)
        click_node(browser, crossed, 0)
        assert wait_selected(browser, 1, once[crossed]) == (once[crossed], crossed)
        if os.environ.get("XLAINSPECT_EXPLORER_SYNC_SCREENSHOT"):
            browser.save_screenshot(os.environ["XLAINSPECT_EXPLORER_SYNC_SCREENSHOT"])
        assert browser.execute_script("return window.xiNoMappedNode") == 0
        click_node(browser, lonely, 0)
        wait_for(browser, "return window.xiNoMappedNode > 0", 30)
        assert selected(browser, 1) == (once[crossed], crossed)  # B kept its selection
        upload_mapping(browser, mapping)
        click_node(browser, second, 1)
        assert wait_selected(browser, 0, split) == (split, split)


def upload_mapping(driver, path: Path) -> None:
    """Sync > "Upload mapping from computer", and the file given to its file input; then the menu closed."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "sync-navigation-button .bubble-click").click()
    wait_for(driver, """return [...document.querySelectorAll('label.sync-mode-radio-button')]
                            .find(l => l.innerText.includes('Upload mapping'))""", 30).click()
    driver.find_element(By.CSS_SELECTOR, "input.upload-mapping-input").send_keys(str(path))
    wait_for(driver, "return document.querySelector('.cdk-overlay-container').innerText"
                     f".includes({json.dumps(path.name)})", 30)  # the menu names the file it read
    driver.find_element(By.CSS_SELECTOR, ".cdk-overlay-backdrop").click()
