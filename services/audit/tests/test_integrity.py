"""Tamper evidence end to end: bundles that `povguard audit verify` checks offline with only the public key, and
the full re-check, after rows are edited or deleted directly in PostgreSQL as a superuser would."""

from __future__ import annotations

import copy
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
from povguard_audit.verify import Report, records, verify_lines
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


async def _bundle(audit: ServiceRuntime, **scope: Any) -> list[dict[str, Any]]:
    """The bundle's lines, as `povguard audit export` streams them."""
    async with audit.engine.connect() as conn:
        return [line async for line in export(conn, **scope)]


def _verify(lines: list[dict[str, Any]], vkey: str, **kw: Any) -> Report:
    return verify_lines(records(lines), [vkey], **kw)


def _entries(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ln for ln in lines if "entry" in ln and "boundary" not in ln]


def _without(lines: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """The bundle with entry `index` taken out and its end line recounted, as a careful forger would."""
    out = [ln for ln in lines if ln.get("entry", {}).get("index") != index]
    out[-1] = {"end": {"entries": len(_entries(out))}}
    return out


def _cli_verify(tmp_path: Path, bundle: list[dict[str, Any]], vkey: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "bundle.jsonl"
    path.write_text("".join(line + "\n" for line in records(bundle)))
    return _cli_verify_file(tmp_path, path, vkey, *args)


def _cli_verify_file(tmp_path: Path, path: Path, vkey: str, *args: str) -> tuple[int, str]:
    keyfile = tmp_path / "log.pub"
    keyfile.write_text(vkey + "\n")
    result = CliRunner().invoke(audit_cli, ["verify", str(path), "--key", str(keyfile), *args])
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
    code, out = _cli_verify(tmp_path, good, vkey)
    assert code == 0 and out.startswith("VERIFIED: the whole ledger (15 entries, indices 0..14) rebuilds the "
                                        "checkpoint of size 15 and each of the 2 checkpoints before it"), out
    household = await _bundle(audit, household="hh-1", include_payloads=True)
    assert [e["entry"]["index"] for e in _entries(household)] == [1, 4, 7, 10, 13]
    assert _verify(household, vkey).summary().startswith(
        "VERIFIED: the whole history of household hh-1 as of the checkpoint of size 15 (5 entries, indices 1..13)")
    assert (await recheck(audit.engine, audit_settings())).ok and RECHECK_OK._value.get() == 1

    # Someone with database access changes who acted on entry 4, and (later) entry 9.
    await _superuser(admin_engine, "UPDATE audit.ledger SET actor_user = '别人' WHERE idx IN (4, 9)")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, 4, "modified")
    assert RECHECK_OK._value.get() == 0
    [alert] = await _alerts(audit)
    assert alert["first_bad_index"] == 4 and alert["kind"] == "modified"

    code, out = _cli_verify(tmp_path, await _bundle(audit), vkey)
    assert code == 1 and out.startswith("NOT CONSISTENT: first bad entry is 4 (modified)")
    assert _verify(await _bundle(audit, household="hh-1"), vkey).first_bad.index == 4  # type: ignore[union-attr]


async def test_a_deleted_row_is_named_missing(stack: Stack, write: Any, ev: Any, count: Any, tmp_path: Path,
                                             admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    await _superuser(admin_engine, "DELETE FROM audit.payloads WHERE idx = 6", "DELETE FROM audit.ledger WHERE idx = 6")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, 6, "missing")
    code, out = _cli_verify(tmp_path, await _bundle(audit), vkey)
    assert code == 1 and "first bad entry is 6 (missing)" in out
    report = _verify(await _bundle(audit, household="hh-0"), vkey)  # 0, 3, [6], 9, 12: the chain breaks
    assert report.first_bad is not None and (report.first_bad.index, report.first_bad.kind) == (6, "missing")


async def test_a_changed_payload_is_found_and_a_redacted_one_keeps_every_proof(
        stack: Stack, write: Any, ev: Any, count: Any, admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    async with audit.engine.begin() as conn:  # redaction is the one change the database allows
        assert await ledger.redact(conn, 2, "个人信息删除 (test)")
    assert (await recheck(audit.engine, audit_settings())).ok
    assert _verify(await _bundle(audit, household="hh-2", include_payloads=True), vkey).ok
    await _superuser(admin_engine, "UPDATE audit.payloads SET body = convert_to('{}', 'UTF8') WHERE idx = 11")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, 11, "payload-modified")


async def test_edits_to_the_bundle_itself_are_named(stack: Stack, write: Any, ev: Any, count: Any) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    good = await _bundle(audit)
    part = await _bundle(audit, household="hh-1")
    at = {ln["entry"]["index"]: n for n, ln in enumerate(good) if "entry" in ln}

    def first(bundle: list[dict[str, Any]]) -> tuple[int, str] | str | None:
        r = _verify(bundle, vkey)
        if r.problem:
            return r.problem
        return None if r.first_bad is None else (r.first_bad.index, r.first_bad.kind)

    swapped = copy.deepcopy(good)
    swapped[at[5]], swapped[at[6]] = swapped[at[6]], swapped[at[5]]
    assert first(swapped) == (5, "swapped")
    assert "entries 5 and 6 are swapped" in _verify(swapped, vkey).summary()
    moved = copy.deepcopy(good)  # entry 5's content presented as entry 6's
    moved[at[6]] = {**moved[at[5]], "entry": {**moved[at[5]]["entry"], "index": 6},
                    "leaf_hash": moved[at[6]]["leaf_hash"]}
    assert first(moved) == (6, "modified")
    assert first(_without(good, 7)) == (7, "missing")
    inserted = copy.deepcopy(good)
    inserted.insert(at[8], inserted[at[3]])
    inserted[-1] = {"end": {"entries": 16}}
    assert first(inserted) == (3, "inserted")
    backdated = copy.deepcopy(part)
    [line] = [ln for ln in backdated if ln.get("entry", {}).get("index") == 7]
    line["entry"]["event_time"] = "2020-01-01T00:00:00.000000Z"
    assert first(backdated) == (7, "modified")
    assert first(_without(part, 4)) == (4, "missing")
    assert "no valid signature" in str(first([
        {"checkpoint": {**ln["checkpoint"], "note": ln["checkpoint"]["note"].replace("\n15\n", "\n16\n")}}
        if "checkpoint" in ln else ln for ln in good]))
    other_key = "povguard.cn/audit/533123+00000000+" + "A" * 44
    with pytest.raises(ValueError):
        _verify(good, other_key)
