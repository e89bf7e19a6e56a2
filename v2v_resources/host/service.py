"""The host's work: load and warm once, then run phase requests on worker threads.

State goes starting → loading → warming → ready (or failed, with the reason). Every request answers either
the phase outcome or a `RequestError` whose status and JSON body say what was wrong and how to fix it; no
request can take the host down. Outputs are written by the phase functions, atomically, meta.json last, so
a host killed mid-request leaves no file under a final name that it did not finish.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import errors
from ..settings import Settings, validate_settings
from ..storage import Home
from .batcher import SdxlBatcher
from .metrics import HostMetrics
from .phase_calls import PHASES, run_phase

log = logging.getLogger(__name__)

# HTTP status per error class: the client retries 503 only
STATUS = {errors.BadInputError: 422, errors.QualityError: 422, errors.ConfigError: 400,
          errors.ModelMissingError: 500, errors.TransientError: 503, errors.EngineError: 500}


class RequestError(Exception):
    def __init__(self, status: int, error: str, reason: str, *, file=None, phase=None, fix=None,
                 retryable=False):
        super().__init__(reason)
        self.status = status
        self.body = {"error": error, "reason": reason, "file": file, "phase": phase, "fix": fix,
                     "retryable": retryable}

    @classmethod
    def from_v2v(cls, e: errors.V2VError, status: int | None = None) -> "RequestError":
        code = status or next((c for t, c in STATUS.items() if isinstance(e, t)), 500)
        return cls(code, type(e).__name__, e.reason, file=e.file, phase=e.phase, fix=e.fix,
                   retryable=e.retryable)


def cuda_stream_per_thread(device: str):
    """Each worker thread issues its kernels on a stream of its own, so phase I and ESRGAN overlap SDXL."""
    def init():
        import torch

        if device.startswith("cuda"):
            torch.cuda.set_stream(torch.cuda.Stream(torch.device(device)))
    return init


class HostService:
    def __init__(self, settings: Settings, *, device: str | None = None, models_root: Path | None = None,
                 manifest: Path | None = None, engines=None):
        self.settings, self.hc = settings, settings.host
        self._load_args = dict(device=device, models_root=models_root, manifest=manifest)
        self.engines = engines
        self.state, self.detail = "starting", ""
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.metrics = HostMetrics(self._vram)
        self.pool: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._lock = threading.Lock()

    # ---- lifecycle --------------------------------------------------------------------------------------
    def start(self, background: bool = True) -> "HostService":
        if background:
            threading.Thread(target=self._start, name="host-start", daemon=True).start()
        else:
            self._start()
        return self

    def _start(self) -> None:
        try:
            t = time.monotonic()
            if self.engines is None:
                from .engines import ResidentEngines

                self.state = "loading"
                self.engines = ResidentEngines(self.settings, **self._load_args)
            self.timings["load_s"] = round(time.monotonic() - t, 3)
            device = self.engines.vram.device
            init = cuda_stream_per_thread(device)
            batcher = SdxlBatcher(self.hc.max_batch, self.hc.max_wait_ms / 1000, self.metrics, init)
            self.engines.attach(batcher, self.metrics)
            if self.hc.warmup:
                self.state = "warming"
                t = time.monotonic()
                self.timings.update(self.engines.warm_up(self.hc.max_batch))
                self.timings["warmup_s"] = round(time.monotonic() - t, 3)
            self.pool = ThreadPoolExecutor(self.hc.workers, thread_name_prefix="host-worker", initializer=init)
            self.timings["ready_s"] = round(time.monotonic() - self.started, 3)
            for stage in ("load_s", "warmup_s", "ready_s"):
                if stage in self.timings:
                    self.metrics.startup_seconds.labels(stage.removesuffix("_s")).set(self.timings[stage])
            self.state = "ready"
            self.metrics.ready.set(1)
            log.info("host ready on %s in %.1f s (%s); backends %s", device, self.timings["ready_s"],
                     self.timings, self.engines.backends)
        except Exception as e:      # stay up and say why on /ready: a probe shows it, a restart may fix it
            log.exception("host failed to start")
            self.state, self.detail = "failed", f"{type(e).__name__}: {e}"

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def status(self) -> dict:
        out = {"ready": self.ready, "state": self.state, "detail": self.detail, "timings": self.timings,
               "max_batch": self.hc.max_batch, "max_wait_ms": self.hc.max_wait_ms}
        if self.engines is not None:
            out.update(device=self.engines.vram.device, backends=self.engines.backends,
                       resident=self.engines.vram.resident())
        return out

    def _vram(self) -> dict:
        e = self.engines
        if e is None or not e.vram.is_cuda:
            return {}
        import torch

        dev = torch.device(e.vram.device)
        return {"allocated": torch.cuda.memory_allocated(dev), "reserved": torch.cuda.memory_reserved(dev),
                "peak_allocated": torch.cuda.max_memory_allocated(dev)}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.engines is not None and self.engines.batcher is not None:
            self.engines.batcher.close()

    # ---- requests ---------------------------------------------------------------------------------------
    def submit(self, phase: str, home_root: str, key: str, settings: dict):
        """Queue a request on the worker pool (for the async endpoint); returns a concurrent Future."""
        if not self.ready:
            raise RequestError(503, "NotReady", f"host is {self.state}" + (f": {self.detail}" if self.detail else ""),
                               phase="host", fix="wait for /ready (the client retries)", retryable=True)
        with self._lock:
            self._waiting += 1
            self.metrics.queue_depth.labels("requests").set(self._waiting)
        return self.pool.submit(self._run_timed, phase, home_root, key, settings, time.perf_counter())

    def _run_timed(self, phase, home_root, key, settings, queued: float) -> dict:
        with self._lock:
            self._waiting -= 1
            self.metrics.queue_depth.labels("requests").set(self._waiting)
        self.metrics.in_progress.inc()
        outcome = "error"
        try:
            out = self._run(phase, home_root, key, settings)
            outcome = "ok"
            return out
        except RequestError as e:
            outcome = str(e.status)
            raise
        finally:
            self.metrics.in_progress.dec()
            self.metrics.requests.labels(phase if phase in PHASES else "unknown", outcome).inc()
            if outcome == "ok":
                self.metrics.phase_seconds.labels(phase).observe(time.perf_counter() - queued)

    def _run(self, phase: str, home_root: str, key: str, settings: dict) -> dict:
        if phase not in PHASES:
            raise RequestError(400, "UnknownPhase", f"unknown phase {phase!r}", phase=phase,
                               fix=f"use one of {', '.join(PHASES)}")
        home = Home(Path(home_root))
        if not home.storage.is_dir():
            raise RequestError(400, "BadInputError", "no storage/ folder under this home on the host",
                               file=home_root, phase=phase,
                               fix="mount the shared V2V_HOME at the same path on the host as on the caller")
        try:
            home.asset_dir(phase, key)
        except ValueError as e:
            raise RequestError(400, "BadInputError", str(e), file=key, phase=phase,
                               fix="pass the partition key as Dagster has it") from e
        try:
            s = validate_settings(settings, "request settings")
            view = self.engines.view(s, home.cache)
        except errors.ConfigError as e:
            raise RequestError.from_v2v(e, 409 if e.phase == "host" else 400) from e
        try:
            return run_phase(phase, home, key, s, view.get(phase))
        except FileNotFoundError as e:
            missing = getattr(e, "filename", None) or str(e)
            raise RequestError(404, "BadInputError", f"upstream file missing: {missing}", file=key, phase=phase,
                               fix="materialise the upstream phase for this key first (or check the key)") from e
        except errors.V2VError as e:
            if e.file is None:
                e.file = key
            raise RequestError.from_v2v(e) from e
        except Exception as e:
            import torch

            if isinstance(e, torch.OutOfMemoryError):
                raise RequestError(503, "TransientError", f"CUDA out of memory: {e}", file=key, phase=phase,
                                   fix="retry; lower host.max_batch if it repeats", retryable=True) from e
            log.exception("%s %s failed", phase, key)
            raise RequestError(500, type(e).__name__, str(e)[:2000], file=key, phase=phase,
                               fix="see the host log") from e
