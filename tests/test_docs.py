# SPDX-License-Identifier: Apache-2.0
"""Every setting (name, environment variable, default), adapter and command is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters import FAMILIES
from hub.cli import COMMANDS
from hub.config import Settings, env_var

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


# ---- the settings table, checked against the Settings model -------------------------------------

_BACKTICKED = re.compile(r"`([^`]*)`")
_EMPTY_WORDS = ("unset", "none", "empty")


def _settings_rows() -> list[tuple[list[str], str, list[str]]]:
    """(names, environment cell, default cell per name) of each row of the README's settings table."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("setting", "---"):
            continue
        names = [name.strip() for name in cells[0].split(" / ")]
        defaults = [part.strip() for part in cells[2].split(" / ")]
        assert len(defaults) == len(names), f"row {cells[0]}: one default per setting, split by ' / '"
        rows.append((names, cells[1], defaults))
    return rows


def _shown(value: Any) -> str:
    """A default as the README writes it between backticks."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        # Lists whose items hold commas ($select forms) are ';'-separated in the environment.
        separator = ";" if any("," in str(item) for item in value) else ","
        return separator.join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # `5` s, as the environment takes it too
    return str(value)


SETTING_ROWS = {
    name: (env, default)
    for names, env, defaults in _settings_rows()
    for name, default in zip(names, defaults, strict=True)
}


def test_the_settings_table_lists_each_setting_once() -> None:
    listed = [name for names, _, _ in _settings_rows() for name in names]
    assert sorted(listed) == sorted(Settings.model_fields), "README settings table != Settings fields"
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_each_setting_row_names_its_environment_variable_and_default(name: str) -> None:
    env, default = SETTING_ROWS[name]
    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if isinstance(value, dict):  # tables come from the TOML file
        assert "TOML" in env, f"{name}: a table setting; the environment cell should say TOML"
    named = {word for word in _BACKTICKED.findall(env) if word.startswith("TWINHUB_")}
    if not isinstance(value, dict) or named:
        assert env_var(name) in named, f"{name}: environment cell {env!r} lacks {env_var(name)}"
    if name == "data_dir":  # a per-user folder from platformdirs
        assert "data directory" in default
        assert str(value).endswith("twinhub")
    elif value is None or value in ("", (), {}, []):
        assert default.startswith(_EMPTY_WORDS), f"{name}: default {default!r} should say unset/none/empty"
    else:
        shown = _BACKTICKED.findall(default)
        assert shown, f"{name}: default cell {default!r} shows no `value`"
        assert shown[0] == _shown(value), f"{name}: README says {shown[0]!r}, Settings says {_shown(value)!r}"
