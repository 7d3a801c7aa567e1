"""One OpenTelemetry trace spans the HTTP request, the database append, the publish and the consumer's work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from helpers import bearer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from povguard_platform.settings import Settings
from povguard_platform.telemetry import (
    ServerSpans,
    WhenExported,
    add_processor,
    context_from_traceparent,
    current_traceparent,
)
from povguard_platform.web import create_app
from povguard_platform_sample.service import SAMPLE
from povguard_tools.testing import eventually

EXPORTER = InMemorySpanExporter()


@pytest.fixture
async def traced(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SAMPLE, settings, span_processors=[SimpleSpanProcessor(EXPORTER)])
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        yield c


async def test_one_trace_from_request_to_consumer(traced: httpx.AsyncClient, settings: Settings) -> None:
    EXPORTER.clear()
    h = bearer(settings)
    r = await traced.post("/v1/samples", json={"name": "t", "township": "533123101"}, headers=h)
    assert r.status_code == 201

    def consumed() -> bool:
        return any(s.name == "consume SampleOpened" for s in EXPORTER.get_finished_spans())

    await eventually(consumed)
    spans = EXPORTER.get_finished_spans()
    server = next(s for s in spans if s.name == "POST /v1/samples")
    trace_id = server.context.trace_id
    names = {s.name for s in spans if s.context.trace_id == trace_id}
    assert {"POST /v1/samples", "eventstore.append", "publish SampleOpened", "consume SampleOpened"} <= names
    consume = next(s for s in spans if s.name == "consume SampleOpened")
    publish = next(s for s in spans if s.name == "publish SampleOpened")
    assert consume.context.trace_id == publish.context.trace_id == trace_id


def test_spans_are_recorded_only_once_something_takes_them() -> None:
    """Until an exporter or processor is added, spans are dropped unrecorded (nothing is built for nobody) yet keep
    their trace ids, so a traceparent still links a request to its events; once one is added, spans are recorded."""

    provider = TracerProvider(sampler=WhenExported())
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        assert not request.is_recording()
        assert request.get_span_context().is_valid
        traceparent = current_traceparent()
        assert traceparent is not None and format(request.get_span_context().trace_id, "032x") in traceparent
        with tracer.start_as_current_span("child", context=context_from_traceparent(traceparent)) as child:
            assert child.get_span_context().trace_id == request.get_span_context().trace_id
    exporter = InMemorySpanExporter()
    add_processor(provider, SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("recorded") as span:
        assert span.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["recorded"]


async def test_a_request_span_nobody_records_still_continues_the_callers_trace() -> None:
    """While spans are dropped, a request runs under a bare span of the caller's trace (its events carry it), not
    through the instrumented stack; once something takes spans, every request goes through that stack."""
    provider = TracerProvider(sampler=WhenExported())
    seen: list[str | None] = []

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_traceparent())

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        seen.append("traced")

    spans = ServerSpans(traced, plain, provider)
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await spans({"type": "http", "method": "GET", "headers": [(b"traceparent", caller.encode())]}, None, None)
    await spans({"type": "http", "method": "GET", "headers": []}, None, None)
    assert seen[0] is not None and seen[0].split("-")[1] == "0af7651916cd43dd8448eb211c80319c" and seen[0] != caller
    assert seen[1] is not None and "0af7651916cd43dd8448eb211c80319c" not in seen[1]  # a trace of its own
    add_processor(provider, SimpleSpanProcessor(InMemorySpanExporter()))
    await spans({"type": "http", "method": "GET", "headers": []}, None, None)
    assert seen[2:] == ["traced"]
