"""Serve the fans' static pages and their config.json from a FastAPI app.

On AWS the built folder goes to S3 behind a CDN with a config.json written
beside it. On the embedded stack the ticketing service serves both, so the
queue page and the purchase page share one origin, and so one localStorage.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from system.sale import DEFAULT_SALE_ID
from system.settings import Settings
from system.stack import StackResources, describe_stack

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
DIST_DIR = WEB_DIR / "dist"
CONFIG_PATH = "/config.json"
INDEX_PAGE = "index.html"
# Pages name their scripts without a content hash, so they must be checked
# again on each visit; hashed chunks never change.
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pages not built</title></head>
<body><h1>The fan pages are not built</h1>
<p>Run <code>make install</code> (it runs <code>npm ci</code> and the esbuild
build in system/web), then restart the ticketing service.</p></body></html>
"""


@dataclass(frozen=True)
class WebConfig:
    """Settings a fan's browser needs to reach the stack, served as config.json."""

    region: str
    endpoint_url: str | None
    identity_pool_id: str
    queue_table: str
    sales_table: str
    sale_id: str

    @classmethod
    def from_stack(
        cls, settings: Settings, resources: StackResources, sale_id: str | None = None
    ) -> WebConfig:
        """Build the config from the settings and the stack's resources.

        The sale is ``sale_id``, else ``BOXOFFICE_SALE_ID``, else the default
        sale. A page's ``?sale=`` parameter picks another one.
        """
        return cls(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            identity_pool_id=resources.identity_pool_id,
            queue_table=resources.queue_table,
            sales_table=resources.sales_table,
            sale_id=sale_id or os.environ.get("BOXOFFICE_SALE_ID") or DEFAULT_SALE_ID,
        )

    def to_json(self) -> str:
        """Return the config as the pages read it (config.json)."""
        return json.dumps(asdict(self), indent=2) + "\n"


def config_from_env() -> WebConfig:
    """Describe the stack the environment names and return the pages' config."""
    settings = Settings.from_env()
    return WebConfig.from_stack(settings, describe_stack(settings))


def mount(
    app: FastAPI,
    config: WebConfig | Callable[[], WebConfig],
    dist_dir: Path = DIST_DIR,
) -> None:
    """Add the built pages and ``/config.json`` to ``app``.

    ``config`` may be a function, called once on the first request for
    config.json, so an app can start before the stack is described. Each
    file gets its own route, so the app's other routes keep working whatever
    order they were added in.
    """
    resolved: list[WebConfig] = []

    def config_json() -> JSONResponse:
        if not resolved:
            resolved.append(config() if callable(config) else config)
        return JSONResponse(asdict(resolved[0]), headers={"Cache-Control": REVALIDATE})

    app.add_api_route(
        CONFIG_PATH, config_json, methods=["GET"], include_in_schema=False
    )
    index = dist_dir / INDEX_PAGE
    if not index.is_file():
        logger.warning("No built fan pages in %s; run `make install`", dist_dir)
        app.add_api_route("/", _not_built, methods=["GET"], include_in_schema=False)
        return
    _add_file_route(app, "/", index)
    for path in sorted(dist_dir.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            _add_file_route(app, "/" + path.relative_to(dist_dir).as_posix(), path)
    logger.info("Serving the fan pages from %s", dist_dir)


def _add_file_route(app: FastAPI, url_path: str, file: Path) -> None:
    cache = IMMUTABLE if "/chunks/" in url_path else REVALIDATE
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if file.suffix == ".js":
        media_type = "text/javascript"

    def send() -> FileResponse:
        return FileResponse(
            file, media_type=media_type, headers={"Cache-Control": cache}
        )

    app.add_api_route(url_path, send, methods=["GET", "HEAD"], include_in_schema=False)


def _not_built() -> HTMLResponse:
    return HTMLResponse(NOT_BUILT_PAGE, status_code=503)
