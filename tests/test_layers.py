# SPDX-License-Identifier: Apache-2.0
"""Package imports run one way (DESIGN.md, issue 14): every import in hub/, read with ast.

http and mqtt sit above changes, changes above render, store and query; http and mqtt never
import each other; nothing below the application layer imports hub.app or hub.cli. Imports
inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[1] / "hub"

# package (or module) -> what it must never import (prefix match on dotted names). aiohttp.web is
# the application layer's; the MQTT client may use aiohttp's websocket client (ws:// brokers).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "hub.store": ("hub.changes", "hub.http", "hub.mqtt", "hub.render", "hub.app", "hub.cli", "aiohttp"),
    "hub.query": ("hub.store", "hub.changes", "hub.http", "hub.mqtt", "hub.app", "aiohttp"),
    "hub.render": ("hub.changes", "hub.http", "hub.mqtt", "hub.app", "aiohttp"),
    "hub.changes": ("hub.http", "hub.mqtt", "hub.ingest", "hub.app", "hub.cli", "aiohttp"),
    "hub.mqtt": ("hub.http", "hub.app", "hub.cli", "aiohttp.web"),
    "hub.http": ("hub.mqtt", "hub.app", "hub.cli"),
    "hub.ingest": ("hub.changes", "hub.http", "hub.app", "hub.cli", "aiohttp.web"),
}
# Known exceptions, each with its reason (an entry here is a debt, not a design).
# (None now: the MQTT topic filters and STA create topics that ingest, mqtt and changes share
# moved from hub/mqtt to hub/query/topics.py, below all three.)
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(HUB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """Every module `path` (module `name`) imports, as dotted names, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


MODULES = sorted(HUB.rglob("*.py"))


def test_the_layers_are_all_present() -> None:
    names = {module_name(p) for p in MODULES}
    for layer in FORBIDDEN:
        assert any(within(name, layer) for name in names), f"no module in {layer}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path: Path) -> None:
    name = module_name(path)
    wrong = sorted(
        f"{name} imports {target} (not allowed from {layer})"
        for layer, banned in FORBIDDEN.items()
        if within(name, layer)
        for target in imports_of(path)
        if any(within(target, b) for b in banned)
        and not any(within(name, a) and within(target, t) for a, t in ALLOWED)
    )
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    """The reader finds imports inside functions and relative ones (else the test proves nothing)."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from hub.http.context import STATE\n    from . import sibling\n")
    found = imports_of(module, "hub.mqtt.probe")
    assert "hub.http.context" in found
    assert "hub.mqtt.sibling" in found
