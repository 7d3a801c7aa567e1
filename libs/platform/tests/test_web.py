"""The HTTP edge every service shares: health, readiness, metrics, OpenAPI, identity from the bearer token,
authorisation by role and org unit, and RFC 9457 problem details that name every bad field."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import jwt
import pytest
from helpers import bearer
from sqlalchemy import text

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import decode_token, issue_token
from povguard_platform.problems import Unauthorized
from povguard_platform.settings import Settings

TOWN = "533123101"


async def test_health_readiness_metrics_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "nats": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "povguard_http_requests_total" in metrics.text
    spec = (await client.get("/openapi.json")).json()
    assert {"open_sample", "list_dead_letters", "readyz"} <= {
        op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert (await client.get("/docs")).status_code == 200


async def test_readiness_fails_when_nats_is_gone(client: httpx.AsyncClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert 'povguard_ready{service="sample"} 1.0' in (await client.get("/metrics")).text
    await runtime.nc.close()
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["nats"] == "disconnected"
    # each scrape evaluates readiness, so the alert "readiness failing" needs no other prober
    assert 'povguard_ready{service="sample"} 0.0' in (await client.get("/metrics")).text


async def test_nats_url_may_list_a_clusters_seeds(nats_url: str) -> None:
    from povguard_platform.bus import connect
    from povguard_tools.runtime.servers import free_port

    nc = await connect(f"nats://127.0.0.1:{free_port()}, {nats_url}", "seeds")  # the first seed is down
    try:
        assert nc.is_connected and nc.connected_url is not None and nc.connected_url.port == int(
            nats_url.rsplit(":", 1)[1])
    finally:
        await nc.close()


async def test_missing_bad_or_expired_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    body = {"name": "a", "township": TOWN}
    actor = Actor(user="x", role=Role.COLLECTOR, org=TOWN)
    other = Settings(**{**settings.model_dump(), "jwt_secret": "another-secret-that-is-at-least-32-bytes"})
    expired = issue_token(actor, settings, ttl=timedelta(seconds=-1))
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer " + expired},
                    {"Authorization": "Bearer " + issue_token(actor, other)}):
        r = await client.post("/v1/samples", json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "Bearer"


async def test_a_token_is_verified_once_while_valid_and_refused_after_it_expires(
        client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    verified = 0
    real_decode = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal verified
        verified += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    token = issue_token(Actor(user="x", role=Role.COLLECTOR, org=TOWN), settings, ttl=timedelta(seconds=2))
    headers = {"Authorization": "Bearer " + token}
    for _ in range(3):
        assert (await client.get("/v1/samples/none", headers=headers)).status_code == 404  # past the token check
    assert verified == 1  # the signature and claims once; then the brief cache of verified tokens
    other = Settings(**{**settings.model_dump(), "jwt_secret": "another-secret-that-is-at-least-32-bytes"})
    with pytest.raises(Unauthorized):  # cached under the secret that verified it, not under any other
        decode_token(token, other)
    await asyncio.sleep(2.2)
    r = await client.get("/v1/samples/none", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


async def test_a_token_names_a_division_and_a_department_its_department(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """Reach is decided by the org unit alone: a token's org is always a division code. A department's token names
    the county it serves (org) and its department (dept); the old form, org = the department's name, is refused,
    and so is the services' own system role."""
    body = {"name": "a", "township": TOWN}
    for actor in (Actor(user="公安接口", role=Role.DEPARTMENT, org="公安"),
                  Actor(user="公安接口", role=Role.DEPARTMENT, org="533123"),
                  Actor(user="公安接口", role=Role.DEPARTMENT, org="533123", dept="不是部门"),
                  Actor(user="x", role=Role.COLLECTOR, org=TOWN, dept="公安"),
                  Actor(user="povguard", role=Role.SYSTEM, org="533123")):
        r = await client.post("/v1/samples", json=body, headers={"Authorization": "Bearer " + issue_token(
            actor, settings)})
        assert r.status_code == 401, actor
    department = Actor(user="公安接口", role=Role.DEPARTMENT, org="533123", dept="公安")
    r = await client.get("/v1/ops/dead-letters", headers={"Authorization": "Bearer " + issue_token(
        department, settings)})
    assert r.status_code == 403 and r.json()["code"] == "role"  # a valid token, a role that may not read this


