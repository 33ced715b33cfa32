# SPDX-License-Identifier: Apache-2.0
"""Data is text: markup in a Thing's name, a unit, an ObservedProperty and a string result is shown
as literal text and never runs, in a real headless Chromium (issue 14).

Every hostile string carries an `onerror` handler that would set `window.pwned` and write to the
console, and an element (`img`, `b`, `script`) that would appear in the page if it were parsed as
HTML. The page must show each string exactly as stored, create none of those elements, never set
the flag, and run under its Content-Security-Policy without a single violation report (which
proves the policy allows what Leaflet, uPlot and the viewer need).
"""

from __future__ import annotations

import urllib.request
from typing import Any

from chromium import WAIT, console_messages, patient_wait, requires_chromium
from hub_process import request

pytestmark = requires_chromium

NAME = "<img src=x onerror=\"window.pwned=1;console.error('pwned')\">Hafen"
UNIT = "<img src=y onerror=window.pwned=2>"
QUANTITY = "<b>Wind</b> speed"
RESULT = "<script>window.pwned=3</script><img src=z onerror=window.pwned=4>calm"
LIVE_RESULT = "<svg onload=window.pwned=5>gusty</svg>"
OM_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation"

# Elements that would exist only if a hostile string had been parsed as markup.
INJECTED = "img[src='x'], img[src='y'], img[src='z'], b, svg[onload], script:not([src])"


def hostile_thing() -> dict[str, Any]:
    return {
        "name": NAME,
        "description": "<i>d</i>",
        "properties": {"city": "<u>Kiel</u>", "domain": "climate"},
        "Locations": [
            {
                "name": NAME,
                "description": "pier",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [10.15, 54.32]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{QUANTITY} at {NAME}",
                "description": "wind",
                "unitOfMeasurement": {"name": UNIT, "symbol": UNIT, "definition": "x"},
                "observationType": OM_OBSERVATION,
                "Sensor": {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "m"},
                "ObservedProperty": {"name": QUANTITY, "description": "q", "definition": "urn:q"},
            }
        ],
    }


def test_markup_in_names_units_and_results_is_shown_as_text_and_never_runs(hub: str, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    sta = f"{hub}/v1.1"
    thing = request("POST", f"{sta}/Things", hostile_thing())
    stream = request("GET", f"{sta}/Things({thing['@iot.id']})/Datastreams")["value"][0]["@iot.id"]
    request("POST", f"{sta}/Datastreams({stream})/Observations", {"result": RESULT})

    with urllib.request.urlopen(f"{hub}/", timeout=WAIT) as page:
        policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy

    wait = patient_wait(browser)
    browser.get(f"{hub}/?lang=en")
    marker = f'path.thing-marker[data-thing="{thing["@iot.id"]}"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, marker))

    # The tooltip on hover and the city label: the literal text.
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, marker)).perform()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".leaflet-tooltip").text == NAME)
    assert browser.find_element(By.CSS_SELECTOR, ".city-label").text == "<u>Kiel</u>"
    assert [o.text for o in Select(browser.find_element(By.ID, "quantity")).options][1:] == [QUANTITY]

    # The details panel and the chart title.
    browser.find_element(By.CSS_SELECTOR, marker).click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#details h2").text == NAME)
    value = f'tr[data-datastream="{stream}"] td.value'
    assert browser.find_element(By.CSS_SELECTOR, value).text == f"{RESULT} {UNIT}"
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-datastream="{stream}"] button').text == QUANTITY
    wait.until(lambda d: d.find_element(By.ID, "chart-title").text == f"{QUANTITY} ({UNIT}) \u2013 {NAME}")

    # A string result arriving live goes through the same path.
    wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "open")
    request("POST", f"{sta}/Datastreams({stream})/Observations", {"result": LIVE_RESULT})
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, value).text == f"{LIVE_RESULT} {UNIT}")

    # Colouring by the quantity (a number now) writes its name and unit into the legend.
    request("POST", f"{sta}/Datastreams({stream})/Observations", {"result": 3.5})
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, value).text == f"3.5 {UNIT}")
    Select(browser.find_element(By.ID, "quantity")).select_by_visible_text(QUANTITY)
    wait.until(lambda d: f"Colour: latest {QUANTITY}" in d.find_element(By.ID, "legend").text)
    assert f"3.5 {UNIT}" in browser.find_element(By.ID, "legend").text

    assert browser.execute_script("return window.pwned") is None
    assert browser.execute_script(f'return document.querySelectorAll("{INJECTED}").length') == 0
    messages = console_messages(browser)
    assert not [m for m in messages if "pwned" in m], messages
    assert not [m for m in messages if "Content Security Policy" in m], messages


def test_inline_script_is_refused_by_the_viewer_policy(hub: str, browser: Any) -> None:
    """Even markup that reached the page could not run: the policy refuses inline handlers."""
    wait = patient_wait(browser)
    browser.get(f"{hub}/?lang=en")
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    browser.execute_script(
        'const probe = document.createElement("div");'
        'probe.innerHTML = \'<img src="data:," onerror="window.pwned=6" onload="window.pwned=7">\';'
        "document.body.append(probe);"
    )
    wait.until(lambda d: any("Content Security Policy" in m for m in console_messages(d)))
    assert browser.execute_script("return window.pwned") is None
