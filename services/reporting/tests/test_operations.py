"""The 运行 page over real HTTP: reporting asks the intake service and itself (both real apps behind real servers, on
real PostgreSQL and NATS) for readiness, metrics and dead letters, and shows each caller its own org unit only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_reporting.service import SERVICE
from povguard_reporting.settings import service_urls
from povguard_tools.testing import served

COUNTY, TOWN, OTHER_TOWN = "533123", "533123101", "533123102"


def auth(settings: Settings, role: Role, org: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=f"{role.value}@{org}", role=role, org=org),
                                                     settings)}


async def dead_letter(runtime: ServiceRuntime, township: str) -> None:
    async with runtime.engine.begin() as conn:
        await conn.execute(text(f"""
            INSERT INTO {runtime.schema}.dead_letters (consumer, event_id, subject, event, error, attempts)
            VALUES (:c, gen_random_uuid(), :s, CAST(:e AS jsonb), 'test', 1)"""),
            {"c": runtime.definition.consumers[0].name, "s": f"ev.x.X.{township}",
             "e": f'{{"township": "{township}", "type": "X", "data": {{}}}}'})


@pytest.fixture
async def page(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """Reporting and intake served over HTTP, each with a dead letter in TOWN and one in OTHER_TOWN; the other
    services' URLs point nowhere (their rows say so)."""
    async with AsyncExitStack() as stack:
        urls = {}
        for definition in (INTAKE, SERVICE):
            app = create_app(definition, settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            urls[definition.name] = await stack.enter_async_context(served(app))
            for township in (TOWN, OTHER_TOWN):
                await dead_letter(app.state.runtime, township)
        for name in ("intake", "assessment", "review", "support", "audit", "reporting"):
            monkeypatch.setenv(f"{name.upper()}_URL", urls.get(name, "http://127.0.0.1:9"))
        service_urls.cache_clear()
        stack.callback(service_urls.cache_clear)
        yield await stack.enter_async_context(httpx.AsyncClient(base_url=urls["reporting"], timeout=30))


async def rows(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/operations", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return {row["service"]: row for row in r.json()["services"]}


async def test_a_township_official_sees_only_its_townships_operations(page: httpx.AsyncClient,
                                                                      settings: Settings) -> None:
    township = auth(settings, Role.INSPECTOR, TOWN)
    found = await rows(page, township)
    for name in ("intake", "reporting"):
        row = found[name]
        assert row["ready"] is True
        assert row["dead_letters"] == 1
        assert [d["event"]["township"] for d in row["dead_letter_list"]] == [TOWN]
        # the deployment's lags and request counts are the whole county's: not a township's to see
        assert not {"consumer_lag", "relay_lag", "requests", "server_errors"} & set(row)
    assert found["review"]["ready"] is False and "error" in found["review"]
    r = await page.get("/v1/operations", headers=township, params={"org": OTHER_TOWN})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"

    county = auth(settings, Role.INSPECTOR, COUNTY)
    whole = (await rows(page, county))["intake"]
    assert whole["dead_letters"] == 2 and {"consumer_lag", "relay_lag", "requests"} <= set(whole)
    narrowed = (await rows(page, county, org=OTHER_TOWN))["intake"]
    assert [d["event"]["township"] for d in narrowed["dead_letter_list"]] == [OTHER_TOWN]
    assert "consumer_lag" not in narrowed
    # another county's inspector reaches none of ours, and may not ask for it
    elsewhere = (await rows(page, auth(settings, Role.INSPECTOR, "110101")))["intake"]
    assert elsewhere["dead_letters"] == 0 and "consumer_lag" not in elsewhere
    assert (await page.get("/v1/operations", params={"org": COUNTY},
                           headers=auth(settings, Role.INSPECTOR, "110101"))).status_code == 403
    # the bureau reads the county's figures; dead letters are for inspectors (the services refuse it the list)
    bureau = (await rows(page, auth(settings, Role.COUNTY_BUREAU, COUNTY)))["intake"]
    assert "dead_letter_list" not in bureau and "consumer_lag" in bureau
