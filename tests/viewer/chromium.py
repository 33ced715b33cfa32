# SPDX-License-Identifier: Apache-2.0
"""What the viewer's browser tests share: Debian's chromium driven by Selenium through chromedriver.

No browser is downloaded at test time: the tests skip (via `requires_chromium`) when the chromium
and chromium-driver packages are missing. The `browser` fixture lives in this folder's conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.http.viewer import VIEWER_DIR

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 60.0  # seconds a step may take on a busy machine before a test gives up
# Set to a file name (docs/viewer.png) to keep the screenshot of the demo's viewer there too.
SCREENSHOT_ENV = "VIEWER_SCREENSHOT"

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
    "--lang=en-US",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ensure_viewer_built() -> None:
    """The hub serves the built viewer; build it (npm) when this checkout has not yet."""
    if (VIEWER_DIR / "index.html").is_file():
        return
    if shutil.which("npm") is None:
        pytest.fail("the viewer is not built and npm is missing: install Node.js with npm, run make viewer")
    subprocess.run(["make", "viewer"], cwd=ROOT, check=True)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium under Selenium's control, quit on leaving."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console and CSP reports
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def patient_wait(driver: Any) -> Any:
    """A WebDriverWait of WAIT seconds that looks elements up again while the page re-renders
    its panels (on every live event) instead of failing on a replaced element."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )


def click(wait: Any, by: str, selector: str) -> None:
    """Click the element once it is there; found again if a re-render replaced it meanwhile."""
    wait.until(lambda d: d.find_element(by, selector).click() is None)


def marker_ids(driver: Any) -> set[int]:
    """The Thing ids of the markers on the map."""
    from selenium.webdriver.common.by import By

    found = set()
    for marker in driver.find_elements(By.CSS_SELECTOR, "path.thing-marker[data-thing]"):
        with contextlib.suppress(Exception):  # a marker removed meanwhile
            found.add(int(marker.get_attribute("data-thing")))
    return found


MARKERS_IN_VIEW = """
const box = document.getElementById("map").getBoundingClientRect();
const markers = [...document.querySelectorAll("path.thing-marker")];
return markers.length > 0 && markers.every((marker) => {
  const r = marker.getBoundingClientRect();
  return r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom;
});
"""


def markers_in_view(driver: Any) -> bool:
    """Whether there are markers and the map's view shows every one of them."""
    return bool(driver.execute_script(MARKERS_IN_VIEW))


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport (innerWidth x innerHeight) exactly this size."""
    extra_width, extra_height = driver.execute_script(
        "return [outerWidth - innerWidth, outerHeight - innerHeight]"
    )
    driver.set_window_size(width + extra_width, height + extra_height)
    size = driver.execute_script("return [innerWidth, innerHeight]")
    assert size == [width, height], f"the viewport is {size}, not {width}x{height}"


def console_messages(driver: Any) -> list[str]:
    """What the page wrote to the console (and the browser's CSP reports) since the last call."""
    return [str(entry["message"]) for entry in driver.get_log("browser")]


def save_screenshot(driver: Any, path: Path, *, also_to_env: bool = False) -> None:
    """A PNG of the page at `path`; copied to the file $VIEWER_SCREENSHOT names, when asked to."""
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    assert path.stat().st_size > 0
    target = os.environ.get(SCREENSHOT_ENV)
    if also_to_env and target:
        shutil.copyfile(path, target)
