"""Headless Chromium from Debian for the fans' pages, with evidence on failure.

The browser and its driver are Debian's ``chromium`` and ``chromium-driver``,
driven through a fixed chromedriver path, so Selenium never downloads one.
On a machine without them a browser test skips; with ``CI`` set it fails.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from system.embedded import EmbeddedState
from tests.web.pages import FanPages

logger = logging.getLogger(__name__)

CHROMIUM = Path(os.environ.get("BOXOFFICE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("BOXOFFICE_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS_DIR = Path(os.environ.get("BOXOFFICE_BROWSER_ARTIFACTS", "reports/browser"))
# Flags that keep Chromium from reaching any host but the ones a page names.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
)
PAGE_LOAD_TIMEOUT_SECONDS = 30


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    # Keep each phase's report on the test, so a fixture's teardown can tell
    # whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _require_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    message = (
        f"{' and '.join(missing)} not found: install Debian's chromium and "
        "chromium-driver (apt-get install chromium chromium-driver)."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Start a fresh headless Chromium; save a screenshot and its log on failure."""
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # A fresh profile per test: no stored identity, no cache.
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=str(CHROMEDRIVER),
        log_output=str(tmp_path / "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_SECONDS)
    try:
        yield driver
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            _save_evidence(driver, request.node.nodeid)
        driver.quit()


@pytest.fixture
def pages(browser: Any, stack: EmbeddedState) -> FanPages:
    """Open the fans' pages in ``browser``, served by the embedded stack."""
    # The ticketing service serves the pages, so the purchase URLs the windows
    # hand out share the queue page's origin and localStorage.
    return FanPages(browser, stack.ticketing_url)


def _save_evidence(driver: Any, nodeid: str) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = ARTIFACTS_DIR / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)
    lines = []
    try:
        for number, handle in enumerate(driver.window_handles, start=1):
            driver.switch_to.window(handle)
            lines.append(f"# tab {number}: {driver.current_url}")
            lines.extend(
                f"{entry['timestamp']} {entry['level']} {entry['message']}"
                for entry in driver.get_log("browser")
            )
            suffix = "" if number == 1 else f"-tab{number}"
            driver.save_screenshot(f"{stem}{suffix}.png")
    except Exception:  # the browser may be the thing that broke
        logger.exception("Could not read the browser's state for %s", nodeid)
    Path(f"{stem}.log").write_text("\n".join(lines) + "\n")
    logger.warning("Saved the screenshot and browser log as %s.{png,log}", stem)
