"""One JSON shape for every refusal: {"detail": what is wrong, "fix": what to do}."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send


class ApiError(HTTPException):
    def __init__(self, status: int, detail: str, fix: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status, detail, headers)
        self.fix = fix


def error_response(status: int, detail: str, fix: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "fix": fix}, status_code=status, headers=headers)


async def send_error(scope: Scope, receive: Receive, send: Send, status: int, detail: str,
                     fix: str | None = None, headers: dict[str, str] | None = None) -> None:
    await error_response(status, detail, fix, headers)(scope, receive, send)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), getattr(exc, "fix", None), exc.headers)
