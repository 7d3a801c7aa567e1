"""Tamper evidence end to end: bundles that `povguard audit verify` checks offline with only the public key, and
the full re-check, after rows are edited or deleted directly in PostgreSQL as a superuser would."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from povguard_audit import checkpoints, ledger
from povguard_audit.bundle import export
from povguard_audit.cli import app as audit_cli
from povguard_audit.entry import Entry
from povguard_audit.metrics import RECHECK_OK
from povguard_audit.recheck import recheck
from povguard_audit.settings import audit_settings
from povguard_audit.verify import Report, records, verify_lines
from povguard_platform.envelope import StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_tools.testing import eventually


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One partition: these tests name ledger indices, and with several partitions the order in which the ledger
    takes two households' events depends on which partition's batch lands first."""
    return settings.model_copy(update={"partitions": 1})

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
    mine = [e["entry"]["index"] for e in _entries(household)]
    assert len(mine) == 5 and mine == sorted(mine)  # where they fall among the others' depends on the partitions
    assert _verify(household, vkey).summary().startswith(
        f"VERIFIED: the whole history of household hh-1 as of the checkpoint of size 15 (5 entries, indices "
        f"{mine[0]}..{mine[-1]})")
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
    assert _verify(await _bundle(audit, household="hh-1"), vkey).first_bad.index == mine[1]  # type: ignore[union-attr]


async def test_a_deleted_row_is_named_missing(stack: Stack, write: Any, ev: Any, count: Any, tmp_path: Path,
                                             admin_engine: AsyncEngine) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    gone = _entries(await _bundle(audit, household="hh-0"))[2]["entry"]["index"]  # hh-0's third entry
    await _superuser(admin_engine, f"DELETE FROM audit.payloads WHERE idx = {gone}",
                     f"DELETE FROM audit.ledger WHERE idx = {gone}")
    result = await recheck(audit.engine, audit_settings())
    assert (result.ok, result.first_bad_index, result.kind) == (False, gone, "missing")
    code, out = _cli_verify(tmp_path, await _bundle(audit), vkey)
    assert code == 1 and f"first bad entry is {gone} (missing)" in out
    report = _verify(await _bundle(audit, household="hh-0"), vkey)  # its chain breaks at the gap
    assert report.first_bad is not None and (report.first_bad.index, report.first_bad.kind) == (gone, "missing")


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
    second, third = (_entries(part)[i]["entry"]["index"] for i in (1, 2))
    [line] = [ln for ln in backdated if ln.get("entry", {}).get("index") == third]
    line["entry"]["event_time"] = "2020-01-01T00:00:00.000000Z"
    assert first(backdated) == (third, "modified")
    assert first(_without(part, second)) == (second, "missing")
    assert "no valid signature" in str(first([
        {"checkpoint": {**ln["checkpoint"], "note": ln["checkpoint"]["note"].replace("\n15\n", "\n16\n")}}
        if "checkpoint" in ln else ln for ln in good]))
    other_key = "povguard.cn/audit/533123+00000000+" + "A" * 44
    with pytest.raises(ValueError):
        _verify(good, other_key)


