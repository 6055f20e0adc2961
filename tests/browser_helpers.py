"""Debian's Chromium under selenium, for the browser tests (the clickable report, Model Explorer's page).

Selenium is handed the paths of Debian's ``chromium`` and ``chromedriver`` (``make test-deps`` installs both), so its
driver manager never runs and nothing downloads a browser or a driver. Chromium starts headless with a fresh profile
and without the background services that would reach the network; the browser console and Chrome's performance log
(the DevTools network events) are kept, so tests can check that a page is silent and asked for nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic")


@contextmanager
def chromium(width: int, height: int, script_timeout_s: float | None = None) -> Iterator[object]:
    """A selenium driver of Debian's Chromium with a ``width`` x ``height`` window; skips when selenium or the driver
    is missing (CI installs both, so there it runs)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the [test] extra)")
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("chromedriver is not installed: sudo apt-get install chromium-driver (make test-deps does it)")
    with tempfile.TemporaryDirectory(prefix="xlainspect-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        if script_timeout_s is not None:
            driver.set_script_timeout(script_timeout_s)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver, script: str, timeout: float):
    """Polls a script until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {script}")
