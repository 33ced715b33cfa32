# SPDX-License-Identifier: Apache-2.0
"""The viewer against a running `twinhub demo`, in a real headless Chromium (issue 6's browser test).

`twinhub demo` starts as a user starts it (its own PostgreSQL and broker, free ports, a data folder
of its own), with nine devices (every domain in every city), a short backfill and a live rate. The
browser waits for the markers of Hamburg, Leipzig and München, picks Leipzig's climate sensor
through the filters and clicks it, sees its chart drawn from the backfilled history, and sees the
simulator's next messages arrive without a reload: the chart gains measurements and the live
counter rises. A screenshot goes to the test's tmp directory (and to the file named by
VIEWER_SCREENSHOT: `VIEWER_SCREENSHOT=docs/viewer.png` renews the one in the docs). Ctrl-C then
stops the demo with exit code 0.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chromium import (
    click,
    ensure_viewer_built,
    free_port,
    marker_ids,
    markers_in_view,
    patient_wait,
    requires_chromium,
    save_screenshot,
    set_viewport,
)
from demo_process import get_json, own_data_dir, run_then_stop, start_demo, wait_until_backfilled

pytestmark = requires_chromium

CITIES = ["Hamburg", "Leipzig", "München"]
DEVICES = 9  # one of each domain in each city
# Three hours of history; three live messages a second over the six devices that speak
# continuously (the traffic counters report per completed hour), so each every two seconds.
DEMO_OPTIONS = ("--devices", str(DEVICES), "--backfill-hours", "3", "--rate", "3")
MEASUREMENTS = re.compile(r"^(\d+) measurements")
LIVE_COUNT = re.compile(r"^live: (\d+) new$")
LAYOUT = """
const chart = document.getElementById("chart").getBoundingClientRect();
const root = document.documentElement;
return {chartTop: chart.top, chartBottom: chart.bottom, height: innerHeight,
        scrollWidth: root.scrollWidth, clientWidth: root.clientWidth};
"""


def things_by_city(base: str) -> dict[str, dict[str, Any]]:
    """The demo's Things over the API: city -> domain -> Thing (with its properties)."""
    things = get_json(f"{base}/v1.1/Things?$select=id,name,properties&$top=100")["value"]
    found: dict[str, dict[str, Any]] = {}
    for thing in things:
        properties = thing["properties"]
        found.setdefault(properties["city"], {})[properties["domain"]] = thing
    return found


def number(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.match(text)
    return int(match.group(1)) if match else None


def test_the_viewer_shows_the_demo_cities_updating_live(browser: Any, tmp_path: Path) -> None:
    ensure_viewer_built()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with own_data_dir() as data_dir:
        demo = start_demo(data_dir, port, *DEMO_OPTIONS)

        def steps() -> None:
            wait_until_backfilled(data_dir, base, demo)
            watch_the_demo(browser, base, tmp_path)

        run_then_stop(demo, steps)


def watch_the_demo(browser: Any, base: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    cities = things_by_city(base)
    assert sorted(cities) == CITIES
    everything = {thing["@iot.id"] for domains in cities.values() for thing in domains.values()}
    assert len(everything) == DEVICES
    chosen = cities["Leipzig"]["climate"]
    label = chosen["properties"]["label_en"]  # the English page names Things by their label_en

    wait = patient_wait(browser)
    browser.get(f"{base}/?lang=en")
    set_viewport(browser, 1400, 900)
    wait.until(lambda d: marker_ids(d) == everything)
    wait.until(markers_in_view)
    labels = sorted(label.text for label in browser.find_elements(By.CSS_SELECTOR, ".city-label"))
    assert labels == CITIES  # one label per city, over its markers
    assert [o.text for o in Select(browser.find_element(By.ID, "city")).options] == ["All cities", *CITIES]

    # Leipzig's climate sensor alone on the map (at the whole country's zoom a city's markers
    # overlap), then a real click on it.
    Select(browser.find_element(By.ID, "city")).select_by_value("Leipzig")
    Select(browser.find_element(By.ID, "domain")).select_by_value("climate")
    wait.until(lambda d: marker_ids(d) == {chosen["@iot.id"]})
    click(wait, By.CSS_SELECTOR, f'path.thing-marker[data-thing="{chosen["@iot.id"]}"]')
    wait.until(lambda d: label in d.find_element(By.ID, "details").text)
    # Its air temperature over the last six hours: the three backfilled ones fill half the chart.
    # (The panel is drawn anew on live messages: click() finds the button again if need be.)
    click(wait, By.XPATH, "//tr[@data-datastream]//button[text()='Air temperature']")
    wait.until(lambda d: d.find_element(By.ID, "chart-title").text.startswith("Air temperature (°C)"))
    click(wait, By.XPATH, "//div[@id='ranges']/button[text()='6 hours']")
    wait.until(lambda d: number(MEASUREMENTS, d.find_element(By.ID, "chart-note").text))
    assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")
    assert int(browser.find_element(By.ID, "chart").get_attribute("data-points")) >= 3 * 6  # every 10 min

    # Back to all three cities; the chosen Thing and its chart stay.
    Select(browser.find_element(By.ID, "domain")).select_by_value("*")
    Select(browser.find_element(By.ID, "city")).select_by_value("*")
    wait.until(lambda d: marker_ids(d) == everything)
    wait.until(markers_in_view)  # the view fits all three cities again
    assert label in browser.find_element(By.ID, "details").text
    wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "open")

    # The simulator keeps sending: new measurements reach the open chart and the counter, no reload
    # (a reload would drop this mark).
    browser.execute_script("window.stillTheSamePage = true")
    drawn = number(MEASUREMENTS, browser.find_element(By.ID, "chart-note").text)
    counted = number(LIVE_COUNT, browser.find_element(By.ID, "live").text) or 0
    assert drawn is not None
    wait.until(lambda d: (number(MEASUREMENTS, d.find_element(By.ID, "chart-note").text) or 0) > drawn)
    wait.until(lambda d: (number(LIVE_COUNT, d.find_element(By.ID, "live").text) or 0) > counted)
    assert label in browser.find_element(By.ID, "details").text
    assert browser.execute_script("return window.stillTheSamePage") is True

    # At 1400x900 the chart is in view without scrolling, and no horizontal scrollbar.
    layout = browser.execute_script(LAYOUT)
    assert layout["chartTop"] >= 0, layout
    assert layout["chartBottom"] <= layout["height"], layout
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    # Rows are titled by their quantity, not by the device id in the Datastream's name.
    rows = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#streams tr[data-datastream] button")]
    assert rows
    assert not [row for row in rows if chosen["name"] in row], rows

    save_screenshot(browser, tmp_path / "viewer-demo.png", also_to_env=True)
