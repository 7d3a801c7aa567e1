"""Witnesses: `povguard witness` logic checks consistency with the last checkpoint it saw, cosigns through the
API, and refuses a rewritten log. Anomaly findings: back-dating, one person at two review levels, edit bursts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from povguard_audit import merkle, note, witness
from povguard_audit.verify import verify_lines
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Api = tuple[ServiceRuntime, httpx.AsyncClient]


async def _grow(api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]], n: int, total: int) -> None:
    intake, client = api
    await write(intake, [(StreamRef("household", f"hh-{i}"), ev.Noted(note="w")) for i in range(n)])

    async def recorded() -> bool:
        r = await client.get("/v1/audit/entries", params={"limit": 200}, headers=auth())
        return len(r.json()["data"]) == total

    await eventually(recorded)
    assert (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).status_code == 201


async def test_a_witness_cosigns_consistent_checkpoints(api: Api, write: Any, ev: Any,
                                                        auth: Callable[..., dict[str, str]]) -> None:
    _, client = api
    signer = note.Signer.from_seed("纪检监察室", b"\x07" * 32, note.ALG_COSIGNATURE_V1)
    assert (await client.post("/v1/audit/witnesses", json={"vkey": signer.vkey},
                              headers=auth(Role.ADMIN))).status_code == 201
    await _grow(api, write, ev, auth, 4, 4)
    keys = [note.Verifier.from_vkey(k["vkey"]) for k in (await client.get("/v1/audit/keys", headers=auth())).json()]
    client.headers.update(auth())
    seen, cp = await witness.run_once(client, None, keys, signer)
    assert len(cp["cosignatures"]) == 1
    await _grow(api, write, ev, auth, 3, 7)
    seen, cp = await witness.run_once(client, seen, keys, signer)  # checks consistency 4 → 7 first
    assert cp["tree_size"] == 7 and len(cp["cosignatures"]) == 1
    body = note.split_note(cp["note"])[0]
    w = note.Verifier.from_vkey(signer.vkey)
    t = w.verify_line(body, cp["cosignatures"][0])
    assert t is not None and abs(t - datetime.now(UTC).timestamp()) < 60  # every entry below 7 existed before t
    bundle = await client.get("/v1/audit/bundles")
    assert bundle.headers["content-type"] == "application/x-ndjson"
    log_keys = [k["vkey"] for k in (await client.get("/v1/audit/keys")).json()]
    report = verify_lines(bundle.text.splitlines(), log_keys, [signer.vkey])
    assert report.ok and report.cosigned_by == ["纪检监察室"]
    bad = await client.post(f"/v1/audit/checkpoints/{cp['id']}/cosignatures", json={"line": "— x AAAA"})
    assert bad.status_code == 422


def test_a_witness_refuses_a_rewritten_log() -> None:
    log = note.Signer.from_seed("log", b"\x01" * 32)
    me = note.Signer.from_seed("w", b"\x02" * 32, note.ALG_COSIGNATURE_V1)
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(8)]
    forged = [*leaves[:3], merkle.leaf_hash(b"rewritten"), *leaves[4:]]
    old = note.sign_note(note.checkpoint_body("log", 5, merkle.root(leaves[:5])), [log])
    honest = note.sign_note(note.checkpoint_body("log", 8, merkle.root(leaves)), [log])
    fork = note.sign_note(note.checkpoint_body("log", 8, merkle.root(forged)), [log])
    keys = [note.Verifier.from_vkey(log.vkey)]
    good = witness.check_and_cosign(old, honest, merkle.consistency_proof(5, 8, merkle.list_subtree(leaves)),
                                    keys, me, now=1_700_000_000)
    assert note.Verifier.from_vkey(me.vkey).verify_line(note.split_note(honest)[0], good.line) == 1_700_000_000
    with pytest.raises(witness.WitnessRefused, match="not consistent"):
        witness.check_and_cosign(old, fork, merkle.consistency_proof(5, 8, merkle.list_subtree(forged)), keys, me)
    with pytest.raises(witness.WitnessRefused, match="no valid signature"):
        witness.check_and_cosign(None, honest, [], [note.Verifier.from_vkey(
            note.Signer.from_seed("log", b"\x03" * 32).vkey)], me)


async def test_anomaly_findings_with_evidence(api: Api, write: Any, ev: Any, monkeypatch: pytest.MonkeyPatch,
                                              auth: Callable[..., dict[str, str]]) -> None:
    from povguard_audit.settings import audit_settings

    monkeypatch.setenv("AUDIT_BURST_EDITS", "5")
    monkeypatch.setenv("AUDIT_BACKDATING_HOURS", "-1")  # every event counts as back-dated: the rule fires
    audit_settings.cache_clear()
    intake, client = api
    clerk = Actor(user="钱七", role=Role.TOWNSHIP_REVIEWER, org="533123101")
    await write(intake, [(StreamRef("case", "c-1"), ev.Stepped(household_id="hh-9", step="a"))], actor=clerk)
    await write(intake, [(StreamRef("household", "hh-9"), ev.Noted(note=str(i))) for i in range(5)])

    async def recorded() -> bool:
        r = await client.get("/v1/audit/entries", headers=auth())
        return len(r.json()["data"]) == 6

    await eventually(recorded)
    findings = (await client.get("/v1/audit/findings", headers=auth())).json()["data"]
    kinds = {f["kind"] for f in findings}
    assert {"backdating", "edit_burst"} <= kinds
    burst = next(f for f in findings if f["kind"] == "edit_burst")
    assert burst["actor"] == "张三" and burst["evidence"]["entries_in_window"] == 5
    async with client.app.state.runtime.engine.connect() as conn:  # each finding is also an AnomalyFound event
        n = (await conn.execute(text("SELECT count(*) FROM audit.events WHERE type = 'AnomalyFound'"))).scalar_one()
    assert n == len(findings)
