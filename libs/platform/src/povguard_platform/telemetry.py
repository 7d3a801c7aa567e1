"""OpenTelemetry: tracer setup, W3C trace context carried in event envelopes and NATS headers; JSON logs."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send

_propagator = TraceContextTextMapPropagator()


class WhenExported(Sampler):
    """Record spans only once something takes them (an exporter or a span processor); until then every span is
    dropped unrecorded. A dropped span still has its trace and span ids, so traceparents flow through requests and
    events exactly as before; what is saved is building, timing and ending a span nobody reads (the SDK's default,
    always on, did that for every request, batch and event). With an exporter, every trace is recorded as before."""

    def __init__(self) -> None:
        self.exporting = False
        self._recorded = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: otel_context.Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: trace.TraceState | None = None) -> SamplingResult:
        sampler = self._recorded if self.exporting else ALWAYS_OFF
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "WhenExported"


def setup_tracing(service: str, processors: list[SpanProcessor] | None = None) -> TracerProvider:
    """Install a tracer provider once per process. Exporters: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({"service.name": f"povguard-{service}"}),
                                  sampler=WhenExported())
        trace.set_tracer_provider(provider)
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
                from opentelemetry.sdk.trace.export import BatchSpanProcessor

                add_processor(provider, BatchSpanProcessor(OTLPSpanExporter()))
            except ImportError:
                logging.getLogger(__name__).warning("OTLP exporter not installed; traces stay local")
    for processor in processors or []:
        add_processor(provider, processor)
    return provider


def add_processor(provider: TracerProvider, processor: SpanProcessor) -> None:
    provider.add_span_processor(processor)
    if isinstance(provider.sampler, WhenExported):
        provider.sampler.exporting = True


class ServerSpans:
    """ASGI: the server span of each request. While spans are dropped unrecorded (`WhenExported` with nothing to
    take them) it is started here, directly under the caller's traceparent, around the plain middleware stack: the
    OpenTelemetry ASGI middleware would first find the route's template for the span's name (matching the path
    against every route), collect the request's attributes and time it for metrics nobody reads, about a fifth of
    a small GET's CPU. The span still has its ids, so a request's events carry its trace as before. Once spans
    are exported (or the provider is not ours) every request goes through `traced`, the instrumented stack."""

    def __init__(self, traced: ASGIApp, plain: ASGIApp, provider: TracerProvider) -> None:
        self.traced = traced
        self.plain = plain
        self.sampler = provider.sampler if isinstance(provider.sampler, WhenExported) else None
        self.tracer = provider.get_tracer(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.sampler is None or self.sampler.exporting:
            await self.traced(scope, receive, send)
            return
        parent = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                parent = context_from_traceparent(value.decode("latin-1"))
        with self.tracer.start_as_current_span(scope["method"], context=parent, kind=SpanKind.SERVER,
                                               record_exception=False, set_status_on_exception=False):
            await self.plain(scope, receive, send)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    return _extracted(traceparent)


@functools.lru_cache(maxsize=4096)
def _extracted(traceparent: str) -> otel_context.Context:
    # a batch's events mostly share their request's traceparent; a Context is immutable, so one serves them all
    return _propagator.extract({"traceparent": traceparent})


def span_name(verb: str, types: Iterable[str]) -> str:
    """A span over events: `publish HouseholdVisited`, or every type of a mixed run (bounded by the catalogue)."""
    return f"{verb} {', '.join(sorted(set(types)))}"


def context_from_headers(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    if not headers:
        return None
    tp = headers.get("ce-traceparent") or headers.get("traceparent")
    return context_from_traceparent(tp)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace id when a span is active."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
