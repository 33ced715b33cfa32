# SPDX-License-Identifier: Apache-2.0
"""The viewer's details in a real headless Chromium, on data the test controls exactly.

A hub runs as `twinhub serve` on a fresh database and a free port; six stations of three cities
are created over HTTP, one with a dense day. The browser colours the markers by a quantity,
filters by city, draws the dense day as lowest/highest per period (one $apply), zooms into it
point by point, sees an Observation posted meanwhile arrive with its exact value and unit without
a reload, switches to German, and sees a station created after the page loaded appear.
test_browser_demo.py drives the same page against a running `twinhub demo` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chromium import marker_ids, patient_wait, requires_chromium, save_screenshot
from hub_process import request
from viewer_data import STATIONS, history, thing_body

pytestmark = requires_chromium


def populate(base: str) -> dict[str, int]:
    """The six stations of viewer_data; the first one with a dense day (a value every 20 s)."""
    sta = f"{base}/v1.1"
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    for number, station in enumerate(STATIONS):
        city, name, domain, lon, lat, quantity, symbol, unit, typical = station
        thing = request(
            "POST", f"{sta}/Things", thing_body(city, name, domain, lon, lat, quantity, symbol, unit)
        )
        stream = request("GET", f"{sta}/Things({thing['@iot.id']})/Datastreams")["value"][0]
        ids[name] = thing["@iot.id"]
        rows = (
            history(typical, hours=30, step_seconds=20, now=now) if number == 0 else history(typical, now=now)
        )
        request(
            "POST",
            f"{sta}/CreateObservations",
            [
                {
                    "Datastream": {"@iot.id": stream["@iot.id"]},
                    "components": ["phenomenonTime", "result"],
                    "dataArray": [[row["phenomenonTime"], row["result"]] for row in rows],
                }
            ],
        )
        ids[f"{name} stream"] = stream["@iot.id"]
    return ids


def test_the_viewer_shows_three_cities_a_chart_and_live_values(
    hub: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    ids = populate(hub)
    wait = patient_wait(browser)
    browser.get(f"{hub}/?lang=en")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == len(STATIONS))
    cities = [o.text for o in Select(browser.find_element(By.ID, "city")).options]
    assert cities == ["All cities", "Hamburg", "Leipzig", "München"]

    # Colour by air temperature: only the three climate stations stay on the map.
    Select(browser.find_element(By.ID, "quantity")).select_by_visible_text("Air temperature")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == 3)
    assert "Colour: latest Air temperature" in browser.find_element(By.ID, "legend").text

    # Hamburg's station has a dense day: the chart shows lowest/highest per period, via one $apply.
    Select(browser.find_element(By.ID, "city")).select_by_visible_text("Hamburg")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == 1)
    browser.find_element(By.CSS_SELECTOR, f'path.thing-marker[data-thing="{ids["Rathausmarkt"]}"]').click()
    wait.until(lambda d: "Rathausmarkt (Hamburg)" in d.find_element(By.ID, "details").text)
    wait.until(lambda d: "lowest and highest value per" in d.find_element(By.ID, "chart-note").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")
    # Five-minute buckets from one $apply; the $batch fallback would draw at most 150 periods.
    assert int(browser.find_element(By.ID, "chart").get_attribute("data-points")) > 150

    # Zoom: dragging across the last sixth of the day loads that range again, now point by point.
    plot = browser.find_element(By.CSS_SELECTOR, "#chart .u-over")
    width = plot.size["width"]
    ActionChains(browser).move_to_element_with_offset(plot, width // 3, 0).click_and_hold().move_by_offset(
        width // 6, 0
    ).release().perform()
    wait.until(lambda d: " measurements. Drag" in d.find_element(By.ID, "chart-note").text)
    assert browser.find_element(By.XPATH, "//button[text()='Back to the whole period']")
    assert 100 < int(browser.find_element(By.ID, "chart").get_attribute("data-points")) < 3000

    # Leipzig's station has a measurement every 15 minutes: drawn one by one.
    Select(browser.find_element(By.ID, "city")).select_by_visible_text("Leipzig")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == 1)
    browser.find_element(By.CSS_SELECTOR, f'path.thing-marker[data-thing="{ids["Augustusplatz"]}"]').click()
    wait.until(lambda d: "Augustusplatz (Leipzig)" in d.find_element(By.ID, "details").text)
    wait.until(lambda d: d.find_element(By.ID, "chart-note").text.startswith("24 measurements"))
    wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "open")

    # A new Observation over HTTP appears without a reload: latest value, chart, live counter.
    stream = ids["Augustusplatz stream"]
    request("POST", f"{hub}/v1.1/Datastreams({stream})/Observations", {"result": 42.42})
    row = f'tr[data-datastream="{stream}"] td.value'
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, row).text == "42.42 °C")
    wait.until(lambda d: d.find_element(By.ID, "chart-note").text.startswith("25 measurements"))
    assert browser.find_element(By.ID, "live").text == "live: 1 new"

    browser.find_element(By.ID, "language").click()
    wait.until(lambda d: d.find_element(By.ID, "live").text == "live: 1 neu")
    assert Select(browser.find_element(By.ID, "city")).options[0].text == "Alle Städte"
    assert browser.find_element(By.CSS_SELECTOR, row).text == "42,42 °C"
    browser.find_element(By.ID, "language").click()

    Select(browser.find_element(By.ID, "city")).select_by_visible_text("All cities")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "path.thing-marker")) == 3)

    save_screenshot(browser, tmp_path / "viewer.png")

    # A station that starts sending after the page loaded appears on the map (the page reloads the Things).
    body = thing_body("Leipzig", "Lindenau", "climate", 12.3400, 51.3400, "Air temperature", "Cel", "°C")
    new = request("POST", f"{hub}/v1.1/Things", body)
    new_stream = request("GET", f"{hub}/v1.1/Things({new['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    request("POST", f"{hub}/v1.1/Datastreams({new_stream})/Observations", {"result": 8.5})
    wait.until(lambda d: new["@iot.id"] in marker_ids(d))
    assert len(marker_ids(browser)) == 4
