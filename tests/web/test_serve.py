"""The ticketing service's routes for the fans' static pages and config.json."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from system.web.serve import WebConfig, mount

CONFIG = WebConfig(
    region="us-east-1",
    endpoint_url="http://127.0.0.1:4566",
    identity_pool_id="us-east-1:pool",
    queue_table="queue",
    sales_table="sales",
    sale_id="tour-2027",
)


def _built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "chunks").mkdir(parents=True)
    (dist / "index.html").write_text("<main>countdown</main>")
    (dist / "queue.html").write_text("<main>queue</main>")
    (dist / "queue.js").write_text("console.log('queue')")
    (dist / "chunks" / "chunk-ABC.js").write_text("export const x = 1;")
    (dist / ".built").write_text("")
    return dist


def test_pages_and_config_are_served(tmp_path: Path) -> None:
    app = FastAPI()
    mount(app, CONFIG, _built(tmp_path))

    @app.get("/purchase")  # added after mount: must not be shadowed
    def purchase() -> dict[str, str]:
        return {"page": "purchase"}

    client = TestClient(app)
    assert client.get("/config.json").json() == json.loads(CONFIG.to_json())
    assert "countdown" in client.get("/").text
    assert "queue" in client.get("/queue.html").text
    script = client.get("/queue.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"
    chunk = client.get("/chunks/chunk-ABC.js")
    assert "immutable" in chunk.headers["cache-control"]
    assert client.get("/purchase").json() == {"page": "purchase"}
    assert client.get("/missing.html").status_code == 404
    assert client.get("/.built").status_code == 404


def test_config_from_a_function_is_read_once(tmp_path: Path) -> None:
    calls = []

    def load() -> WebConfig:
        calls.append(1)
        return CONFIG

    app = FastAPI()
    mount(app, load, _built(tmp_path))
    client = TestClient(app)
    assert calls == []
    client.get("/config.json")
    client.get("/config.json")
    assert calls == [1]


def test_unbuilt_pages_say_how_to_build_them(tmp_path: Path) -> None:
    app = FastAPI()
    mount(app, CONFIG, tmp_path / "nothing")
    response = TestClient(app).get("/")
    assert response.status_code == 503
    assert "make install" in response.text
    assert TestClient(app).get("/config.json").status_code == 200
