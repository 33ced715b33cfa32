# SPDX-License-Identifier: Apache-2.0
"""Every setting, adapter and command is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import FAMILIES
from hub.cli import COMMANDS
from hub.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(name: str) -> None:
    assert name in README, f"setting {name} is not documented in README.md"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_adapter_has_a_readme_example(family: str) -> None:
    assert f"\n{family} = [" in README or f'"{family}"' in README, f"adapter {family} has no README example"


@pytest.mark.parametrize("command", [name for name, _, _ in COMMANDS])
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"twinhub {command}" in README


def test_readme_opens_with_the_two_commands() -> None:
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_config_example_loads(tmp_path: Path) -> None:
    from adapters.generic import check_options
    from hub.config import load_settings

    example = README.split("```toml", 1)[1].split("```", 1)[0]
    config = tmp_path / "twinhub.toml"
    config.write_text(example)
    settings = load_settings(config, environ={})
    assert settings.adapters is not None
    assert set(settings.adapters) == set(FAMILIES)
    assert settings.dataset_labels["serviceName"] == "HH_STA_Klima"
    check_options(settings.adapter_options["generic"])  # raises on a bad mapping
