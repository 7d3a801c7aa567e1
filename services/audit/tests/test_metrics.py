"""The audit gauges the operators' alerts read ("no signed checkpoint", "a witness silent"): taken from the
database at each scrape, so they hold whichever replica is scraped and survive a restart."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from povguard_audit import note, witness
from povguard_platform.actor import Role
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Api = tuple[ServiceRuntime, httpx.AsyncClient]


def gauge(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    assert found, f"{name}{labels} not exported"
    return float(found.group(1))


async def test_checkpoint_and_witness_gauges_come_from_the_ledger(
        api: Api, write: Any, ev: Any, auth: Callable[..., dict[str, str]]) -> None:
    intake, client = api
    scraped = (await client.get("/metrics")).text
    assert gauge(scraped, "povguard_audit_last_checkpoint_timestamp_seconds") == 0
    assert gauge(scraped, "povguard_audit_tree_size") == 0
    signer = note.Signer.from_seed("纪检监察室", b"\x09" * 32, note.ALG_COSIGNATURE_V1)
    assert (await client.post("/v1/audit/witnesses", json={"vkey": signer.vkey},
                              headers=auth(Role.ADMIN))).status_code == 201
    registered = gauge((await client.get("/metrics")).text,
                       "povguard_audit_witness_last_cosignature_timestamp_seconds", '{witness="纪检监察室"}')
    assert abs(registered - time.time()) < 60  # silent since registration until it cosigns

    await write(intake, [(StreamRef("household", f"hh-{i}"), ev.Noted(note="m")) for i in range(5)])

    async def recorded() -> bool:
        return gauge((await client.get("/metrics")).text, "povguard_audit_tree_size") == 5

    await eventually(recorded)
    before_sign = time.time()
    assert (await client.post("/v1/audit/checkpoints", headers=auth(Role.COUNTY_BUREAU))).status_code == 201
    scraped = (await client.get("/metrics")).text
    assert gauge(scraped, "povguard_audit_last_checkpoint_tree_size") == 5
    assert gauge(scraped, "povguard_audit_last_checkpoint_timestamp_seconds") >= before_sign - 1

    keys = [note.Verifier.from_vkey(k["vkey"]) for k in (await client.get("/v1/audit/keys", headers=auth())).json()]
    client.headers.update(auth())
    await witness.run_once(client, None, keys, signer)
    cosigned = gauge((await client.get("/metrics")).text,
                     "povguard_audit_witness_last_cosignature_timestamp_seconds", '{witness="纪检监察室"}')
    assert cosigned >= before_sign - 1 and cosigned >= registered
