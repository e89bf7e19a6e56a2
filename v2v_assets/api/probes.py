"""/health (the process answers), /ready (the Dagster instance answers and the inbox sensor is running and
ticking) and /metrics (Prometheus text). No token: they say nothing about any image."""
from __future__ import annotations

import time

import dagster as dg
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..sensors import inbox_sensor
from .schemas import Readiness

router = APIRouter(tags=["probes"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


def sensor_check(instance: dg.DagsterInstance, max_tick_age_s: float) -> tuple[bool, str]:
    """Whether the inbox sensor is on and the daemon evaluated it lately (its instigator state and last tick)."""
    # Compared by value: the instigator enums live in Dagster's private modules.
    states = [s for s in instance.all_instigator_state()
              if s.instigator_type.value == "SENSOR" and s.name == inbox_sensor.name]
    running = [s for s in states if s.status.value in ("RUNNING", "DECLARED_IN_CODE")]
    if not running:
        return False, ("stopped: start it in the Dagster UI" if states
                       else "never evaluated: is dagster-daemon running on this instance?")
    ticks = [t for s in running for t in instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=1)]
    if not ticks:
        return False, "running but no tick yet"
    age = time.time() - max(t.timestamp for t in ticks)
    if age > max_tick_age_s:
        return False, f"last tick {age:.0f} s ago (limit {max_tick_age_s:g} s): is dagster-daemon running?"
    return True, f"running, last tick {age:.0f} s ago"


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request, response: Response) -> Readiness:
    st = request.app.state
    checks: dict[str, str] = {}
    try:
        st.instance.get_runs(limit=1)
        checks["instance"] = "ok"
        ok, checks["inbox_sensor"] = sensor_check(st.instance, st.settings.api.ready_tick_age_s)
    except Exception as e:  # a storage error is the answer here, not a 500
        ok, checks["instance"] = False, f"unreachable: {type(e).__name__}: {e}"
    if not ok:
        response.status_code = 503
    return Readiness(ready=ok, checks=checks)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
