"""`HostClient`: run a GPU phase for one key on a `v2v host`, spreading keys over one host per GPU.

Thread-safe: a caller sends a batch's keys from several threads at once, so the host can batch them.
Transient failures (connection refused or reset, 502/503/504, timeouts) are retried with exponential
backoff, on the next host when there are several; a host that failed is avoided for a while. Permanent
failures raise the V2VError the host named (BadInputError, QualityError, ConfigError, ...), with its file,
phase and fix.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import httpx

from .. import errors

log = logging.getLogger(__name__)
TRANSIENT_STATUS = {502, 503, 504}
TRANSIENT_EXC = (httpx.TransportError,)        # connect/read/write errors, timeouts, protocol breaks
_ERRORS = {c.__name__: c for c in (errors.BadInputError, errors.QualityError, errors.ConfigError,
                                   errors.EngineError, errors.TransientError, errors.ModelMissingError)}


class HostUnavailableError(errors.TransientError):
    """No host answered (or none was ready) after the retries."""


class HostClient:
    def __init__(self, urls: list[str] | str, *, token: str | None = None, token_env: str = "V2V_HOST_TOKEN",
                 timeout_s: float = 1800, connect_timeout_s: float = 5, retries: int = 8,
                 backoff_s: float = 0.5, max_backoff_s: float = 15):
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise errors.ConfigError("no host URL given", phase="host", fix="list the hosts, one per GPU")
        self.token = token if token is not None else os.environ.get(token_env) or None
        self.token_env = token_env
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                                  limits=httpx.Limits(max_connections=None, max_keepalive_connections=256))
        self._lock = threading.Lock()
        self._inflight = {u: 0 for u in self.urls}
        self._avoid_until = {u: 0.0 for u in self.urls}
        self._turn = 0

    @classmethod
    def from_settings(cls, urls: list[str] | str, host_settings) -> "HostClient":
        h = host_settings
        return cls(urls, token_env=h.token_env, timeout_s=h.request_timeout_s,
                   connect_timeout_s=h.connect_timeout_s, retries=h.retries, backoff_s=h.backoff_s,
                   max_backoff_s=h.max_backoff_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- probes -----------------------------------------------------------------------------------------
    def status(self) -> dict[str, dict]:
        """Each host's /ready answer (or the error reaching it)."""
        out = {}
        for u in self.urls:
            try:
                r = self._http.get(f"{u}/ready", timeout=10)
                out[u] = r.json() | {"http_status": r.status_code}
            except (httpx.HTTPError, ValueError) as e:
                out[u] = {"ready": False, "state": "unreachable", "detail": f"{type(e).__name__}: {e}"}
        return out

    def check_health(self) -> dict[str, dict]:
        """At step start: every host's state; raises HostUnavailableError when none is ready."""
        st = self.status()
        if not any(s.get("ready") for s in st.values()):
            raise HostUnavailableError("no model host is ready: " + "; ".join(
                f"{u} {s.get('state')} {s.get('detail') or ''}".strip() for u, s in st.items()), phase="host",
                fix="start `v2v host --device cuda:N` on each GPU and wait for /ready, or configure no hosts "
                    "to run the engines in-process")
        return st

    def wait_ready(self, timeout_s: float, poll_s: float = 1.0) -> dict[str, dict]:
        """Block until at least one host is ready (a host warming up after a restart), or raise."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.check_health()
            except HostUnavailableError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(poll_s)

    # ---- work -------------------------------------------------------------------------------------------
    def _pick(self) -> str:
        """The least busy host not recently failed (round robin among equals)."""
        with self._lock:
            now = time.monotonic()
            live = [u for u in self.urls if self._avoid_until[u] <= now] or \
                sorted(self.urls, key=lambda u: self._avoid_until[u])[:1]
            self._turn += 1
            url = min(live, key=lambda u: (self._inflight[u], (self.urls.index(u) - self._turn) % len(self.urls)))
            self._inflight[url] += 1
            return url

    def _done(self, url: str, failed: bool, wait_s: float = 0.0) -> None:
        with self._lock:
            self._inflight[url] -= 1
            if failed and len(self.urls) > 1:
                self._avoid_until[url] = time.monotonic() + max(wait_s, 1.0)

    def run(self, phase: str, home_root: str, key: str, settings_dict: dict) -> dict:
        """The phase outcome dict for `key`, computed by a host; raises a V2VError on a permanent failure."""
        body = {"phase": phase, "key": key, "home": str(home_root), "settings": settings_dict}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        last = ""
        for attempt in range(self.retries + 1):
            url = self._pick()
            wait = min(self.backoff_s * 2 ** attempt, self.max_backoff_s)
            try:
                r = self._http.post(f"{url}/v1/run", json=body, headers=headers)
            except TRANSIENT_EXC as e:
                last = f"{url}: {type(e).__name__}: {e}"
                self._done(url, True, wait)
            else:
                transient = r.status_code in TRANSIENT_STATUS
                self._done(url, transient, wait)
                if r.status_code == 200:
                    return r.json()
                if not transient:
                    raise _error(r, phase, key, self.token_env)
                last = f"{url}: HTTP {r.status_code} {_reason(r)}"
            if attempt < self.retries:
                log.warning("host request %s %s: %s; retry %d/%d in %.1f s", phase, key, last, attempt + 1,
                            self.retries, wait)
                time.sleep(wait)
        raise HostUnavailableError(f"gave up after {self.retries + 1} tries; last: {last}", file=key, phase=phase,
                                   fix="check the hosts' /ready and logs; the step can be retried")


def _reason(r: httpx.Response) -> str:
    try:
        return r.json().get("reason") or r.text[:300]
    except ValueError:
        return r.text[:300]


def _error(r: httpx.Response, phase: str, key: str, token_env: str) -> errors.V2VError:
    if r.status_code == 401:
        return errors.ConfigError("the model host refused the request: missing or wrong bearer token",
                                  phase="host", fix=f"set ${token_env} to the host's token")
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code == 422 and "detail" in body:        # FastAPI's own: the request body was malformed
        return errors.ConfigError(f"the host rejected the request body: {body['detail']}", phase="host",
                                  fix="client and host versions must match")
    cls = _ERRORS.get(body.get("error"), errors.EngineError)
    return cls(f"HTTP {r.status_code} {body.get('error', '')}: {body.get('reason') or r.text[:300]}",
               file=body.get("file") or key, phase=body.get("phase") or phase, fix=body.get("fix"))
