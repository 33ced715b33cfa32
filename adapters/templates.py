# SPDX-License-Identifier: Apache-2.0
"""A small, safe evaluator for the `value_template` forms MQTT discovery configs use in the field.

Never Jinja, never eval: a template is tokenised and parsed by the grammar below into a tree of
tuples (cached per template text), then evaluated against the state payload. Anything outside it
is a TemplateError naming the template, which the Home Assistant adapter turns into a rejected
config. Jinja's precedence is kept: filters bind tighter than arithmetic, so
`value_json.p | float / 10` is `(value_json.p | float) / 10`.

    template := "{{" expr "}}"
    expr     := term (("+" | "-") term)*
    term     := unary (("*" | "/" | "//" | "%") unary)*
    unary    := "-" unary | filtered
    filtered := primary ("|" name ["(" number ("," number)* ")"])*
    primary  := number | "value" | "value_json" (("." name) | "[" (string | integer) "]")* | "(" expr ")"
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>//|[-+*/%|().,\[\]]))"
)
MISSING = object()  # a value_json path the state does not have (Jinja's Undefined)


class TemplateError(ValueError):
    """A template outside the supported forms, or one that cannot be evaluated on this state."""


Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise TemplateError(f"unsupported syntax at {text[position : position + 12]!r}")
        found.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (text is not None and token[1] != text):
            raise TemplateError(f"expected {text or 'more'} at {token[1] or 'the end'!r}")
        self.at += 1
        return token

    def expr(self) -> Node:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            node = ("op", self.take()[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek()[1] in ("*", "/", "//", "%"):
            node = ("op", self.take()[1], node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek()[1] == "-":
            self.take()
            return ("neg", self.unary())
        node = self.primary()
        while self.peek()[1] == "|":
            self.take()
            kind, name = self.take()
            if kind != "name" or name not in FILTERS:
                raise TemplateError(f"unsupported filter {name!r}")
            node = ("filter", name, node, tuple(self.arguments()))
        return node

    def arguments(self) -> list[float]:
        if self.peek()[1] != "(":
            return []
        self.take("(")
        values: list[float] = []
        while self.peek()[1] != ")":
            sign = -1 if self.peek()[1] == "-" and self.take() else 1
            kind, text = self.take()
            if kind != "number":
                raise TemplateError(f"filter arguments must be numbers, not {text!r}")
            values.append(sign * float(text))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return values

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return ("number", float(text))
        if text == "(":
            node = self.expr()
            self.take(")")
            return node
        if text == "value":
            return ("value",)
        if text != "value_json":
            raise TemplateError(f"unsupported name {text!r}")
        path: list[str | int] = []
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                step_kind, step = self.take()
                if step_kind != "name":
                    raise TemplateError(f"expected a key after '.', not {step!r}")
                path.append(step)
                continue
            step_kind, step = self.take()
            if step_kind == "string":
                path.append(step[1:-1])
            elif step_kind == "number" and step.isdigit():
                path.append(int(step))
            else:
                raise TemplateError(f"unsupported index {step!r}")
            self.take("]")
        return ("json", tuple(path))


@lru_cache(maxsize=4096)
def compile_template(template: str) -> Node:
    """The tree of a `{{ ... }}` template; TemplateError when it is not a supported form."""
    text = template.strip()
    if not (text.startswith("{{") and text.endswith("}}")) or "{{" in text[2:-2]:
        raise TemplateError("is not a single {{ ... }} expression")
    parser = _Parser(_tokens(text[2:-2]))
    node = parser.expr()
    if parser.peek()[0] != "end":
        raise TemplateError(f"unexpected {parser.peek()[1]!r}")
    return node


def json_paths(node: Node) -> list[tuple[str | int, ...]]:
    """The value_json paths a template reads."""
    if node[0] == "json":
        return [node[1]]
    return [path for child in node[1:] if isinstance(child, tuple) for path in json_paths(child)]


def _to_float(value: Any, default: float | None) -> float:
    try:
        if isinstance(value, bool) or value is MISSING or value is None:
            raise ValueError
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        if default is None:
            raise TemplateError(f"cannot convert {value!r:.30} to a number") from None
        return default
    return number


def _float(value: Any, args: tuple[float, ...]) -> float:
    return _to_float(value, args[0] if args else None)


def _int(value: Any, args: tuple[float, ...]) -> int:
    return int(_to_float(value, args[0] if args else None))


def _round(value: Any, args: tuple[float, ...]) -> float:
    return round(_to_float(value, None), int(args[0]) if args else 0)


def _abs(value: Any, args: tuple[float, ...]) -> float:
    return abs(_to_float(value, None))


def _is_defined(value: Any, args: tuple[float, ...]) -> Any:
    if value is MISSING:
        raise TemplateError("value_json has no such key (is_defined)")
    return value


FILTERS = {"float": _float, "int": _int, "round": _round, "abs": _abs, "is_defined": _is_defined}
OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}


def _step(document: Any, step: str | int) -> Any:
    """One accessor of a value_json path; MISSING when the document has no such key or index."""
    if isinstance(step, int):
        return document[step] if isinstance(document, list) and step < len(document) else MISSING
    return document[step] if isinstance(document, dict) and step in document else MISSING


def _lookup(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        document = _step(document, step)
        if document is MISSING:
            return MISSING
    return document


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TemplateError(f"arithmetic on {value!r:.30}, which is not a number (add | float)")
    return value


def evaluate(node: Node, text: str, document: Any) -> Any:
    """The template's value for a state payload (`text`, and `document` its JSON or MISSING)."""
    kind = node[0]
    if kind == "number":
        return node[1]
    if kind == "value":
        return text
    if kind == "json":
        if document is MISSING:
            raise TemplateError("value_json used but the state is not JSON")
        return _lookup(document, node[1])
    if kind == "neg":
        return -_number(evaluate(node[1], text, document))
    if kind == "filter":
        return FILTERS[node[1]](evaluate(node[2], text, document), node[3])
    left, right = _number(evaluate(node[2], text, document)), _number(evaluate(node[3], text, document))
    try:
        result = OPERATORS[node[1]](left, right)
    except ZeroDivisionError:
        raise TemplateError("division by zero") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise TemplateError("the result is not finite")
    return result


def parse_json(text: str) -> Any:
    """The state as JSON, or MISSING when it is not JSON (a plain `value` state)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return MISSING
