"""The host's Prometheus metrics, in a registry of its own (tests run several hosts in one process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600, 1800)


class HostMetrics:
    def __init__(self, vram_probe=None):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("v2v_host_requests", "Phase requests answered, by phase and outcome",
                                ["phase", "outcome"], registry=r)
        self.phase_seconds = Histogram("v2v_host_phase_seconds", "Wall time of one phase request on the host, "
                                       "queueing included", ["phase"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("v2v_host_queue_depth", "Work waiting: requests not yet started, SDXL attempts "
                                 "not yet in a batch", ["queue"], registry=r)
        self.in_progress = Gauge("v2v_host_requests_in_progress", "Requests being worked on", registry=r)
        self.batch_size = Histogram("v2v_host_sdxl_batch_size", "Images per SDXL pipeline call",
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64), registry=r)
        self.batch_seconds = Histogram("v2v_host_sdxl_batch_seconds", "Seconds per SDXL pipeline call",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.retries = Counter("v2v_host_iou_retries", "SDXL attempts after an image's first (IoU retries)",
                               registry=r)
        self.ready = Gauge("v2v_host_ready", "1 once the models are verified, loaded and warm", registry=r)
        self.startup_seconds = Gauge("v2v_host_startup_seconds", "Seconds from start to ready, by stage",
                                     ["stage"], registry=r)
        self.vram = Gauge("v2v_host_vram_bytes", "Device memory: allocated now, reserved now, peak allocated",
                          ["kind"], registry=r)
        if vram_probe is not None:
            for kind in ("allocated", "reserved", "peak_allocated"):
                self.vram.labels(kind).set_function(lambda k=kind: vram_probe().get(k, 0.0))
        for q in ("requests", "sdxl"):
            self.queue_depth.labels(q).set(0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
