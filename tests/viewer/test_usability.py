# SPDX-License-Identifier: Apache-2.0
"""What a person sees in the viewer, in a real headless Chromium at 1400x900 (issue 14).

A traffic counter with three Datastreams of one quantity (cars in total, to the left, to the
right) and English and German labels, beside a climate station. The test hovers a marker while
live values redraw the map (the tooltip stays, its text follows), clicks it (no browser focus box),
reads the rows (titled by the quantity and told apart by direction) and the label in each
language, and checks that the chart is in view with no horizontal scrollbar. Screenshots go to
the test's tmp directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chromium import patient_wait, requires_chromium, save_screenshot, set_viewport
from hub_process import request
from viewer_data import history, thing_body

pytestmark = requires_chromium

CARS = "{cars}/h"
COUNTER = {
    "name": "telraam-9000123",
    "description": "traffic counter",
    "properties": {
        "city": "Leipzig",
        "domain": "traffic",
        "label_de": "Verkehrszählung Südvorstadt",
        "label_en": "Traffic count Südvorstadt",
    },
    "Locations": [
        {
            "name": "Karl-Liebknecht-Str.",
            "description": "counter",
            "encodingType": "application/geo+json",
            "location": {"type": "Point", "coordinates": [12.3747, 51.3260]},
        }
    ],
    "Datastreams": [
        {
            "name": f"telraam-9000123 Cars{suffix}",
            "description": "cars per hour",
            "unitOfMeasurement": {"name": "cars per hour", "symbol": CARS, "definition": "ucum"},
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "properties": {"quantity": "car_count", "stream": stream},
            "Sensor": {"name": "Telraam", "description": "-", "encodingType": "text/html", "metadata": "-"},
            "ObservedProperty": {"name": "Cars", "description": "Cars counted", "definition": "urn:cars"},
        }
        for suffix, stream in (("", "car"), (" (car_lft)", "car_lft"), (" (car_rgt)", "car_rgt"))
    ],
}

# Where a clicked marker would show the browser's focus box: its outline, if any is drawn.
FOCUS_OUTLINE = """
const focused = document.activeElement;
const style = getComputedStyle(focused);
return [focused.tagName, style.outlineStyle, style.outlineWidth];
"""

LAYOUT = """
const chart = document.getElementById("chart").getBoundingClientRect();
const root = document.documentElement;
return {
  chartTop: chart.top, chartBottom: chart.bottom, height: innerHeight,
  scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
  bodyScrollWidth: document.body.scrollWidth,
};
"""


def populate(base: str) -> tuple[int, list[int]]:
    """The traffic counter (its id and Datastream ids: total, left, right) and a climate station."""
    sta = f"{base}/v1.1"
    counter = request("POST", f"{sta}/Things", COUNTER)
    streams = request("GET", f"{sta}/Things({counter['@iot.id']})/Datastreams?$orderby=id")["value"]
    ids = [s["@iot.id"] for s in streams]
    for stream, share in zip(ids, (1.0, 0.45, 0.55), strict=True):
        rows = history(400 * share)
        body = {"Datastream": {"@iot.id": stream}, "components": ["phenomenonTime", "result"]}
        body["dataArray"] = [[row["phenomenonTime"], row["result"]] for row in rows]
        request("POST", f"{sta}/CreateObservations", [body])
    station = thing_body(
        "Leipzig", "Augustusplatz", "climate", 12.3813, 51.3397, "Air temperature", "Cel", "°C"
    )
    request("POST", f"{sta}/Things", station)
    return counter["@iot.id"], ids


def test_tooltips_rows_labels_focus_and_layout(hub: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    counter, (total, left, right) = populate(hub)
    wait = patient_wait(browser)
    browser.get(f"{hub}/?lang=en")
    set_viewport(browser, 1400, 900)
    marker = f'path.thing-marker[data-thing="{counter}"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, marker))
    Select(browser.find_element(By.ID, "quantity")).select_by_visible_text("Cars")  # values in tooltips
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == 1)
    wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "open")

    # Hover: the tooltip shows the English label; live values redraw the map several times while
    # it is open, and it stays the same element, open, with the newest value.
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, marker)).perform()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".leaflet-tooltip").text.startswith("Traffic count"))
    browser.execute_script('document.querySelector(".leaflet-tooltip").dataset.first = "yes"')
    for value in (501, 502, 503, 504):
        request("POST", f"{hub}/v1.1/Datastreams({total})/Observations", {"result": value})
        time.sleep(0.4)  # longer than the viewer's 300 ms redraw interval
        tips = browser.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")
        assert len(tips) == 1, "the tooltip closed during a live redraw"
        assert tips[0].get_attribute("data-first") == "yes", "the tooltip was made anew"
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".leaflet-tooltip").text.endswith("504 cars/h"))
    assert (
        browser.find_element(By.CSS_SELECTOR, ".leaflet-tooltip").text
        == "Traffic count Südvorstadt: 504 cars/h"
    )
    save_screenshot(browser, tmp_path / "tooltip.png")

    # Click: the panel, no focus box around the marker (a ring only for keyboard focus).
    browser.find_element(By.CSS_SELECTOR, marker).click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#details h2").text == "Traffic count Südvorstadt")
    tag, outline, width = browser.execute_script(FOCUS_OUTLINE)
    assert (tag, outline) == ("path", "none"), (tag, outline, width)  # Chrome focuses the clicked path

    # Rows: the quantity, told apart by direction; the raw Datastream name only as a tooltip.
    titles = {
        stream: browser.find_element(By.CSS_SELECTOR, f'tr[data-datastream="{stream}"] button').text
        for stream in (total, left, right)
    }
    assert titles == {total: "Cars (total)", left: "Cars (left)", right: "Cars (right)"}
    assert "telraam-9000123" not in browser.find_element(By.ID, "streams").text
    wait.until(lambda d: d.find_element(By.ID, "chart-title").text.startswith("Cars (total) (cars/h)"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart canvas"))

    # At 1400x900 the chart is in view without scrolling, and nothing is wider than the window.
    layout = browser.execute_script(LAYOUT)
    assert layout["chartTop"] >= 0, layout
    assert layout["chartBottom"] <= layout["height"], layout
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    save_screenshot(browser, tmp_path / "viewer-1400x900.png")

    # German: the German label and direction words.
    browser.find_element(By.ID, "language").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#details h2").text == "Verkehrszählung Südvorstadt")
    button = browser.find_element(By.CSS_SELECTOR, f'tr[data-datastream="{left}"] button')
    assert button.text == "Cars (links)"
