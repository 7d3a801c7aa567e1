"""Tamper evidence end to end: bundles that `povguard audit verify` checks offline with only the public key, and
the full re-check, after rows are edited or deleted directly in PostgreSQL as a superuser would."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from povguard_audit import checkpoints, ledger
from povguard_audit.bundle import export
from povguard_audit.cli import app as audit_cli
from povguard_audit.metrics import RECHECK_OK
from povguard_audit.recheck import recheck
from povguard_audit.settings import audit_settings
from povguard_audit.verify import verify_bundle
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Stack = tuple[ServiceRuntime, ServiceRuntime]


async def _ledger_of(stack: Stack, write: Any, ev: Any, count: Any) -> tuple[ServiceRuntime, str]:
    """15 entries over households hh-0..hh-2, checkpoints at 10 and 15; returns the audit runtime and its key."""
    intake, audit = stack
    await write(intake, [(StreamRef("household", f"hh-{i % 3}"), ev.Noted(note=str(i))) for i in range(10)])

    async def n(k: int) -> Any:
        async def check() -> bool:
            return bool(await count(audit) == k)
        return check

    await eventually(await n(10))
    async with audit.engine.begin() as conn:
        await checkpoints.sign(conn, audit_settings())
    await write(intake, [(StreamRef("household", f"hh-{i % 3}"), ev.Noted(note=str(i))) for i in range(10, 15)])
    await eventually(await n(15))
    async with audit.engine.begin() as conn:
        await checkpoints.sign(conn, audit_settings())
        [(vkey, *_)] = await checkpoints.public_keys(conn)
    return audit, vkey


async def _bundle(audit: ServiceRuntime, **scope: Any) -> dict[str, Any]:
    async with audit.engine.connect() as conn:
        found: dict[str, Any] = await export(conn, **scope)
        return found


def _cli_verify(tmp_path: Path, bundle: dict[str, Any], vkey: str) -> tuple[int, str]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    keyfile = tmp_path / "log.pub"
    keyfile.write_text(vkey + "\n")
    result = CliRunner().invoke(audit_cli, ["verify", str(path), "--key", str(keyfile)])
    return result.exit_code, result.output


async def _superuser(admin: AsyncEngine, *sql: str) -> None:
    """Edit rows as a superuser with database access would: switch the append-only triggers off, then on again."""
    async with admin.begin() as conn:
        for table in ("ledger", "payloads"):
            await conn.execute(text(f"ALTER TABLE audit.{table} DISABLE TRIGGER USER"))
        for statement in sql:
            await conn.execute(text(statement))
        for trigger in ("ledger_append_only", "ledger_no_truncate"):
            await conn.execute(text(f"ALTER TABLE audit.ledger ENABLE ALWAYS TRIGGER {trigger}"))
        for trigger in ("payloads_redaction_only", "payloads_no_truncate"):
            await conn.execute(text(f"ALTER TABLE audit.payloads ENABLE ALWAYS TRIGGER {trigger}"))


async def _alerts(audit: ServiceRuntime) -> list[dict[str, Any]]:
    async with audit.engine.connect() as conn:
        rows = await conn.execute(text("SELECT data FROM audit.events WHERE type = 'LedgerMismatchFound'"))
        return [r[0] for r in rows]


async def test_an_edited_row_is_named_by_the_recheck_and_by_offline_verification(
        stack: Stack, write: Any, ev: Any, count: Any, tmp_path: Path, admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    good = await _bundle(audit)
    assert _cli_verify(tmp_path, good, vkey) == (
        0, "all 15 entries are consistent with the checkpoint of size 15 signed by the given key\n")
    household = await _bundle(audit, household="hh-1", include_payloads=True)
    # hh-1's five entries, in its order; where they fall among the others' depends on the partitions' pace
    mine = [e["index"] for e in household["entries"]]
    assert len(mine) == 5 and mine == sorted(mine)
    assert verify_bundle(household, [vkey]).ok
    assert (await recheck(audit.engine, audit_settings())).ok and RECHECK_OK._value.get() == 1

    # Someone with database access changes who acted on hh-1's second entry, and on another household's entry.
    other = next(i for i in range(15) if i not in mine)
    first_bad = min(mine[1], other)
    await _superuser(admin_engine, f"UPDATE audit.ledger SET actor_user = '别人' WHERE idx IN ({mine[1]}, {other})")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, first_bad, "modified")
    assert RECHECK_OK._value.get() == 0
    [alert] = await _alerts(audit)
    assert alert["first_bad_index"] == first_bad and alert["kind"] == "modified"

    code, out = _cli_verify(tmp_path, await _bundle(audit), vkey)
    assert code == 1 and out.startswith(f"NOT CONSISTENT: first bad entry is {first_bad} (modified)")
    assert not verify_bundle(await _bundle(audit, household="hh-1"), [vkey]).ok
    assert verify_bundle(await _bundle(audit, household="hh-1"), [vkey]).first_bad.index == mine[1]  # type: ignore[union-attr]


async def test_a_deleted_row_is_named_missing(stack: Stack, write: Any, ev: Any, count: Any, tmp_path: Path,
                                             admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    gone = (await _bundle(audit, household="hh-0"))["entries"][2]["index"]  # hh-0's third entry
    await _superuser(admin_engine, f"DELETE FROM audit.payloads WHERE idx = {gone}",
                     f"DELETE FROM audit.ledger WHERE idx = {gone}")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, gone, "missing")
    code, out = _cli_verify(tmp_path, await _bundle(audit), vkey)
    assert code == 1 and f"first bad entry is {gone} (missing)" in out
    report = verify_bundle(await _bundle(audit, household="hh-0"), [vkey])  # its chain breaks at the gap
    assert report.first_bad is not None and (report.first_bad.index, report.first_bad.kind) == (gone, "missing")


async def test_a_changed_payload_is_found_and_a_redacted_one_keeps_every_proof(
        stack: Stack, write: Any, ev: Any, count: Any, admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    async with audit.engine.begin() as conn:  # redaction is the one change the database allows
        assert await ledger.redact(conn, 2, "个人信息删除 (test)")
    assert (await recheck(audit.engine, audit_settings())).ok
    assert verify_bundle(await _bundle(audit, household="hh-2", include_payloads=True), [vkey]).ok
    await _superuser(admin_engine, "UPDATE audit.payloads SET body = convert_to('{}', 'UTF8') WHERE idx = 11")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, 11, "payload-modified")


async def test_edits_to_the_bundle_itself_are_named(stack: Stack, write: Any, ev: Any, count: Any) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    good = await _bundle(audit)
    part = await _bundle(audit, household="hh-1")

    def first(bundle: dict[str, Any]) -> tuple[int, str] | str | None:
        r = verify_bundle(bundle, [vkey])
        if r.problem:
            return r.problem
        return None if r.first_bad is None else (r.first_bad.index, r.first_bad.kind)

    swapped = copy.deepcopy(good)
    swapped["entries"][5], swapped["entries"][6] = swapped["entries"][6], swapped["entries"][5]
    assert first(swapped) == (5, "missing") or first(swapped)[1] == "reordered"  # type: ignore[index]
    moved = copy.deepcopy(good)  # entry 5's content presented as entry 6's
    moved["entries"][6] = {**moved["entries"][5], "index": 6, "leaf_hash": moved["entries"][6]["leaf_hash"]}
    assert first(moved) == (6, "modified")
    dropped = copy.deepcopy(good)
    del dropped["entries"][7]
    assert first(dropped) == (7, "missing")
    inserted = copy.deepcopy(good)
    inserted["entries"].insert(8, inserted["entries"][3])
    assert first(inserted) == (3, "inserted")
    backdated = copy.deepcopy(part)
    backdated["entries"][2]["event_time"] = "2020-01-01T00:00:00.000000Z"
    assert first(backdated) == (part["entries"][2]["index"], "modified")
    gap = copy.deepcopy(part)
    del gap["entries"][1]
    assert first(gap) == (part["entries"][1]["index"], "missing")
    assert "no valid signature" in str(first({**good, "checkpoints": [
        {"note": c["note"].replace("\n15\n", "\n16\n"), "cosignatures": []} for c in good["checkpoints"]]}))
    other_key = "povguard.cn/audit/533123+00000000+" + "A" * 44
    with pytest.raises(ValueError):
        verify_bundle(good, [other_key])
