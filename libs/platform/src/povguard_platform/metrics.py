"""Prometheus metrics shared by every service (each service is its own process, so the default registry is its own)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVENTS_APPENDED = Counter("povguard_events_appended_total", "Events appended to the event store", ["schema"])
RELAY_PUBLISHED = Counter("povguard_relay_published_total", "Events the relay published to JetStream", ["schema"])
RELAY_DELAY = Histogram(
    "povguard_relay_delay_seconds",
    "Delay from an event's commit to its acknowledgement by JetStream",
    ["schema"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RELAY_LAG = Gauge("povguard_relay_lag_events", "Events committed but not yet published", ["schema"])
CONSUMER_APPLIED = Counter("povguard_consumer_applied_total", "Events applied by a consumer", ["consumer"])
CONSUMER_DUPLICATES = Counter(
    "povguard_consumer_duplicates_total", "Redelivered or duplicated events skipped by the inbox", ["consumer"]
)
CONSUMER_FAILURES = Counter("povguard_consumer_failures_total", "Handler failures (each retry counts)", ["consumer"])
CONSUMER_LAG = Gauge("povguard_consumer_lag_messages", "Messages pending for a durable consumer", ["consumer"])
DEAD_LETTERS = Gauge("povguard_dead_letters", "Unresolved dead letters", ["consumer"])
HTTP_REQUESTS = Counter(
    "povguard_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram("povguard_http_request_seconds", "HTTP request latency", ["service", "route"])
READY = Gauge("povguard_ready", "1 when the service is ready (database, migrations, NATS), evaluated at each scrape",
              ["service"])


class RequestMetrics:
    """ASGI middleware counting requests (method, route template, status) and timing them per route. Pure ASGI:
    Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) runs each request through a task group and memory
    streams, which cost more than the rest of a small GET's own work."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            # the router put the matched route into the scope (the template, not the path: bounded labels)
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, path).observe(time.perf_counter() - started)
