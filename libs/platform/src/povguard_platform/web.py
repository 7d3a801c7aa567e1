"""The FastAPI app factory every service uses: lifespan (migrations, bus, relay, consumers), health, readiness,
Prometheus metrics, problem details, the edge checks (body limits, token before body, storable input), tracing,
and the operator API for dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import SpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from povguard_platform.bus import connect, ensure_stream
from povguard_platform.consumer import Consumer
from povguard_platform.edge import BodyGuard, storable_input
from povguard_platform.metrics import READY, RequestMetrics
from povguard_platform.migrations import is_at_head, migrate
from povguard_platform.ops import ops_router
from povguard_platform.problems import PROBLEM_RESPONSES, install_problem_handlers
from povguard_platform.relay import Relay
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_platform.settings import Settings, asyncpg_dsn, get_settings
from povguard_platform.telemetry import ServerSpans, setup_tracing

log = logging.getLogger(__name__)


async def start_runtime(runtime: ServiceRuntime) -> None:
    """Migrate (as the schema's owner), connect to NATS, declare the stream, start the relay and the consumers (as
    the service's own role: runtime.engine)."""
    d, settings = runtime.definition, runtime.settings
    await migrate(settings.migration_url_for(d.name), d.migrations_dir, d.name)
    runtime.nc = await connect(settings.nats_url, name=f"povguard-{d.name}")
    runtime.js = runtime.nc.jetstream()
    await ensure_stream(runtime.js, settings.stream_name, settings.duplicate_window_seconds,
                        settings.stream_replicas)
    if not settings.run_background:
        return
    runtime.relay = Relay(runtime.engine, runtime.store, runtime.js, settings.stream_name,
                          partitions=settings.partitions)
    dsn = asyncpg_dsn(settings.database_url_for(d.name))
    runtime.tasks.append(asyncio.create_task(runtime.relay.run(dsn, runtime.stop), name=f"{d.name}-relay"))
    for work in d.background:
        runtime.tasks.append(asyncio.create_task(work(runtime), name=f"{d.name}-{work.__name__}"))
    for spec in d.consumers:
        consumer = Consumer(spec, d.name, runtime.engine, runtime.js, settings.stream_name, settings.partitions)
        runtime.consumers.append(consumer)
        runtime.tasks.append(asyncio.create_task(consumer.run(runtime.stop), name=f"{d.name}-{spec.name}"))


async def stop_runtime(runtime: ServiceRuntime) -> None:
    runtime.stop.set()
    if runtime.tasks:
        _, pending = await asyncio.wait(runtime.tasks, timeout=3)
        for task in pending:
            task.cancel()
    if runtime.nc is not None and not runtime.nc.is_closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runtime.nc.drain(), 5)
    await runtime.engine.dispose()
    if runtime.read_engine is not runtime.engine:
        await runtime.read_engine.dispose()


def create_app(
    definition: ServiceDef,
    settings: Settings | None = None,
    span_processors: list[SpanProcessor] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    provider = setup_tracing(definition.name, span_processors)
    runtime = ServiceRuntime.create(definition, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_runtime(runtime)
        app.state.started = True
        try:
            yield
        finally:
            await stop_runtime(runtime)

    app = FastAPI(
        title=definition.title,
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from local assets: county networks are often offline
        redoc_url=None,
        responses=PROBLEM_RESPONSES,
        dependencies=[Depends(storable_input)],
        # FastAPI's own spans and metrics stay off: the server span is OpenTelemetry's instrumentation's (below),
        # which turned them off anyway, after checking for it on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    _document_problems(app)
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(health_router(definition))
    install_offline_docs(app, definition.title)
    app.include_router(ops_router())
    for router in definition.routers():
        app.include_router(router)
    app.add_middleware(BodyGuard, settings=settings)

    app.add_middleware(RequestMetrics, service=definition.name)
    # one server span per request: the per-message "http send"/"http receive" spans doubled the tracing cost of a
    # read and say nothing the server span does not; while no span is recorded, a bare one (ServerSpans)
    plain = app.build_middleware_stack
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    traced = app.build_middleware_stack
    app.build_middleware_stack = lambda: ServerSpans(traced(), plain(), provider)  # type: ignore[method-assign]
    return app


DOCS_ASSETS = "/docs-assets"


def install_offline_docs(app: FastAPI, title: str) -> None:
    """/docs (Swagger UI) and /redoc with their scripts, styles and icon served by the service itself (the packaged
    copies of fastapi-offline), never from a CDN, and no web fonts."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    icon = f"{DOCS_ASSETS}/favicon.png"
    # ReDoc's "powered by" footer loads its logo from its CDN: the script is served with the local icon instead
    redoc_js = (assets / "redoc.standalone.js").read_text(encoding="utf-8").replace(
        "https://cdn.redoc.ly/redoc/logo-mini.svg", icon)

    @app.get("/redoc.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(redoc_js, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "max-age=3600"})

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} — API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css", swagger_favicon_url=icon,
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{title} — API",
                              redoc_js_url="/redoc.js", redoc_favicon_url=icon,
                              with_google_fonts=False)


def _document_problems(app: FastAPI) -> None:
    """Routes that describe a status of their own (409: "the case is at another stage") keep the description but
    still say that the body is a problem details document, like every other error."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            for path, operations in spec["paths"].items():
                for op in operations.values():
                    for status, documented in PROBLEM_RESPONSES.items():
                        answer = op.get("responses", {}).get(str(status))
                        if answer is not None and path != "/readyz":
                            answer.setdefault("content", {}).setdefault("application/problem+json",
                                                                        documented["content"]["application/problem+json"])
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


READINESS_TIMEOUT = 3.0  # seconds: an unreachable database answers "not ready" before a probe or scrape times out


async def readiness(runtime: ServiceRuntime) -> dict[str, str]:
    """The readiness checks (database, migrations, nats), each "ok" or what failed."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            at_head = await is_at_head(conn, runtime.definition.migrations_dir, runtime.definition.name)
            checks["migrations"] = "ok" if at_head else "pending"

    try:
        await asyncio.wait_for(database(), READINESS_TIMEOUT)
    except Exception as exc:
        checks.setdefault("database", f"error: {type(exc).__name__}")
        checks.setdefault("migrations", "unknown")
    connected = runtime.nc is not None and runtime.nc.is_connected
    checks["nats"] = "ok" if connected else "disconnected"
    return checks


def health_router(definition: ServiceDef) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", operation_id="healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @router.get("/readyz", operation_id="readyz", summary="NATS and the database are reachable, migrations applied",
                responses={503: {"description": "Not ready; the body says which check failed"}})
    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness(request.app.state.runtime)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @router.get("/asyncapi.json", operation_id="asyncapi", summary="AsyncAPI 3.0: the events this service publishes "
                "and consumes")
    async def asyncapi() -> dict[str, Any]:
        from povguard_platform.asyncapi import asyncapi_document

        return asyncapi_document(definition)  # never the configured NATS_URL: it may carry credentials

    @router.get("/metrics", operation_id="metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        # Prometheus is the prober: each scrape evaluates readiness, and the service's own database-backed gauges.
        runtime: ServiceRuntime = request.app.state.runtime
        checks = await readiness(runtime)
        READY.labels(definition.name).set(1 if all(v == "ok" for v in checks.values()) else 0)
        if definition.collect is not None:
            with contextlib.suppress(Exception):  # a database outage shows as povguard_ready 0, not a failed scrape
                await asyncio.wait_for(definition.collect(runtime), READINESS_TIMEOUT)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
