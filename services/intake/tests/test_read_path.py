"""The registry's read path under load (issue 20), against real PostgreSQL and NATS: a masked read is one SELECT of
the read model and no other round trip; a list page shows each household exactly as its masked read does; many
requests at once reuse the pool's connections; and a pooled connection the server closed is replaced before a
request can fail on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from intake_helpers import GROUP, auth, household_body, visit_form
from sqlalchemy import event

from povguard_intake.service import SERVICE
from povguard_platform.actor import Role
from povguard_platform.service import POOL_SIZE
from povguard_platform.settings import Settings
from povguard_platform.web import create_app


class Traffic:
    """What the intake engine sends to PostgreSQL: the SQL statements, and every other message asyncpg sends as a
    simple query (a pool pre-ping, BEGIN, COMMIT, ROLLBACK); and how many connections it opened."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.simple: list[str] = []
        self.opened = 0

    def clear(self) -> None:
        self.statements.clear()
        self.simple.clear()


@pytest.fixture
async def quiet(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Traffic]]:
    """The intake API without its relay and consumers (so that only the requests use the pool), its engine
    watched from its first connection on."""
    app = create_app(SERVICE, settings.model_copy(update={"run_background": False}))
    traffic = Traffic()

    def connected(dbapi_connection: Any, _record: Any) -> None:
        traffic.opened += 1
        dbapi_connection.driver_connection.add_query_logger(lambda q: traffic.simple.append(q.query))

    engine = app.state.runtime.engine.sync_engine
    event.listen(engine, "connect", connected)
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: traffic.statements.append(sql))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://i") as c:
        yield c, traffic


async def registered(client: httpx.AsyncClient, settings: Settings, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        r = await client.post("/v1/households", json=household_body(), headers=auth(settings))
        assert r.status_code == 201, r.text
        ids.append(r.json()["household_id"])
    return ids


async def test_a_masked_read_is_one_select_and_no_other_round_trip(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings) -> None:
    client, traffic = quiet
    [household_id] = await registered(client, settings, 1)
    traffic.clear()
    r = await client.get(f"/v1/households/{household_id}", headers=auth(settings))
    assert r.status_code == 200 and r.json()["household_id"] == household_id
    assert len(traffic.statements) == 1 and "FROM intake.households" in traffic.statements[0]
    assert traffic.simple == []  # no pre-ping, no BEGIN/COMMIT around a read
    traffic.clear()
    r = await client.get("/v1/households", params={"org": GROUP, "limit": 500}, headers=auth(settings))
    assert r.status_code == 200 and [h["household_id"] for h in r.json()["data"]] == [household_id]
    assert len(traffic.statements) == 1 and traffic.simple == []


async def test_an_unmasked_read_is_still_recorded_in_the_same_transaction(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings) -> None:
    client, traffic = quiet
    [household_id] = await registered(client, settings, 1)
    traffic.clear()
    r = await client.get(f"/v1/households/{household_id}", params={"include_personal": "true"},
                         headers=auth(settings))
    assert r.status_code == 200 and r.json()["personal_data"] == "shown"
    # the PersonalDataRead event (appended through asyncpg itself) between the read's BEGIN and COMMIT
    assert traffic.simple[0].startswith("BEGIN") and traffic.simple[-1].startswith("COMMIT")
    assert any("INSERT INTO intake.events" in q for q in traffic.simple[1:-1])


async def test_a_list_page_shows_each_household_as_its_masked_read(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings) -> None:
    client, _ = quiet
    ids = await registered(client, settings, 3)
    r = await client.post(f"/v1/households/{ids[0]}/visits", json={"form": visit_form()},
                          headers=auth(settings, Role.COLLECTOR))
    assert r.status_code == 201, r.text
    page = await client.get("/v1/households", params={"org": GROUP, "limit": 500}, headers=auth(settings))
    assert page.status_code == 200
    listed = {h["household_id"]: h for h in page.json()["data"]}
    assert set(listed) == set(ids)
    for household_id in ids:
        one = await client.get(f"/v1/households/{household_id}", headers=auth(settings))
        assert listed[household_id] == one.json()
    assert listed[ids[0]]["visits"] and "*" in listed[ids[0]]["members"][0]["facts"]["id_number"]


async def test_a_read_of_the_stored_row_equals_the_household_folded_from_its_events(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings) -> None:
    """The current household is shown from its stored row without validating it again; a read as of a version is
    folded from the events and goes through the models: both show the same, masked and (audited) unmasked."""
    client, _ = quiet
    [household_id] = await registered(client, settings, 1)
    collector = auth(settings, Role.COLLECTOR)
    r = await client.post(f"/v1/households/{household_id}/visits", json={"form": visit_form()}, headers=collector)
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/households/{household_id}/leads", headers=collector,
                          json={"source": "干部排查", "lead_date": "2022-05-09", "note": "因病"})
    assert r.status_code == 201, r.text
    for params, masked in (({}, True), ({"include_personal": "true"}, False)):
        now = await client.get(f"/v1/households/{household_id}", params=params, headers=auth(settings))
        assert now.status_code == 200 and now.headers["content-type"] == "application/json"
        version = now.json()["version"]
        assert now.headers["etag"] == f'"{version}"' and version == 3
        folded = await client.get(f"/v1/households/{household_id}", params={**params, "version": version},
                                  headers=auth(settings))
        assert folded.status_code == 200 and now.json() == folded.json()
        facts = now.json()["members"][0]["facts"]
        assert ("*" in facts["id_number"] and facts["health"] == ["***"]) is masked
        assert now.json()["visits"][0]["visit_date"] == "2022-05-08" and now.json()["leads"][0]["note"] == "因病"


async def test_many_requests_at_once_reuse_the_pools_connections(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings) -> None:
    client, traffic = quiet
    ids = await registered(client, settings, 5)
    headers = auth(settings)
    for _ in range(3):  # bursts of more requests than the pool holds
        answers = await asyncio.gather(*(client.get(f"/v1/households/{ids[i % 5]}", headers=headers)
                                         for i in range(3 * POOL_SIZE)))
        assert {a.status_code for a in answers} == {200}
    # an overflow connection is closed when it comes back: bursts beyond the pool then opened one per request
    assert traffic.opened <= POOL_SIZE


async def test_a_connection_the_server_closed_is_replaced_before_use(
        quiet: tuple[httpx.AsyncClient, Traffic], settings: Settings, database_url: str) -> None:
    client, traffic = quiet
    ids = await registered(client, settings, 1)
    opened = traffic.opened
    admin = await asyncpg.connect(database_url)
    try:  # what a PostgreSQL restart or an administrator does to the service's idle connections
        ended = await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE usename = 'povguard_intake'")
    finally:
        await admin.close()
    assert ended >= 1
    await asyncio.sleep(0.5)  # the event loop reads each closed socket's EOF
    r = await client.get(f"/v1/households/{ids[0]}", headers=auth(settings))
    assert r.status_code == 200, r.text
    assert traffic.opened > opened
