# SPDX-License-Identifier: Apache-2.0
"""The value_template evaluator of the Home Assistant adapter: supported forms, Jinja's
precedence, and everything else refused by name (never Jinja, never eval)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.templates import MISSING, TemplateError, compile_template, evaluate, parse_json

STATE = {"temperature": 21.456, "power": "18234", "a": {"b": [5, 6]}, "PM2.5": 7.5, "none": None}


def run(template: str, state: Any = STATE, text: str | None = None) -> Any:
    body = json.dumps(state) if text is None else text
    return evaluate(compile_template(template), body, parse_json(body))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ value_json.temperature }}", 21.456),
        ("{{value_json['PM2.5']}}", 7.5),
        ('{{ value_json["temperature"] }}', 21.456),
        ("{{ value_json.a.b[1] }}", 6),
        ("{{ value_json.temperature | round(1) }}", 21.5),
        ("{{ value_json.temperature | round }}", 21.0),
        ("{{ value_json.temperature | int }}", 21),
        ("{{ value_json.power | float }}", 18234.0),
        ("{{ value_json.power | float / 10 }}", 1823.4),
        ("{{ value_json.power | float * 100 }}", 1823400.0),
        ("{{ (value_json.power | float(0)) * 0.001 }}", 18.234),
        ("{{ value_json.missing | float(0) }}", 0.0),
        ("{{ value_json.power | float / 1000 | round(2) }}", 18.234),  # Jinja: 1000 | round(2) first
        ("{{ (value_json.power | float / 1000) | round(2) }}", 18.23),
        ("{{ -value_json.temperature | abs }}", -21.456),
        ("{{ value_json.temperature - 1 + 2 * 3 }}", 26.456),
        ("{{ value_json.temperature | is_defined }}", 21.456),
        ("{{ value_json.none }}", None),
    ],
)
def test_supported_forms(template: str, expected: Any) -> None:
    assert run(template) == pytest.approx(expected) if expected is not None else run(template) is None


def test_value_is_the_raw_payload() -> None:
    assert run("{{ value }}", text="21.5") == "21.5"
    assert run("{{ value | float }}", text="21.5") == 21.5
    assert run("{{ value | int }}", text="12.7") == 12


def test_a_missing_key_is_missing_not_an_error() -> None:
    assert run("{{ value_json.nothing }}") is MISSING


@pytest.mark.parametrize(
    "template",
    [
        "{{ states('sensor.x') }}",
        "{{ value_json.x | lower }}",
        "{% if value_json.x %}1{% endif %}",
        "{{ value_json.x }} and {{ value_json.y }}",
        "{{ value_json.__class__ }}.",
        "{{ value_json[x] }}",
        "{{ value_json.x | round(n) }}",
        "{{ 1 + }}",
        "{{ value_json. }}",
        "value_json.x",
        "{{ value_json.x ** 2 }}",
        "{{ __import__('os') }}",
    ],
)
def test_everything_else_is_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(template)


@pytest.mark.parametrize(
    ("template", "state"),
    [
        ("{{ value_json.temperature / 0 }}", STATE),
        ("{{ value_json.power * 2 }}", STATE),  # text needs | float first, as in Jinja
        ("{{ value_json.power | int + value_json.a }}", STATE),
        ("{{ value_json.temperature | float }}", {"temperature": "n/a"}),
        ("{{ value_json.x }}", None),
    ],
)
def test_evaluation_errors_are_template_errors(template: str, state: Any) -> None:
    text = "not json" if state is None else json.dumps(state)
    with pytest.raises(TemplateError):
        run(template, text=text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_templates_compile_or_are_refused(text: str) -> None:
    template = "{{ " + text + " }}"
    try:
        node = compile_template(template)
    except TemplateError:
        return
    with contextlib.suppress(TemplateError):
        evaluate(node, "1", parse_json('{"a": 1}'))
