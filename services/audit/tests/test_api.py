"""The HTTP API: checkpoints signed on demand (consistency-checked, C2SP signed notes), proofs that verify
against them, public keys with rotation, inspection queries with proofs, household timelines, roles."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from povguard_audit import merkle, note
from povguard_audit.entry import Entry
from povguard_audit.settings import audit_settings
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Api = tuple[ServiceRuntime, httpx.AsyncClient]


async def _fill(api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], n: int,
                total: int | None = None) -> None:
    """Write n events (the last two by a township reviewer) and wait until the ledger holds `total` (n)."""
    intake, client = api
    reviewer = Actor(user="李四", role=Role.TOWNSHIP_REVIEWER, org="533123101")
    await write(intake, [(StreamRef("household", f"hh-{i % 3}"), ev.Noted(note=str(i))) for i in range(n - 2)])
    await write(intake, [(StreamRef("case", "c-9"), ev.Stepped(household_id="hh-0", step="township")),
                         (StreamRef("household", "hh-1"), ev.Noted(note="r"))], actor=reviewer)

    async def recorded() -> bool:
        r = await client.get("/v1/audit/entries", params={"limit": 200}, headers=auth())
        return len(r.json()["data"]) == (total or n)

    await eventually(recorded)


async def test_checkpoints_proofs_and_keys(api: Api, write: Any, ev: Any,
                                           auth: Callable[..., dict[str, str]]) -> None:
    _, client = api
    assert (await client.get("/v1/audit/checkpoints/latest", headers=auth())).status_code == 404
    await _fill(api, write, ev, auth, 7)
    assert (await client.post("/v1/audit/checkpoints", headers=auth())).status_code == 403  # inspectors only read
    first = await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))
    assert first.status_code == 201
    cp = first.json()
    keys = (await client.get("/v1/audit/keys", headers=auth())).json()
    verifiers = [note.Verifier.from_vkey(k["vkey"]) for k in keys]
    body, good = note.verified_by(cp["note"], verifiers)
    # a C2SP tlog-checkpoint body; its one extension line signs the household map's root
    assert good and body.startswith(f"{audit_settings().origin}\n7\n{cp['root_hash']}\nhousehold-map ")
    assert note.parse_checkpoint(body).map_root is not None
    assert cp["note"].split("\n\n")[1].startswith("— " + audit_settings().origin + " ")

    await _fill(api, write, ev, auth, 5, 12)
    second = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    assert second["tree_size"] == 12
    latest = (await client.get("/v1/audit/checkpoints/latest", headers=auth())).json()
    assert latest["id"] == second["id"]
    root7, root12 = base64.b64decode(cp["root_hash"]), base64.b64decode(second["root_hash"])

    c = (await client.get("/v1/audit/proofs/consistency", params={"first": 7, "second": 12},
                          headers=auth())).json()
    assert merkle.verify_consistency(7, root7, 12, root12, [base64.b64decode(p) for p in c["proof"]])
    for index in range(12):
        p = (await client.get("/v1/audit/proofs/inclusion", params={"index": index}, headers=auth())).json()
        assert p["tree_size"] == 12
        assert merkle.verify_inclusion(base64.b64decode(p["leaf_hash"]), index, 12,
                                       [base64.b64decode(x) for x in p["proof"]], root12)
    bad = await client.get("/v1/audit/proofs/inclusion", params={"index": 12}, headers=auth())
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_key_rotation_keeps_old_keys_published(api: Api, write: Any, ev: Any, monkeypatch: pytest.MonkeyPatch,
                                                     auth: Callable[..., dict[str, str]]) -> None:
    _, client = api
    await _fill(api, write, ev, auth, 3)
    old = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    seeds = [base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2)]
    monkeypatch.setenv("AUDIT_SIGNING_KEYS", ",".join(seeds))  # rotate: two configured keys both sign
    audit_settings.cache_clear()
    await _fill(api, write, ev, auth, 3, 6)
    new = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    keys = (await client.get("/v1/audit/keys", headers=auth())).json()
    active = [note.Verifier.from_vkey(k["vkey"]) for k in keys if k["active"]]
    retired = [note.Verifier.from_vkey(k["vkey"]) for k in keys if not k["active"]]
    assert len(active) == 2 and len(retired) == 1  # the generated development key is retired, still published
    assert note.verified_by(old["note"], retired)[1] and not note.verified_by(old["note"], active)[1]
    assert len(note.verified_by(new["note"], active)[1]) == 2
    assert new["note"].count("\n— ") == 2


async def test_inspection_queries_return_entries_with_proofs(api: Api, write: Any, ev: Any,
                                                             auth: Callable[..., dict[str, str]]) -> None:
    _, client = api
    await _fill(api, write, ev, auth, 9)
    cp = (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).json()
    root = base64.b64decode(cp["root_hash"])

    async def query(**params: Any) -> list[dict[str, Any]]:
        r = await client.get("/v1/audit/entries", params=params, headers=auth())
        assert r.status_code == 200, r.text
        for item in r.json()["data"]:  # each result proves itself against the signed checkpoint
            e = Entry.from_json(item["entry"])
            proof = item["inclusion"]
            assert merkle.verify_inclusion(e.leaf(), e.index, cp["tree_size"],
                                           [base64.b64decode(x) for x in proof["proof"]], root)
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    assert {d["entry"]["household"] for d in await query(household="hh-0")} == {"hh-0"}
    assert len(await query(household="hh-0")) == 4  # three notes and the case step that names hh-0
    by_reviewer = await query(actor="李四")
    # two services' events: their order in the ledger depends on which partition got there first
    assert sorted(d["entry"]["action"] for d in by_reviewer) == ["AuditTestCaseStepped", "AuditTestHouseholdNoted"]
    assert len(await query(action="AuditTestCaseStepped")) == 1
    assert len(await query(org="533123101")) == 9 and await query(org="533124") == []
    assert len(await query(since=cp["signed_at"])) == 0
    page1 = await client.get("/v1/audit/entries", params={"limit": 4}, headers=auth())
    page2 = await client.get("/v1/audit/entries", params={"limit": 4, "cursor": page1.json()["next_cursor"]},
                             headers=auth())
    assert [d["entry"]["index"] for d in page1.json()["data"] + page2.json()["data"]] == list(range(8))
    forbidden = await client.get("/v1/audit/entries", headers=auth(Role.COLLECTOR, org="533123101"))
    assert forbidden.status_code == 403

    timeline = (await client.get("/v1/audit/households/hh-1/timeline", headers=auth())).json()
    assert [i["event"]["data"]["note"] for i in timeline["items"]] == ["1", "4", "r"]
    assert timeline["state"]["note"] == "r"
    as_of = timeline["items"][1]["event"]["time"]
    earlier = (await client.get("/v1/audit/households/hh-1/timeline", params={"as_of": as_of},
                                headers=auth())).json()
    assert earlier["state"]["note"] == "4" and len(earlier["items"]) == 2
    spec = (await client.get("/openapi.json")).json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"get_latest_checkpoint", "get_inclusion_proof", "get_consistency_proof", "list_public_keys",
            "list_entries", "get_household_timeline", "export_bundle", "add_cosignature"} <= ops
