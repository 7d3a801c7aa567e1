"""Text and integers at the edge, and body sizes, through the public APIs of the running services (real PostgreSQL
and NATS): what an outside tester sent that used to be a 500 text/plain is now a problem naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
from intake_helpers import auth, household_body, member, visit_form
from sqlalchemy import text

from povguard_platform.actor import Role
from povguard_platform.api import INT64_MAX
from povguard_platform.serve import service_definitions
from povguard_platform.settings import MiB, Settings
from povguard_platform.web import create_app

PROBLEM = "application/problem+json"
BIG = str(2**64)
TOWN, VILLAGE = "533123101", "533123101201"


@asynccontextmanager
async def served(name: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service_definitions()[name], settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def events(client: httpx.AsyncClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        count: int = (await conn.execute(text(f"SELECT count(*) FROM {runtime.schema}.events"))).scalar_one()
    return count


def fields(r: httpx.Response) -> list[str]:
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (r.status_code, r.text)
    return [e["field"] for e in r.json()["errors"]]


class Upload:
    """A streamed request body of `size` spaces that counts how much of it the server pulled."""

    def __init__(self, size: int, chunk: int = MiB) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            n = min(self.chunk, self.size - self.sent)
            self.sent += n
            yield b" " * n


async def test_nul_in_a_body_query_or_path_is_422_naming_the_field_and_nothing_is_written(
    settings: Settings,
) -> None:
    clerk, collector = auth(settings), auth(settings, Role.COLLECTOR)
    async with served("intake", settings) as intake:
        body = household_body()
        body["members"][0]["name"] = "岳\x00老三"
        assert fields(await intake.post("/v1/households", json=body, headers=clerk)) == ["body.members.0.name"]
        items: list[dict[str, Any]] = [{"household_id": "h1", "form": visit_form(collector="张\x00")}]
        r = await intake.post("/v1/batches/visits", json={"items": items}, headers=collector)
        assert fields(r) == ["body.items.0.form.collector"]
        assert fields(await intake.get("/v1/households", params={"cursor": "\x00"}, headers=clerk)) == ["query.cursor"]
        assert fields(await intake.get("/v1/households/a%00b", headers=clerk)) == ["path.household_id"]
        assert await events(intake) == 0
    async with served("review", settings) as review:
        r = await review.post("/v1/cases/c1/objections", headers=clerk,
                              json={"acted_on": "2022-06-01", "reason": "收入\x00不实", "raised_by": "\x00"})
        assert fields(r) == ["body.reason", "body.raised_by"]
        assert fields(await review.get("/v1/cases", params={"village": "\x00"}, headers=clerk)) == ["query.village"]
        assert fields(await review.get("/v1/cases/%00", headers=clerk)) == ["path.case_id"]
        assert await events(review) == 0
    async with served("support", settings) as support:
        r = await support.put("/v1/plans/h1/cadre", json={"cadre": "李\x00"}, headers=clerk)
        assert fields(r) == ["body.cadre"]
        assert fields(await support.get("/v1/plans/h%001", headers=clerk)) == ["path.household_id"]
        assert await events(support) == 0
    async with served("assessment", settings) as assessment:
        assert fields(await assessment.get("/v1/assessments/%00", headers=clerk)) == ["path.household_id"]
    async with served("audit", settings) as audit:
        inspector = auth(settings, Role.INSPECTOR, "533123")
        r = await audit.get("/v1/audit/entries", params={"household": "h\x00", "action": "\x00"}, headers=inspector)
        assert fields(r) == ["query.household", "query.action"]


async def test_integers_beyond_64_bits_are_422_naming_the_field(settings: Settings) -> None:
    admin = auth(settings, Role.ADMIN, "533123")
    async with served("intake", settings) as intake:
        assert fields(await intake.get("/v1/ops/dead-letters", params={"after": BIG}, headers=admin)) == ["query.after"]
        assert fields(await intake.post(f"/v1/ops/dead-letters/{BIG}/retry", headers=admin)) == [
            "path.dead_letter_id"]
        hid = (await intake.post("/v1/households", json=household_body(), headers=auth(settings))).json()[
            "household_id"]
        written = await events(intake)
        r = await intake.get(f"/v1/households/{hid}", params={"version": BIG}, headers=auth(settings))
        assert fields(r) == ["query.version"]
        r = await intake.get(f"/v1/households/{hid}", params={"version": str(2**40)}, headers=auth(settings))
        assert r.status_code == 200 and r.headers["etag"] == '"1"'  # beyond 32 bits but within 64: every version
        baby = {"facts": member("之孙子", birth=date(2022, 1, 5), education=None, school_status="学龄前儿童",
                                labour_skill="无劳动力", phone=None, name="岳小小"),
                "reason": "新生儿", "effective": "2022-01-05"}
        r = await intake.post(f"/v1/households/{hid}/members", json=baby, headers={**auth(settings), "If-Match": BIG})
        assert fields(r) == ["header.if-match"]
        r = await intake.post(f"/v1/households/{hid}/members", json=baby,
                              headers={**auth(settings), "If-Match": f'"{2**40}"'})
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        items = [{"household_id": hid, "expected_version": 2**64, "form": visit_form()}]
        r = await intake.post("/v1/batches/visits", json={"items": items}, headers=auth(settings, Role.COLLECTOR))
        assert fields(r) == ["body.items.0.expected_version"]
        assert await events(intake) == written
    async with served("audit", settings) as audit:
        inspector = auth(settings, Role.INSPECTOR, "533123")
        for path in ("/v1/audit/entries", "/v1/audit/findings"):
            assert fields(await audit.get(path, params={"cursor": BIG}, headers=inspector)) == ["query.cursor"]
        r = await audit.post(f"/v1/audit/entries/{BIG}/redaction", params={"reason": "x"}, headers=admin)
        assert fields(r) == ["path.index"]
        r = await audit.get("/v1/audit/proofs/consistency", params={"first": "1", "second": BIG}, headers=inspector)
        assert fields(r) == ["query.second"]


async def test_every_integer_parameter_of_every_service_fits_64_bits() -> None:
    settings = Settings(environment="test")
    for name, definition in service_definitions().items():
        spec = create_app(definition, settings).openapi()
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                for p in operation.get("parameters", []):
                    schema = p["schema"]
                    for s in [schema, *schema.get("anyOf", [])]:
                        if s.get("type") == "integer":
                            assert s.get("maximum", INT64_MAX + 1) <= INT64_MAX, (name, path, p["name"])


async def test_a_60_mb_body_is_413_before_it_is_read_on_every_service(settings: Settings) -> None:
    size = 60 * 1000 * 1000
    bureau = auth(settings, Role.COUNTY_BUREAU, "533123")
    posts = {"intake": "/v1/batches/visits", "review": "/v1/batches/appraisal", "support": "/v1/batches/plans",
             "audit": "/v1/audit/checkpoints/1/cosignatures", "assessment": "/v1/ops/dead-letters/1/retry"}
    for name, path in posts.items():
        async with served(name, settings) as client:
            for token in ({}, bureau):
                body = Upload(size)
                r = await client.post(path, content=body, headers={
                    **token, "Content-Type": "application/json", "Content-Length": str(size)})
                assert r.status_code == 413 and r.headers["content-type"] == PROBLEM, (name, r.text)
                assert body.sent == 0, name
            if name != "assessment":  # a route that takes a body, sent chunked: refused once past the limit
                body = Upload(size)
                r = await client.post(path, content=body, headers={**bureau, "Content-Type": "application/json"})
                assert r.status_code == 413, (name, r.text)
                assert settings.max_body_bytes < body.sent <= settings.max_body_bytes + MiB, name
            assert await events(client) == 0


async def test_an_import_beyond_the_upload_limit_is_413_before_it_is_read(settings: Settings) -> None:
    size = settings.max_upload_bytes + 1
    async with served("intake", settings) as intake:
        body = Upload(size)
        r = await intake.post("/v1/imports", content=body, headers={
            **auth(settings, Role.COUNTY_BUREAU, "533123"), "Content-Length": str(size),
            "Content-Type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and r.json()["max_bytes"] == settings.max_upload_bytes and body.sent == 0
