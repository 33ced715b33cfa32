# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the deploy/ checks: the compose broker (its config, ACL and start script) on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_helpers import DeployBroker, deploy_broker_in


@pytest.fixture
def deploy_broker(tmp_path: Path) -> Iterator[DeployBroker]:
    with deploy_broker_in(tmp_path) as started:
        yield started
