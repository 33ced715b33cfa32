# SPDX-License-Identifier: Apache-2.0
"""deploy/Dockerfile: hadolint finds nothing; multi-stage, pinned, non-root; its healthcheck works."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from deploy_helpers import DEPLOY, free_port, tool

DOCKERFILE = DEPLOY / "Dockerfile"
ROOT = DEPLOY.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_hadolint_finds_nothing() -> None:
    # The default failure threshold is "info": any finding at all fails.
    linted = subprocess.run(
        [tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def test_hadolint_would_complain() -> None:
    """The linter runs with rules on: a root image with an unpinned base is reported."""
    linted = subprocess.run(
        [tool("hadolint"), "-"],
        input="FROM python:latest\nRUN pip install aiohttp\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode != 0
    assert "DL3007" in linted.stdout  # latest
    assert "DL3013" in linted.stdout  # unpinned pip package


def test_multi_stage_on_a_pinned_base() -> None:
    steps = instructions()
    args = dict(step[1].split("=", 1) for step in steps if step[0] == "ARG")
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)
    assert any("--from=build" in rest for word, rest in steps if word == "COPY")


def test_runs_as_a_numeric_unprivileged_user() -> None:
    users = [rest for word, rest in instructions() if word == "USER"]
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) >= 1000
    assert gid.isdigit()
    assert int(gid) != 0


def test_starts_the_hub_in_exec_form() -> None:
    commands = [rest for word, rest in instructions() if word == "CMD"]
    assert json.loads(commands[-1]) == ["twinhub", "serve"]


def test_build_context_holds_what_the_image_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignored if line.startswith("!")}
    copied = [rest.split()[:-1] for word, rest in instructions() if word == "COPY" and "--from" not in rest]
    assert copied
    for sources in copied:
        for source in sources:
            assert source in allowed, f"{source} is copied but excluded by .dockerignore"
            assert (ROOT / source).exists()


def healthcheck() -> list[str]:
    """The HEALTHCHECK's command, with `python` being the test's interpreter."""
    checks = [rest for word, rest in instructions() if word == "HEALTHCHECK"]
    assert len(checks) == 1
    argv: list[str] = json.loads(checks[0].split("CMD", 1)[1])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


async def run_healthcheck(port: int) -> int:
    process = await asyncio.create_subprocess_exec(
        *healthcheck(), env={"TWINHUB_HTTP_PORT": str(port)}, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 20)


async def test_healthcheck_passes_on_a_running_hub(client: Any) -> None:
    assert "/health" in " ".join(healthcheck())
    assert await run_healthcheck(client.server.port) == 0


async def test_healthcheck_fails_when_nothing_answers() -> None:
    assert await run_healthcheck(free_port()) != 0


@pytest.mark.parametrize("name", ["TWINHUB_HTTP_HOST", "TWINHUB_HTTP_PORT"])
def test_listens_on_every_interface_of_the_container(name: str) -> None:
    environment = " ".join(rest for word, rest in instructions() if word == "ENV")
    assert f"{name}=" in environment
    assert "TWINHUB_HTTP_HOST=0.0.0.0" in environment