def _forged(line: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An entry line changed and its leaf hash recomputed, as a careful forger would."""
    entry = {**line["entry"], **changes}
    return {**line, "entry": entry, "leaf_hash": base64.b64encode(Entry.from_json(entry).leaf()).decode()}


async def test_entries_no_checkpoint_signs_are_named_and_refused(stack: Stack, write: Any, ev: Any, count: Any,
                                                                 tmp_path: Path) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    good = await _bundle(audit)
    [last] = [ln for ln in good if ln.get("entry", {}).get("index") == 14]

    # An invented entry appended past the signed head (checkpoint 15), its hash and link made to fit.
    invented = [*good[:-1], _forged(last, index=15, actor={**last["entry"]["actor"], "user": "编造"},
                                    prev={"index": 14, "leaf_hash": base64.b64decode(last["leaf_hash"]).hex()}),
                {"end": {"entries": 16}}]
    code, out = _cli_verify(tmp_path, invented, vkey)
    assert code == 1 and out.startswith("UNVERIFIED: 1 entry that no checkpoint in the bundle signs (the latest is "
                                        "of size 15): 15; pass --accept-unsigned-tail"), out
    code, out = _cli_verify(tmp_path, invented, vkey, "--accept-unsigned-tail")
    assert code == 0 and "NOT verified (accepted): 1 entry that no checkpoint in the bundle signs" in out, out

    # The checkpoints trimmed to size 10, then entry 12 rewritten: with its old leaf hash it is named modified;
    # with a recomputed one it is one of the unsigned entries 10..14, and the bundle fails either way.
    trimmed = [ln for ln in good if "consistency" not in ln and not (
        "checkpoint" in ln and "\n15\n" in ln["checkpoint"]["note"])]
    at12 = next(n for n, ln in enumerate(trimmed) if ln.get("entry", {}).get("index") == 12)
    rewritten = copy.deepcopy(trimmed)
    rewritten[at12]["entry"]["actor"]["user"] = "别人"
    code, out = _cli_verify(tmp_path, rewritten, vkey)
    assert code == 1 and out.startswith("NOT CONSISTENT: first bad entry is 12 (modified)"), out
    assert "5 entries no checkpoint in the bundle signs" in out
    recomputed = copy.deepcopy(trimmed)
    recomputed[at12] = _forged(recomputed[at12], actor={**recomputed[at12]["entry"]["actor"], "user": "别人"})
    for args in ((), ("--accept-unsigned-tail",)):
        code, out = _cli_verify(tmp_path, recomputed, vkey, *args)
        assert "5 entries that no checkpoint in the bundle signs (the latest is of size 10): 10..14" in out, out
        assert code == (1 if not args else 0)


async def test_a_household_bundle_proves_it_holds_the_whole_history(stack: Stack, write: Any, ev: Any, count: Any,
                                                                    tmp_path: Path) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    part = await _bundle(audit, household="hh-1")
    [mapped] = [ln["map"] for ln in part if "map" in ln]
    assert mapped["index"] == 13 and len(base64.b64decode(mapped["leaf_hash"], validate=True)) == 32
    code, out = _cli_verify(tmp_path, part, vkey)  # offline, with only the pinned key
    assert code == 0 and "the whole history of household hh-1" in out, out

    # The latest entry dropped: every remaining entry is in the tree and the chain 1-4-7-10 is unbroken, but the
    # signed map names 13 as the latest.
    code, out = _cli_verify(tmp_path, _without(part, 13), vkey)
    assert code == 1 and out.startswith("NOT CONSISTENT: first bad entry is 13 (missing): the signed household map "
                                        "names entry 13 as the household's latest as of checkpoint 15"), out
    # ... nor can the map line be bent to fit, or left out.
    bent = [{"map": {**mapped, "index": 10, "leaf_hash": next(
        ln["leaf_hash"] for ln in part if ln.get("entry", {}).get("index") == 10)}} if "map" in ln else ln
        for ln in _without(part, 13)]
    code, out = _cli_verify(tmp_path, bent, vkey)
    assert code == 1 and "the household map proof for hh-1 does not lead to the map root signed" in out, out
    code, out = _cli_verify(tmp_path, [ln for ln in part if "map" not in ln], vkey)
    assert code == 1 and "carries no household map proof" in out, out


async def test_a_range_bundle_proves_it_holds_every_index(stack: Stack, write: Any, ev: Any, count: Any,
                                                          tmp_path: Path) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    async with audit.engine.connect() as conn:
        recorded = dict((await conn.execute(text("SELECT idx, recorded_at FROM audit.ledger"))).all())
    # the ledger appended the two writes as two batches: entries 0..9 and 10..14, each batch at one time
    later = await _bundle(audit, since=recorded[10])
    assert [ln["entry"]["index"] for ln in later if "entry" in ln] == [9, 10, 11, 12, 13, 14]  # 9: the boundary
    assert _verify(later, vkey).ok
    span = await _bundle(audit, since=recorded[0], until=recorded[10])
    assert [ln["entry"]["index"] for ln in _entries(span)] == list(range(10))
    assert [(ln["entry"]["index"], ln["boundary"]) for ln in span if "boundary" in ln] == [(10, "after")]
    report = _verify(span, vkey)
    assert report.ok and report.summary().startswith("VERIFIED: every entry recorded in ["), report.summary()
    code, out = _cli_verify(tmp_path, _without(span, 5), vkey)
    assert code == 1 and out.startswith("NOT CONSISTENT: first bad entry is 5 (missing): entries 5..5 of the range "
                                        "are not in the bundle"), out
    cut = [ln for ln in span if ln.get("boundary") != "after" and ln.get("entry", {}).get("index") != 9]
    cut[-1] = {"end": {"entries": 9}}  # the last entry and the boundary after it left out
    code, out = _cli_verify(tmp_path, cut, vkey)
    assert code == 1 and "(missing): the range stops at entry 8 without the boundary entry after it" in out, out


async def test_a_damaged_bundle_ends_in_one_message(stack: Stack, write: Any, ev: Any, count: Any,
                                                    tmp_path: Path) -> None:
    audit, vkey = await _ledger_of(stack, write, ev, count)
    good = await _bundle(audit, household="hh-1")
    text_ = "".join(line + "\n" for line in records(good))
    path = tmp_path / "damaged.jsonl"
    entry_at = next(n for n, ln in enumerate(good) if "entry" in ln) + 1  # its line number

    def damaged(n: int, **change: Any) -> str:
        lines = copy.deepcopy(good)
        lines[n - 1]["entry"] = {**lines[n - 1]["entry"], **change} if change else lines[n - 1]["entry"]
        return "".join(line + "\n" for line in records(lines))

    missing_key = copy.deepcopy(good)
    del missing_key[entry_at - 1]["leaf_hash"]
    bad_b64 = copy.deepcopy(good)
    bad_b64[entry_at - 1]["inclusion"][0] = "not base64!"
    cases = {
        "cut JSON": (text_[: len(text_) // 2], "not JSON (the bundle is cut or damaged)"),
        "cut at a line": ("".join(line + "\n" for line in records(good[:-1])), "the bundle is cut: it has no end"),
        "missing key": ("".join(ln + "\n" for ln in records(missing_key)), f"line {entry_at}: the key 'leaf_hash' is "
                                                                          "missing"),
        "wrong type": (damaged(entry_at, index="x"), f"line {entry_at}: a value of the wrong type or form"),
        "bad base64": ("".join(ln + "\n" for ln in records(bad_b64)), f"line {entry_at}: bad base64"),
        "format 1": (json.dumps({"format": "povguard-audit-bundle/1", "entries": []}), "format 1 (one JSON object) "
                                                                                        "is no longer read"),
        "not a bundle": ("[1, 2]\n", "line 1: each line is a JSON object"),
    }
    for name, (content, message) in cases.items():
        path.write_text(content)
        code, out = _cli_verify_file(tmp_path, path, vkey)
        assert code == 3 and out.startswith("UNREADABLE BUNDLE: ") and message in out, (name, out)
        assert "Traceback" not in out and out.count("\n") == 1, (name, out)


async def test_the_readme_audit_commands_work_as_written(stack: Stack, write: Any, ev: Any, count: Any,
                                                         tmp_path: Path, settings: Settings) -> None:
    _, vkey = await _ledger_of(stack, write, ev, count)
    [line] = [ln for ln in (Path(__file__).parents[3] / "README.md").read_text().splitlines()
              if "povguard audit export bundle.json &&" in ln]  # the registry section's line
    env = {**os.environ, "AUDIT_DATABASE_URL": settings.database_url_for("audit")}
    bin_dir = Path(sys.executable).parent
    for command in line.split("&&"):
        argv = [a.replace("<vkey>", vkey) for a in shlex.split(command)]
        argv[0] = str(bin_dir / Path(argv[0]).name)
        done = await asyncio.to_thread(subprocess.run, argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    assert done.stdout.startswith("VERIFIED: the whole ledger (15 entries, indices 0..14)"), done.stdout
