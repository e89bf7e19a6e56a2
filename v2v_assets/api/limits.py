"""Request limits as ASGI middleware, each refusing with its own status and a JSON reason:
413 a body over the size limit (before reading it when Content-Length says so, else as soon as it passes),
429 a caller over its rate (a token bucket per token), 408/503 a request over the time limit."""
from __future__ import annotations

import asyncio
import math
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, send_error

FORM_OVERHEAD = 64 * 1024   # the multipart boundaries and the option fields around the image


class TooLarge(ApiError):
    """Raised from `receive`: FastAPI lets HTTPExceptions from body parsing through, and renders them."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds the limit of {limit} bytes", fix=_fix(limit))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_image_bytes: int):
        self.app, self.limit = app, max_image_bytes + FORM_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await send_error(scope, receive, send, 413, f"request body of {int(length)} bytes exceeds "
                                    f"the limit of {self.limit} bytes", fix=_fix(self.limit))
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge(self.limit)
            return message

        await self.app(scope, counting, send)


def _fix(limit: int) -> str:
    return f"send an image under {limit - FORM_OVERHEAD} bytes (api.max_upload_bytes)"


class TokenBuckets:
    """`per_minute` requests a minute per caller, up to `burst` at once."""

    def __init__(self, per_minute: float, burst: int):
        self.rate, self.burst = per_minute / 60.0, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}   # caller → (tokens, at)
        self._lock = threading.Lock()

    def take(self, caller: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[caller] = (tokens - 1, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1 - tokens) / self.rate


class RateLimit:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets):
        self.app, self.buckets = app, buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = scope.get("state", {}).get("caller") if scope["type"] == "http" else None
        wait = self.buckets.take(caller) if caller else 0.0
        if wait:
            return await send_error(scope, receive, send, 429, "rate limit exceeded for this token",
                                    fix=f"retry after {math.ceil(wait)} s (api.rate_limit_per_minute)",
                                    headers={"Retry-After": str(math.ceil(wait))})
        await self.app(scope, receive, send)


class RequestTimeout:
    """408 when the client has not sent its whole body in time, 503 when the work took too long. A handler
    running in a thread is not stopped; its result is dropped (an upload it was storing still completes, and
    sending it again answers with the same key)."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        body_done = headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers
        started = False

        async def tracking_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                await self.app(scope, tracking_receive, tracking_send)
        except TimeoutError:
            if started or not deadline.expired():
                raise   # the status is already out (the server drops the connection), or not our deadline
            if not body_done:
                return await send_error(scope, receive, send, 408, f"request body not received within "
                                        f"{self.seconds:g} s", fix="send the image faster or smaller "
                                        "(api.request_timeout_s)", headers={"Connection": "close"})
            await send_error(scope, receive, send, 503, f"request not answered within {self.seconds:g} s",
                             fix="retry later (api.request_timeout_s)", headers={"Retry-After": "5"})
