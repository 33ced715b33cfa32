# SPDX-License-Identifier: Apache-2.0
"""docs/replicate.md is reachable, and what it names exists: files, settings, figures' sources."""

from __future__ import annotations

import re

import pytest
from deploy_helpers import DEPLOY

from hub.config import Settings

ROOT = DEPLOY.parent
GUIDE = ROOT / "docs" / "replicate.md"
TEXT = GUIDE.read_text()


@pytest.mark.parametrize("page", ["README.md", "deploy/README.md"])
def test_the_guide_is_linked(page: str) -> None:
    assert "replicate.md" in (ROOT / page).read_text()


def named_paths() -> list[str]:
    """Repository paths the guide names in backticks, with {a,b} expanded; deploy/.env is the reader's."""
    paths = set()
    for path in re.findall(r"`((?:deploy|bench|tests|docs)/[^`*<> ]+)", TEXT):
        head, brace, rest = path.partition("{")
        if brace:
            alternatives, _, tail = rest.partition("}")
            paths.update(head + alternative + tail for alternative in alternatives.split(","))
        else:
            paths.add(path)
    return sorted(paths - {"deploy/.env"})


@pytest.mark.parametrize("path", named_paths())
def test_named_files_exist(path: str) -> None:
    assert (ROOT / path).exists(), path


@pytest.mark.parametrize("variable", sorted(set(re.findall(r"TWINHUB_[A-Z0-9_]+", TEXT))))
def test_named_settings_exist(variable: str) -> None:
    name = variable.removeprefix("TWINHUB_").lower()
    assert name in Settings.model_fields or variable == "TWINHUB_CONFIG", variable


def test_figures_name_their_source() -> None:
    """Every sizing table cites the results file it was copied from."""
    sizing = TEXT.split("## Sizing", 1)[1].split("## Checklist", 1)[0]
    tables = [block for block in re.split(r"\n\n", sizing) if block.lstrip().startswith("|")]
    assert tables
    sources = re.findall(r"`(bench/results/[^`]+\.md)`", sizing)
    assert len(set(sources)) >= 3
    for source in sources:
        assert (ROOT / source).exists()
