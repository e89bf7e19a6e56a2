"""Bearer tokens, kept only as hashes in the config (`api.token_hashes`).

Tokens are 256-bit random strings, so one sha256 per request is as safe as a slow password hash and costs
nothing; the comparison is constant-time. A request's identity (for the rate limit and the logs) is the first
characters of its token's hash, never the token."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import send_error

PROTECTED_PREFIX = "/v1/"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, hashes: list[str]):
        self._hashes = [h.encode() for h in hashes]

    def identify(self, authorization: str | None) -> str | None:
        """The caller's id for a valid `Authorization: Bearer <token>` header, else None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        h = hash_token(token.strip()).encode()
        # Compare with every hash, so the time taken does not tell which (or whether one) matched.
        matched = [hmac.compare_digest(h, known) for known in self._hashes]
        return h[7:19].decode() if any(matched) else None


class BearerAuth:
    """401 for /v1/ requests without a valid token, before any of the body is read."""

    def __init__(self, app: ASGIApp, tokens: Tokens):
        self.app, self.tokens = app, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        caller = self.tokens.identify(headers.get(b"authorization", b"").decode("latin-1"))
        if caller is None:
            return await send_error(scope, receive, send, 401, "missing or invalid bearer token",
                                    fix="send `Authorization: Bearer <token>` with a token whose hash is in "
                                        "api.token_hashes (`v2v api hash-token`)",
                                    headers={"WWW-Authenticate": "Bearer"})
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
