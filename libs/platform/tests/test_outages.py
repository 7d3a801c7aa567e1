"""An outage is a 503, not a failure: while PostgreSQL is down every route answers 503 problem details with
Retry-After (never a 500, never text/plain), and it answers normally again once the database is back; while NATS is
down writes still land in the outbox and are published once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from helpers import bearer

from povguard_platform.actor import Role
from povguard_platform.roles import login_urls, provision
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_platform_sample.service import SAMPLE
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres
from povguard_tools.testing import eventually

TOWN = "533123101"


@pytest.fixture
async def own_servers(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, EmbeddedNats, Settings]]:
    """A PostgreSQL and a NATS of this test's own, so that stopping them harms nobody else."""
    pg, nats = EmbeddedPostgres(tmp_path / "pg", durable=False), EmbeddedNats(tmp_path / "nats")
    url = await asyncio.to_thread(pg.start)
    nats_url = await asyncio.to_thread(nats.start)
    await provision(url, ["sample"])  # the sample service's owner and runtime roles, as `povguard db provision` does
    runtime_urls, owner_urls = login_urls(url, ["sample"])
    try:
        yield pg, nats, Settings(environment="test", database_url=url, nats_url=nats_url, database_urls=runtime_urls,
                                 migration_database_urls=owner_urls)
    finally:
        await asyncio.to_thread(nats.stop)
        await asyncio.to_thread(pg.stop)


@pytest.mark.timeout(180)
async def test_a_database_outage_is_503_with_retry_after_and_then_it_recovers(
        own_servers: tuple[EmbeddedPostgres, EmbeddedNats, Settings]) -> None:
    pg, _, settings = own_servers
    app = create_app(SAMPLE, settings)
    headers = bearer(settings, Role.COLLECTOR, TOWN)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://sample") as client:
        assert (await client.post("/v1/samples", json={"name": "a", "township": TOWN},
                                  headers=headers)).status_code == 201
        await asyncio.to_thread(pg.stop)
        for method, path, body in [("POST", "/v1/samples", {"name": "b", "township": TOWN}),
                                   ("GET", "/v1/ops/dead-letters", None)]:
            r = await client.request(method, path, json=body, headers=bearer(settings, Role.ADMIN, "533123")
                                     if "ops" in path else headers)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["retry-after"] == "5" and r.json()["type"].endswith("/unavailable")
        assert (await client.get("/readyz")).status_code == 503
        await asyncio.to_thread(pg.start)

        async def back() -> bool:
            r = await client.post("/v1/samples", json={"name": "c", "township": TOWN}, headers=headers)
            return r.status_code == 201

        await eventually(back, within=30, interval=0.5)
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.timeout(180)
async def test_writes_during_a_bus_outage_go_to_the_outbox_and_are_published_after(
        own_servers: tuple[EmbeddedPostgres, EmbeddedNats, Settings]) -> None:
    _, nats, settings = own_servers
    app = create_app(SAMPLE, settings)
    headers = bearer(settings, Role.COLLECTOR, TOWN)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://sample") as client:
            await asyncio.to_thread(nats.stop)
            r = await client.post("/v1/samples", json={"name": "during", "township": TOWN}, headers=headers)
            assert r.status_code == 201, r.text
            await asyncio.to_thread(nats.start)

            async def published() -> bool:
                js = runtime.nc.jetstream() if runtime.nc and runtime.nc.is_connected else None
                if js is None:
                    return False
                info = await js.stream_info(settings.stream_name)
                return bool(info.state.messages >= 1)

            await eventually(published, within=60, interval=0.5)
