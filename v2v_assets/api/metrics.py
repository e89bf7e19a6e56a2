"""Prometheus text at /metrics: the API's requests and latency by route, and images by state (computed at
scrape time from storage and the instance). The GPU host's model metrics are the host's own."""
from __future__ import annotations

import time

import dagster as dg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from v2v_resources.storage import Home

from .status import count_states


class ImageStates:
    """A collector: `v2v_images{state=...}` on every scrape."""

    def __init__(self, home: Home, instance: dg.DagsterInstance):
        self.home, self.instance = home, instance

    def collect(self):
        g = GaugeMetricFamily("v2v_images", "Images by state (received, pending, running, done, failed)",
                              labels=["state"])
        for state, n in count_states(self.home, self.instance).items():
            g.add_metric([state], n)
        yield g


class Metrics:
    def __init__(self, home: Home, instance: dg.DagsterInstance):
        self.registry = CollectorRegistry()
        self.requests = Counter("v2v_api_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("v2v_api_request_seconds", "HTTP request latency by route", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.registry.register(ImageStates(home, instance))


def route_of(routes: list[BaseRoute], scope: Scope) -> str:
    """The route template (bounded label values), also for requests refused before routing."""
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route.path
    return "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_of(self.routes, scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - t0)
