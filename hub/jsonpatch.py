# SPDX-License-Identifier: Apache-2.0
"""RFC 6902 JSON Patch on plain JSON values (for PATCH with application/json-patch+json)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hub.errors import BadRequestError, ConflictError


def _tokens(pointer: object) -> list[str]:
    """RFC 6901: '/a/b~1c' -> ['a', 'b/c']."""
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise BadRequestError(f"JSON Patch: {pointer!r} is not a JSON Pointer")
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, for_add: bool = False) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit():
        raise BadRequestError(f"JSON Patch: {pointer!r}: {token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_add):
        raise ConflictError(f"JSON Patch: {pointer!r}: index {index} is out of range")
    return index


def _parent(document: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise BadRequestError("JSON Patch: the whole document cannot be the target here")
    target = document
    for token in tokens[:-1]:
        target = _child(target, token, pointer)
    return target, tokens[-1]


def _child(value: Any, token: str, pointer: str) -> Any:
    if isinstance(value, dict):
        if token not in value:
            raise ConflictError(f"JSON Patch: {pointer!r} does not exist")
        return value[token]
    if isinstance(value, list):
        return value[_index(value, token, pointer)]
    raise ConflictError(f"JSON Patch: {pointer!r} does not exist")


def _get(document: Any, pointer: str) -> Any:
    value = document
    for token in _tokens(pointer):
        value = _child(value, token, pointer)
    return value


def _add(document: Any, pointer: str, value: Any) -> None:
    parent, token = _parent(document, pointer)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, pointer, for_add=True), value)
    else:
        raise ConflictError(f"JSON Patch: cannot add at {pointer!r}")


def _remove(document: Any, pointer: str) -> Any:
    parent, token = _parent(document, pointer)
    if isinstance(parent, dict) and token in parent:
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, pointer))
    raise ConflictError(f"JSON Patch: {pointer!r} does not exist")


def _replace(document: Any, pointer: str, value: Any) -> None:
    _remove(document, pointer)
    _add(document, pointer, value)


def _operation(document: Any, op: dict[str, Any]) -> None:
    path = op.get("path")
    kind = op.get("op")
    if not isinstance(path, str):
        raise BadRequestError(f"JSON Patch: operation {op!r} has no 'path'")
    needs_value = kind in ("add", "replace", "test")
    if needs_value and "value" not in op:
        raise BadRequestError(f"JSON Patch: '{kind}' at {path!r} needs a 'value'")
    source = op.get("from")
    if kind in ("move", "copy") and not isinstance(source, str):
        raise BadRequestError(f"JSON Patch: '{kind}' at {path!r} needs a 'from'")
    action = _ACTIONS.get(str(kind))
    if action is None:
        raise BadRequestError(f"JSON Patch: unknown operation {kind!r}")
    action(document, path, op.get("value"), source)


def _test(document: Any, path: str, value: Any) -> None:
    if _get(document, path) != value:
        raise ConflictError(f"JSON Patch: test at {path!r} failed")


_ACTIONS: dict[str, Callable[[Any, str, Any, Any], None]] = {
    "add": lambda d, p, v, f: _add(d, p, copy.deepcopy(v)),
    "remove": lambda d, p, v, f: _remove(d, p) and None,
    "replace": lambda d, p, v, f: _replace(d, p, copy.deepcopy(v)),
    "move": lambda d, p, v, f: _add(d, p, _remove(d, f)),
    "copy": lambda d, p, v, f: _add(d, p, copy.deepcopy(_get(d, f))),
    "test": lambda d, p, v, f: _test(d, p, v),
}


def apply_patch(document: dict[str, Any], patch: object) -> dict[str, Any]:
    """Apply a JSON Patch to a copy of `document`; all or nothing (RFC 6902 §5)."""
    if not isinstance(patch, list):
        raise BadRequestError("JSON Patch: the body must be a JSON array of operations")
    result = copy.deepcopy(document)
    for op in patch:
        if not isinstance(op, dict):
            raise BadRequestError(f"JSON Patch: operation {op!r} is not an object")
        _operation(result, op)
    return result
