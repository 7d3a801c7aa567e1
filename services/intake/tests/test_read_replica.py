"""A read replica (DATABASE_READ_URL): a real streaming standby made with pg_basebackup. The household list reads
it, the read of one household (what a client does right after its write, and where the ETag for If-Match comes from)
reads the primary. Pausing the standby's WAL replay makes the difference visible: a household registered meanwhile
is found at once by its own read, and is missing from the list until replay resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from intake_helpers import GROUP, auth, household_body
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from povguard_intake.service import SERVICE
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_tools.runtime.servers import EmbeddedPostgres, EmbeddedStandby
from povguard_tools.testing import eventually


@pytest.fixture
async def standby(postgres: EmbeddedPostgres | None, settings: Settings, tmp_path: Path,
                  ) -> AsyncIterator[EmbeddedStandby]:
    if postgres is None:
        pytest.skip("needs the embedded PostgreSQL (DATABASE_URL points at another server)")
    server = EmbeddedStandby(postgres, tmp_path / "standby")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def listed(client: httpx.AsyncClient, settings: Settings) -> set[str]:
    r = await client.get("/v1/households", params={"org": GROUP, "limit": 500}, headers=auth(settings))
    assert r.status_code == 200, r.text
    return {h["household_id"] for h in r.json()["data"]}


async def test_lists_read_the_replica_and_a_writes_own_read_stays_on_the_primary(
        standby: EmbeddedStandby, settings: Settings) -> None:
    replica = settings.model_copy(update={"database_read_urls": {
        "intake": standby.replica_url(settings.database_url_for("intake"))}})
    app = create_app(SERVICE, replica)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://i") as c:
        runtime = app.state.runtime
        async with runtime.read_engine.connect() as conn:  # the service's own role, on the standby
            assert (await conn.execute(text("SELECT pg_is_in_recovery(), current_user"))).one() == (
                True, "povguard_intake")
        async with runtime.engine.connect() as conn:
            assert (await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is False

        async def migrated() -> bool:  # the standby has replayed the schema and its grants that startup made
            try:
                async with runtime.read_engine.connect() as conn:
                    await conn.execute(text("SELECT 1 FROM intake.households LIMIT 1"))
                return True
            except DBAPIError:
                return False

        await eventually(migrated, within=60)

        first = await c.post("/v1/households", json=household_body(), headers=auth(settings))
        assert first.status_code == 201, first.text
        await eventually(lambda: _has(c, settings, first.json()["household_id"]))  # the standby caught up

        standby.psql("SELECT pg_wal_replay_pause()")
        second = await c.post("/v1/households", json=household_body(), headers=auth(settings))
        assert second.status_code == 201, second.text
        mine = await c.get(f"/v1/households/{second.json()['household_id']}", headers=auth(settings))
        assert mine.status_code == 200 and mine.headers["etag"] == '"1"'  # its own read: the primary
        assert await listed(c, settings) == {first.json()["household_id"]}  # the list: the paused replica

        standby.psql("SELECT pg_wal_replay_resume()")
        await eventually(lambda: _has(c, settings, second.json()["household_id"]))


async def _has(client: httpx.AsyncClient, settings: Settings, household_id: str) -> bool:
    return household_id in await listed(client, settings)
