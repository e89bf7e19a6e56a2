"""The app factory: routes, limits, auth and metrics over one home, its settings and a Dagster instance."""
from __future__ import annotations

import dagster as dg
from fastapi import FastAPI
from PIL import Image
from starlette.exceptions import HTTPException

from v2v_resources.settings import Settings
from v2v_resources.storage import Home

from . import images, probes
from .auth import BearerAuth, Tokens
from .errors import http_error
from .limits import BodyLimit, RateLimit, RequestTimeout, TokenBuckets
from .metrics import Metrics, RequestMetrics

DESCRIPTION = """Send vehicle photos, follow them through the v2v Dagster pipeline, fetch palette-locked SVGs.

Every `/v1/` request needs `Authorization: Bearer <token>`. Refusals answer `{"detail", "fix"}`."""


def accepted_formats(mime_types: list[str]) -> set[str]:
    """Pillow format names whose MIME type is allowed (the decoded format counts, not the client's claim)."""
    Image.init()
    return {fmt for fmt, mime in Image.MIME.items() if mime in mime_types}


def create_app(home: Home, settings: Settings, instance: dg.DagsterInstance) -> FastAPI:
    cfg = settings.api
    app = FastAPI(title="v2v", version="1", description=DESCRIPTION)
    app.state.home, app.state.settings, app.state.instance = home, settings, instance
    app.state.formats = accepted_formats(cfg.allowed_types)
    app.state.metrics = Metrics(home, instance)
    app.include_router(images.router)
    app.include_router(probes.router)
    app.add_exception_handler(HTTPException, http_error)
    # The last added runs first: metrics see every answer; time runs from the first byte; a caller is known
    # (401 otherwise) before it is counted against its rate, and both before any of the body is read.
    app.add_middleware(BodyLimit, max_image_bytes=cfg.max_upload_bytes)
    app.add_middleware(RateLimit, buckets=TokenBuckets(cfg.rate_limit_per_minute, cfg.rate_limit_burst))
    app.add_middleware(BearerAuth, tokens=Tokens(cfg.token_hashes))
    app.add_middleware(RequestTimeout, seconds=cfg.request_timeout_s)
    routes = [r for r in app.routes if hasattr(r, "path")] + images.router.routes + probes.router.routes
    app.add_middleware(RequestMetrics, metrics=app.state.metrics, routes=routes)
    return app