async def test_role_or_org_that_may_not_act_is_403(client: httpx.AsyncClient, settings: Settings) -> None:
    body = {"name": "a", "township": TOWN}
    r = await client.post("/v1/samples", json=body, headers=bearer(settings, Role.INSPECTOR, "533123"))
    assert r.status_code == 403 and "inspector" in r.json()["detail"]
    r = await client.post("/v1/samples", json=body, headers=bearer(settings, Role.COLLECTOR, "533123102"))
    assert r.status_code == 403 and "533123102" in r.json()["detail"]
    r = await client.post("/v1/samples", json=body, headers=bearer(settings, Role.COLLECTOR, "533123"))
    assert r.status_code == 201  # a county-level org covers its townships
    r = await client.post("/v1/samples", json=body, headers=bearer(settings, Role.ADMIN, "110101"))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"  # administrators too: their own county


async def test_every_event_carries_the_actor_from_the_token(client: httpx.AsyncClient, settings: Settings) -> None:
    r = await client.post("/v1/samples", json={"name": "a", "township": TOWN},
                          headers=bearer(settings, Role.VILLAGE_CLERK, TOWN, user="zhang.san"))
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        actor = (await conn.execute(text("SELECT actor FROM sample.events WHERE stream_id = :i"),
                                    {"i": r.json()["id"]})).scalar_one()
    assert actor == {"user": "zhang.san", "role": "village_clerk", "org": TOWN}


async def test_invalid_input_names_every_bad_field_and_writes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    r = await client.post("/v1/samples", json={"name": "", "township": "53312"}, headers=bearer(settings))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/invalid-input") and problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {"body.name", "body.township"}
    r = await client.post("/v1/samples/x/increments", json={"by": 0, "note": "n" * 300}, headers=bearer(settings))
    assert {e["field"] for e in r.json()["errors"]} == {"body.by", "body.note", "body.expected_version"}
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sample.events"))).scalar_one() == 0


async def test_stale_version_is_409_and_reads_can_go_back_in_time(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    h = bearer(settings)
    s = (await client.post("/v1/samples", json={"name": "a", "township": TOWN}, headers=h)).json()
    ok = await client.post(f"/v1/samples/{s['id']}/increments", json={"by": 2, "expected_version": 1}, headers=h)
    assert ok.json()["version"] == 2
    stale = await client.post(f"/v1/samples/{s['id']}/increments", json={"by": 3, "expected_version": 1},
                              headers=h)
    assert stale.status_code == 409
    assert stale.json()["expected_version"] == 1 and stale.json()["actual_version"] == 2
    old = await client.get(f"/v1/samples/{s['id']}", params={"version": 1}, headers=h)
    assert old.json()["total"] == 0
    missing = await client.get("/v1/samples/nope", headers=h)
    assert missing.status_code == 404 and missing.json()["title"] == "Not found"


async def test_asyncapi_documents_published_and_consumed_events(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/asyncapi.json")).json()  # generated by FastStream
    assert doc["asyncapi"] == "3.0.0"
    opened = doc["channels"]["SampleOpened"]
    assert opened["address"] == "ev.sample.SampleOpened.{partition}.{township}"
    assert set(opened["parameters"]) == {"partition", "township"}
    message = doc["components"]["messages"]["SampleOpened:Message"]
    assert message["payload"] == {"$ref": "#/components/schemas/SampleOpened"}
    assert set(doc["components"]["schemas"]["SampleOpened"]["required"]) == {"name", "township"}
    assert "ce-traceparent" in message["headers"]["properties"]
    assert message["correlationId"] == {"location": "$message.header#/ce-correlationid"}
    assert doc["components"]["messages"]["SampleIncremented:Message"]["x-event-version"] == 2
    assert doc["operations"]["SampleOpened"]["action"] == "send"
    # the consumer receives only the types it handles, in every partition
    received = {doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
                for op in doc["operations"].values() if op["action"] == "receive"}
    assert received == {"ev.sample.SampleOpened.*.*", "ev.sample.SampleIncremented.*.*"}
