"""Response shapes, for the OpenAPI docs at /docs and for validating what the routes answer."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

PhaseState = Literal["pending", "running", "done", "failed"]
ImageState = Literal["received", "pending", "running", "done", "failed"]


class Problem(BaseModel):
    detail: str = Field(description="what is wrong")
    fix: str | None = Field(None, description="what to do about it")


class Accepted(BaseModel):
    key: str = Field(description="the image's partition key: readable stem + 10 hex of its sha256")
    duplicate: bool = Field(description="true: this content was sent before; its first options stand")
    status_url: str
    svg_url: str
    preview_url: str


class Check(BaseModel):
    name: str
    passed: bool
    blocking: bool
    description: str
    fix: str = ""
    metadata: dict[str, Any] = {}


class PhaseStatus(BaseModel):
    name: str
    state: PhaseState
    backend: str | None = None
    seconds: float | None = None
    checks: list[Check] = []
    metadata: dict[str, Any] = {}
    started_at: float | None = None
    error: str | None = None
    reason: str | None = None
    fix: str | None = None
    retryable: bool | None = None
    run_id: str | None = None


class RunInfo(BaseModel):
    id: str
    status: str
    started_at: float | None


class ImageStatus(BaseModel):
    key: str
    state: ImageState = Field(description="received: in the inbox, not yet taken by the sensor; pending: a "
                                          "partition waiting for a run; running; done; failed")
    options: dict[str, Any] | None = Field(None, description="the options it was sent with")
    name: str | None = Field(None, description="the file name it was sent under")
    received_at: float | None = Field(None, description="when the API stored it (Unix time)")
    phases: list[PhaseStatus]
    seconds: float = Field(description="time spent in the phases done so far")
    run: RunInfo | None = Field(None, description="the run in progress covering this image")


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]
