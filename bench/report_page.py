"""How big the clickable report of a 100,000-instruction module is, and how long Chromium takes to open and use it.

The report's graphs are cut as ``render`` cuts them, but its tables and its per-kernel data are whole, so their size
grows with the kernels. This builds the report of the benchmark module (``big_module.py``, as ``render_speed.py``'s
``module100k`` case), with the module on both sides (every kernel matched: the most data a page of it carries) or on
one (``--one-side``), and opens it in Debian's Chromium through chromedriver, as the browser tests do. It prints the
page's size and what it is made of, the build time, and in the browser: the time to the load event and to the first
paint, the time the page's script took at load (in a copy that marks its start and end), and the time one selection, one numeric sort of the largest table and one filter took.

Usage::

    python bench/report_page.py [--module FILE.hlo] [--one-side] [--keep OUT.html]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # Lets a plain checkout run the script.
    sys.path.insert(0, str(REPO_ROOT))

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1400,1000")


def module_file(path: str | None) -> str:
    if path:
        return path
    from bench.render_speed import case_text

    out = Path(tempfile.gettempdir()) / "xlainspect-bench" / "report-module100k.hlo"
    if not out.is_file():
        out.write_text(case_text("module100k", 100_000), encoding="utf-8")
    return str(out)


def page_parts(page: str) -> dict[str, int]:
    """Bytes of the page by part: the data block, the SVGs, the script, the rest (tables, text, CSS)."""
    data = sum(len(m.encode()) for m in re.findall(r'<script type="application/json".*?</script>', page, re.DOTALL))
    svg = sum(len(m.encode()) for m in re.findall(r"<svg.*?</svg>", page, re.DOTALL))
    script = sum(len(m.encode()) for m in re.findall(r"<script>.*?</script>", page, re.DOTALL))
    total = len(page.encode())
    return {"total": total, "data": data, "svgs": svg, "script": script, "tables and text": total - data - svg - script}


def in_chromium(page: Path) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="xlainspect-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
        try:
            start = time.perf_counter()
            driver.get(page.as_uri())  # returns after the load event
            wall = time.perf_counter() - start
            timing = driver.execute_script("""const n = performance.getEntriesByType('navigation')[0];
                const paint = performance.getEntriesByName('first-contentful-paint')[0];
                const script = performance.measure('xi', 'xi-start', 'xi-end');
                return {load: n.loadEventEnd, paint: paint ? paint.startTime : -1, script: script.duration};""")
            used = driver.execute_script("""
                const t0 = performance.now();
                const row = [...document.querySelectorAll('table.xi-kernels tr[data-a]')].pop();
                row.click();
                const t1 = performance.now();
                const tables = [...document.querySelectorAll('table.xi-kernels')];
                const big = tables.reduce((x, y) => x.tBodies[0].rows.length >= y.tBodies[0].rows.length ? x : y);
                const numeric = big.querySelector('th[data-num]') || big.querySelector('th');
                numeric.click();
                const t2 = performance.now();
                const box = big.previousElementSibling;
                box.value = 'fusion'; box.dispatchEvent(new Event('input'));
                const t3 = performance.now();
                return {select: t1 - t0, sort: t2 - t1, filter: t3 - t2, rows: big.tBodies[0].rows.length,
                        errors: 0};""")
            logs = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        finally:
            driver.quit()
    return {"wall_s": wall, "load_ms": timing["load"], "first_paint_ms": timing["paint"],
            "script_ms": timing["script"], "select_ms": used["select"],
            "sort_ms": used["sort"], "filter_ms": used["filter"], "largest_table_rows": used["rows"],
            "console_errors": len(logs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", help="an HLO file (default: the 100,000-instruction benchmark module)")
    parser.add_argument("--one-side", action="store_true", help="the module alone, not against itself")
    parser.add_argument("--keep", help="also write the page here")
    args = parser.parse_args(argv)

    from xlainspect import read_hlo
    from xlainspect.analysis.census import census
    from xlainspect.output.report import build_report

    path = module_file(args.module)
    module = read_hlo(path)[0]
    print(f"module: {path}: {module.instruction_count:,} instructions, {len(census(module).kernels):,} kernels")
    start = time.perf_counter()
    page = build_report(None, sides=[path] if args.one_side else [path, path])
    print(f"report built in {time.perf_counter() - start:.1f} s ({'one side' if args.one_side else 'against itself'})")
    parts = page_parts(page)
    print("page: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in parts.items()))
    with tempfile.TemporaryDirectory(prefix="xlainspect-report-") as folder:
        out = Path(args.keep) if args.keep else Path(folder) / "report.html"
        out.write_text(page, encoding="utf-8")
        # A copy whose script marks its start and end, to time it apart from parsing the page.
        probed = Path(folder) / "probed.html"
        probed.write_text(page.replace("<script>", "<script>performance.mark('xi-start');", 1)
                          .replace("})();\n</script>", "})();\nperformance.mark('xi-end');</script>", 1),
                          encoding="utf-8")
        figures = in_chromium(probed)
    print("chromium: " + ", ".join(f"{name} {value:.3g}" for name, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
