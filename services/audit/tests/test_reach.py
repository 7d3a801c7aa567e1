"""Who reads the ledger: only inside one's org unit (an entry belongs to its event's township), and every read that
returns stored events (ID numbers, phones, health as stored) is itself entered in the ledger."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text

from povguard_platform.actor import Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Api = tuple[ServiceRuntime, httpx.AsyncClient]
ID_NUMBER = "533123197503090011"


async def test_stored_events_are_read_inside_ones_org_unit_and_every_read_is_recorded(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]]) -> None:
    intake, client = api
    await write(intake, [(StreamRef("household", "hh-1"), ev.Noted(note=f"户主身份证 {ID_NUMBER}"))])

    async def entries(headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
        r = await client.get("/v1/audit/entries", params=params, headers=headers)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    await eventually(lambda: _len(entries(auth())))
    assert (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).status_code == 201
    timeline, bundle = "/v1/audit/households/hh-1/timeline", "/v1/audit/bundles"

    # another county's inspector, bureau and administrator; another township's inspector
    for role, org in ((Role.INSPECTOR, "110101"), (Role.COUNTY_BUREAU, "110101"), (Role.ADMIN, "110101"),
                      (Role.INSPECTOR, "533123102")):
        outside = auth(role, org=org)
        for path, params in ((timeline, {}), (bundle, {"household": "hh-1", "payloads": "true"}),
                             ("/v1/audit/households/hh-1/dispute", {"as_of": "2030-01-01T00:00:00Z"})):
            r = await client.get(path, params=params, headers=outside)
            assert r.status_code == 403 and r.json()["code"] == "org_scope", (role, org, path)
        assert await entries(outside) == []
        assert (await client.get("/v1/audit/findings", headers=outside)).json()["data"] == []
        if org == "110101":  # the whole ledger is the county's
            assert (await client.get(bundle, headers=outside)).status_code == 403
            assert (await client.post("/v1/audit/checkpoints", headers=outside)).status_code == 403
    assert await reads(client) == []

    # inside: the events as stored, and the read on the record
    r = await client.get(timeline, params={"purpose": "信访核查"}, headers=auth())
    assert r.status_code == 200 and ID_NUMBER in r.text
    town = auth(Role.INSPECTOR, org="533123101", user="乡纪委")
    plain = [json.loads(ln) for ln in (await client.get(bundle, params={"household": "hh-1"}, headers=town)).text
             .splitlines()]
    assert not any("payload" in ln for ln in plain)
    with_payloads = [json.loads(ln) for ln in (await client.get(
        bundle, params={"household": "hh-1", "payloads": "true"}, headers=town)).text.splitlines()]
    assert any(ID_NUMBER in base64.b64decode(ln["payload"]).decode() for ln in with_payloads if "payload" in ln)
    assert await reads(client) == [("赵六", "hh-1", "timeline", "信访核查", "533123101"),
                                   ("乡纪委", "hh-1", "bundle", "核查", "533123101")]
    [entry] = await entries(auth(), action="LedgerPayloadsRead", actor="赵六")
    assert entry["entry"]["household"] == "hh-1"  # in the household's own chain of entries


async def reads(client: httpx.AsyncClient) -> list[tuple[str, str | None, str, str, str]]:
    """The recorded reads, as entered in the ledger (the stored event beside each entry)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT l.actor_user, l.household, convert_from(p.body, 'UTF8')::jsonb AS event, l.township
            FROM audit.ledger l JOIN audit.payloads p USING (idx)
            WHERE l.action = 'LedgerPayloadsRead' ORDER BY l.idx"""))
        return [(r.actor_user, r.household, r.event["data"]["view"], r.event["data"]["purpose"], r.township)
                for r in rows]


async def _len(found: Any) -> bool:
    return len(await found) > 0
