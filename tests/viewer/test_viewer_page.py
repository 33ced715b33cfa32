# SPDX-License-Identifier: Apache-2.0
"""/ serves the built viewer or a page saying how to build it; /viewer-config.json; the tile setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.config import ConfigError, Settings, load_settings
from hub.http import viewer


async def test_without_a_build_the_root_says_how_to_build_and_links_the_api(
    client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(viewer, "VIEWER_DIR", tmp_path / "not-built")
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert "make viewer" in page
    assert f'href="http://{client.host}:{client.port}/v1.1"' in page


async def test_a_built_viewer_is_served_at_the_root_with_its_files(
    client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>built viewer</title>")
    (tmp_path / "viewer.js").write_text("console.log('viewer')")
    (tmp_path.parent / "secret.txt").write_text("outside")
    monkeypatch.setattr(viewer, "VIEWER_DIR", tmp_path)
    index = await client.get("/")
    assert index.status == 200
    assert "built viewer" in await index.text()
    script = await client.get("/viewer/viewer.js")
    assert script.status == 200
    assert await script.text() == "console.log('viewer')"
    for name in ("missing.js", "..%2Fsecret.txt", "%2E%2E/secret.txt"):
        response = await client.get(f"/viewer/{name}")
        assert response.status == 404, name
        assert (await response.json())["code"] == 404


async def test_the_config_tells_the_page_where_the_api_and_the_stream_are(client: Any) -> None:
    response = await client.get("/viewer-config.json")
    assert response.status == 200
    base = f"http://{client.host}:{client.port}"
    assert await response.json() == {
        "sta": f"{base}/v1.1",
        "live": f"{base}/live",
        "tileUrl": None,
        "tileAttribution": "",
    }
    behind_proxy = await client.get(
        "/viewer-config.json", headers={"X-Forwarded-Host": "twin.example.org", "X-Forwarded-Proto": "https"}
    )
    assert (await behind_proxy.json())["live"] == "https://twin.example.org/live"


async def test_the_tile_settings_reach_the_page(clean_db: str, tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import build_app

    settings = Settings(
        database_url=clean_db,
        data_dir=tmp_path,
        migrate_on_start=False,
        viewer_tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
        viewer_tile_attribution="© Example contributors",
    )
    async with TestClient(TestServer(build_app(settings))) as client:
        config = await (await client.get("/viewer-config.json")).json()
    assert config["tileUrl"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    assert config["tileAttribution"] == "© Example contributors"


@pytest.mark.parametrize("bad", ["https://tiles.example.org/map.png", "ftp://t.example.org/{z}/{x}/{y}.png"])
def test_a_tile_url_without_placeholders_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="TWINHUB_VIEWER_TILE_URL"):
        load_settings(None, environ={"TWINHUB_VIEWER_TILE_URL": bad})
