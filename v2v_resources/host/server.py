"""The host's HTTP face (FastAPI on uvicorn): /health, /ready, /metrics and POST /v1/run.

One process per GPU, one event loop; the work runs on the service's threads, so the loop always answers
the probes. /v1/run needs `Authorization: Bearer <token>` when a token is set (`host.token_env`); a host
bound beyond loopback refuses to start without one.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from .service import HostService, RequestError

log = logging.getLogger(__name__)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: str
    key: str
    home: str              # the shared V2V_HOME root, as mounted on the host
    settings: dict         # the run's Settings.model_dump(mode="json")


def create_app(service: HostService, token: str | None) -> FastAPI:
    app = FastAPI(title="v2v model host", docs_url=None, redoc_url=None)
    expected = f"Bearer {token}".encode() if token else None

    @app.get("/health")
    def health():
        return {"status": "ok", "state": service.state}

    @app.get("/ready")
    def ready():
        return JSONResponse(service.status(), status_code=200 if service.ready else 503)

    @app.get("/metrics")
    def metrics():
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/run")
    async def run(req: RunRequest, authorization: str | None = Header(default=None)):
        if expected is not None and not hmac.compare_digest((authorization or "").encode(), expected):
            return JSONResponse({"error": "Unauthorized", "reason": "missing or wrong bearer token",
                                 "fix": "send `Authorization: Bearer $V2V_HOST_TOKEN` (the host's token)"},
                                status_code=401)
        try:
            fut = service.submit(req.phase, req.home, req.key, req.settings)
            return await asyncio.wrap_future(fut)
        except RequestError as e:
            return JSONResponse(e.body, status_code=e.status)

    return app


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


def host_token(settings) -> str | None:
    """The bearer token, or None on loopback without one; beyond loopback a token is required."""
    token = os.environ.get(settings.host.token_env) or None
    if token is None and not is_loopback(settings.host.bind):
        raise ConfigError(f"host.bind is {settings.host.bind} but ${settings.host.token_env} is not set",
                          phase="host", fix=f"export {settings.host.token_env}=<a long random string> for the "
                                            "host and its clients, or bind 127.0.0.1")
    return token


def serve(settings, *, device: str | None = None, models_root=None, manifest=None) -> int:
    """Run the host until stopped (SIGINT/SIGTERM)."""
    import uvicorn

    token = host_token(settings)
    if token is None:
        log.warning("host: no token in $%s; serving loopback only, unauthenticated", settings.host.token_env)
    service = HostService(settings, device=device, models_root=models_root, manifest=manifest).start()
    try:
        uvicorn.run(create_app(service, token), host=settings.host.bind, port=settings.host.port,
                    log_level="info", access_log=False, timeout_keep_alive=75)
    finally:
        service.close()
    return 0
