"""Bulk import and export of the registry in the template. An import runs in chunks of households, each chunk one
transaction; a household with any bad row is refused, the others are registered; a household already registered
with the same facts is counted unchanged, so importing a file twice changes nothing the second time.

An import is a durable job: the uploaded file is stored with it, and each chunk's registrations commit together with
the job's progress (counts, row errors, next chunk). Whoever holds the job's advisory lock runs it; if its process
dies or the database goes away, the lock goes with the session, and `resume_imports` (every service replica, every
few seconds) takes it up at the next chunk. A job that keeps failing ends `failed` with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_contracts.numbers import STORED
from povguard_contracts.template import COLUMNS, ERROR_HEADER, HEADERS, NO, SEPARATOR, YES
from povguard_intake.domain.household import Household
from povguard_intake.handlers import Intake, Registered
from povguard_intake.importer import (
    HouseholdRows,
    RowError,
    duplicate_rows,
    household_chunks,
    parse_household,
    read_table,
    same_as_registered,
    scan,
    violation_rows,
)
from povguard_platform.actor import Actor
from povguard_platform.errors import DomainConflict, RuleViolations
from povguard_platform.problems import is_outage
from povguard_platform.spreadsheet import text_cells

log = logging.getLogger(__name__)
CHUNK = 500
MAX_ATTEMPTS = 5  # starts of one job (the first and its resumes) before it ends `failed`
RESUME_EVERY = 2.0  # seconds between looks for jobs nobody is running
SPOOL_SLICE = 16 * 1024 * 1024  # bytes of the stored upload read at a time


@dataclass
class ImportProgress:
    households: int = 0
    processed: int = 0
    imported: int = 0
    unchanged: int = 0
    refused: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)


def file_digest(content: bytes | BinaryIO) -> str:
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    content.seek(0)
    return hashlib.file_digest(content, "sha256").hexdigest()  # type: ignore[arg-type]


async def start_import(engine: AsyncEngine, import_id: str, file_name: str, content: bytes | BinaryIO,
                       actor: Actor) -> None:
    """Store the upload as the job's file, a slice at a time from the spooled upload: a county's file (100 MB of
    CSV) held whole, plus the driver's copy of it, was intake's peak memory. One transaction: no half-stored file."""
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    digest = await asyncio.to_thread(file_digest, source)  # the spooled upload is on disk: off the event loop
    source.seek(0)
    async with engine.begin() as conn:
        await conn.execute(text("""INSERT INTO intake.imports (import_id, file_name, sha256, actor, status, content)
                                   VALUES (:i, :f, :s, CAST(:a AS jsonb), 'running', :c)"""),
                           {"i": import_id, "f": file_name, "s": digest, "a": actor.model_dump_json(),
                            "c": await asyncio.to_thread(source.read, SPOOL_SLICE)})
        while part := await asyncio.to_thread(source.read, SPOOL_SLICE):
            await conn.execute(text("UPDATE intake.imports SET content = content || :c WHERE import_id = :i"),
                               {"c": part, "i": import_id})


def import_scope(actor: Actor) -> Callable[[str], bool]:
    """Which households the uploader may register: those inside its org unit (administrators included)."""
    return actor.covers


def _lock_key(import_id: str) -> int:
    return zlib.crc32(f"povguard.import.{import_id}".encode())


async def run_import(engine: AsyncEngine, intake: Intake, import_id: str,
                     on_progress: Callable[[ImportProgress], None] | None = None) -> ImportProgress | None:
    """Run (or resume) the import job `import_id` if nobody else is running it: under its advisory lock, from its
    next chunk, each chunk committed with the job's progress. Returns the progress, or None when another session
    holds the job, it is finished, or the database went away (the job is then resumed later)."""
    try:
        async with engine.connect() as lock_conn:
            got = (await lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(import_id)}))
            if not got.scalar():
                return None
            await lock_conn.commit()
            try:
                return await _run_locked(engine, intake, import_id, on_progress)
            finally:
                await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(import_id)})
                await lock_conn.commit()
    except Exception as exc:
        if is_outage(exc):
            log.warning("import %s interrupted by a database outage; it resumes when the database is back: %r",
                        import_id, exc)
            return None
        raise


async def _run_locked(engine: AsyncEngine, intake: Intake, import_id: str,
                      on_progress: Callable[[ImportProgress], None] | None) -> ImportProgress | None:
    async with engine.begin() as conn:
        row = (await conn.execute(text("""
            UPDATE intake.imports SET attempts = attempts + 1 WHERE import_id = :i AND status = 'running'
            RETURNING file_name, actor, next_chunk, attempts, households, processed, imported, unchanged,
                      refused, rows, errors"""), {"i": import_id})).first()
    if row is None:
        return None
    progress = ImportProgress(row.households, row.processed, row.imported, row.unchanged, row.refused, row.rows,
                              [RowError(**e) for e in row.errors])
    if row.attempts > MAX_ATTEMPTS:
        await _save_progress(engine, import_id, progress, "failed",
                             f"导入已中断 {MAX_ATTEMPTS} 次，已停止；请检查服务日志后重新上传（import stopped after "
                             f"{MAX_ATTEMPTS} interrupted attempts）")
        return progress
    actor = Actor.model_validate(row.actor)
    try:
        with tempfile.TemporaryFile() as spool:
            await _spool(engine, import_id, spool)
            # two passes over the file, never all its rows at once: the first learns which households make each
            # chunk, the second hands out each chunk as soon as its rows are read
            layout = await asyncio.to_thread(scan, read_table(spool, row.file_name), CHUNK)
            progress.households, progress.rows = layout.households, layout.rows
            chunks = household_chunks(read_table(spool, row.file_name), layout, row.next_chunk)
            try:
                while (item := await asyncio.to_thread(next, chunks, None)) is not None:
                    index, households = item
                    await _import_chunk(engine, intake, import_id, index, households, actor, import_scope(actor),
                                        progress)
                    if on_progress:
                        on_progress(progress)
            finally:
                chunks.close()  # the workbook's parts
        message = None if layout.households else "文件中没有农户数据（只有表头）"
        await _save_progress(engine, import_id, progress, "done", message)
    except Exception as exc:
        if is_outage(exc):
            raise
        log.exception("import %s failed", import_id)
        await _save_progress(engine, import_id, progress, "failed", f"{type(exc).__name__}: {exc}"[:500])
    return progress


async def _spool(engine: AsyncEngine, import_id: str, spool: BinaryIO) -> None:
    """The job's stored file onto disk a slice at a time: a county's upload (100 MB of CSV) is never held whole,
    let alone twice (the driver's buffer and its bytes)."""
    async with engine.connect() as conn:
        size = (await conn.execute(text("SELECT octet_length(content) FROM intake.imports WHERE import_id = :i"),
                                   {"i": import_id})).scalar_one()
        for start in range(0, size, SPOOL_SLICE):
            part = (await conn.execute(text("SELECT substring(content FROM :o FOR :n) FROM intake.imports "
                                            "WHERE import_id = :i"),
                                       {"o": start + 1, "n": SPOOL_SLICE, "i": import_id})).scalar_one()
            spool.write(part)
    spool.flush()


async def resume_imports(engine: AsyncEngine, intake: Intake, stop: asyncio.Event) -> None:
    """Every few seconds, take up the running jobs nobody holds (their process died, or the database went away)."""
    running: dict[str, asyncio.Task[ImportProgress | None]] = {}
    while not stop.is_set():
        try:
            async with engine.connect() as conn:
                ids = [r[0] for r in await conn.execute(text(
                    "SELECT import_id FROM intake.imports WHERE status = 'running' ORDER BY created_at"))]
            for import_id in ids:
                if import_id not in running:
                    task = asyncio.create_task(run_import(engine, intake, import_id))
                    running[import_id] = task
                    task.add_done_callback(lambda _, i=import_id: running.pop(i, None))  # type: ignore[misc]
        except Exception as exc:  # an outage: look again later
            log.warning("looking for imports to resume failed: %r", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RESUME_EVERY)
    for task in running.values():
        task.cancel()


async def _import_chunk(engine: AsyncEngine, intake: Intake, import_id: str, index: int, chunk: list[HouseholdRows],
                        actor: Actor, in_scope: Callable[[str], bool], progress: ImportProgress) -> None:
    """One chunk, committed together with the job's progress: a crash before the commit redoes the chunk (nothing
    of it was written), a crash after it resumes at the next one."""
    before = dataclasses.replace(progress, errors=list(progress.errors))
    today = intake.today()
    parsed = await asyncio.to_thread(lambda: [parse_household(h, today) for h in chunk])
    try:
        async with engine.begin() as conn:
            valid = []
            for p in parsed:
                if p.command is not None and not in_scope(p.command.place.group_code):
                    p.errors.append(RowError(p.household.row_numbers[0], "村民小组代码",
                                             f"不在您的管辖范围（{actor.org}）内", "scope"))
                    p.command = None
                if p.command is None:
                    progress.refused += 1
                    progress.errors += p.errors
                else:
                    valid.append(p)
            rows = await conn.execute(text("SELECT code, state FROM intake.households WHERE code = ANY(:c)"),
                                      {"c": [p.household.code for p in valid]})
            registered = {r[0]: Household.model_validate(r[1], context=STORED) for r in rows}
            new = []
            for p in valid:
                assert p.command is not None
                state = registered.get(p.household.code)
                if state is None:
                    new.append(p)
                elif same_as_registered(p.command, state):
                    progress.unchanged += 1
                else:
                    progress.refused += 1
                    message = f"户编号 {p.household.code} 已登记，文件内容与系统记录不一致；请通过成员变更或采集表更新"
                    progress.errors += [RowError(n, "户编号", message, "changed") for n in p.household.row_numbers]
            results = await intake.register_many(conn, [p.command for p in new if p.command], actor,
                                                 source="批量导入") if new else []
            for p, result in zip(new, results, strict=True):
                assert p.command is not None
                if isinstance(result, Registered):
                    progress.imported += 1
                elif isinstance(result, RuleViolations):
                    progress.refused += 1
                    progress.errors += [e for v in result.violations for e in violation_rows(v, p.household)]
                elif isinstance(result, DomainConflict):
                    progress.refused += 1
                    duplicates: Any = result.extra.get("duplicates", [])
                    ids = [d["id_number"] for d in duplicates]
                    progress.errors += duplicate_rows(ids, str(result), p.household, p.command)
            progress.processed += len(chunk)
            await _write_progress(conn, import_id, progress, "running", None, next_chunk=index + 1)
    except BaseException:
        _restore(progress, before)
        raise


def _restore(progress: ImportProgress, before: ImportProgress) -> None:
    """The chunk's transaction did not commit: its counts and errors did not happen."""
    for f in dataclasses.fields(ImportProgress):
        setattr(progress, f.name, getattr(before, f.name))


async def _save_progress(engine: AsyncEngine, import_id: str, progress: ImportProgress, status: str,
                         message: str | None = None) -> None:
    async with engine.begin() as conn:
        await _write_progress(conn, import_id, progress, status, message)


async def _write_progress(conn: AsyncConnection, import_id: str, progress: ImportProgress, status: str,
                          message: str | None, next_chunk: int | None = None) -> None:
    errors = sorted(progress.errors, key=lambda e: (e.row, e.column))
    await conn.execute(text("""
        UPDATE intake.imports SET status = :st, households = :h, processed = :p, imported = :i, unchanged = :u,
               refused = :r, rows = :rows, errors = CAST(:e AS jsonb), message = :m,
               next_chunk = coalesce(CAST(:next AS integer), next_chunk),
               finished_at = CASE WHEN :st IN ('done', 'failed') THEN now() END
        WHERE import_id = :id"""),
        {"st": status, "h": progress.households, "p": progress.processed, "i": progress.imported,
         "u": progress.unchanged, "r": progress.refused, "rows": progress.rows,
         "e": json.dumps([e.__dict__ for e in errors], ensure_ascii=False), "m": message, "next": next_chunk,
         "id": import_id})


# --- files -------------------------------------------------------------------------------------------------------


def template_xlsx() -> bytes:
    """The empty template with a sheet of allowed values for each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "农户信息"
    sheet.append(HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.number_format = "@"
    notes = book.create_sheet("填写说明")
    notes.append(["列", "必填", "格式", "可选值 / 说明"])
    kinds = {"text": "文本", "int": "整数", "date": "日期 YYYY-MM-DD", "bool": f"{YES}/{NO}", "enum": "单选",
             "enums": f"多选，用“{SEPARATOR}”分隔"}
    for c in COLUMNS:
        values = "、".join(v.value for v in c.values) if c.values else ""
        notes.append([c.header, YES if c.required else NO, kinds[c.kind], values or c.help])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def errors_xlsx(content: bytes, file_name: str, errors: list[dict[str, Any]]) -> bytes:
    """The input as uploaded, with a column saying what is wrong with each bad row."""
    from openpyxl import Workbook

    by_row: dict[int, list[str]] = {}
    for e in errors:
        by_row.setdefault(int(e["row"]), []).append(f"{e['column']}：{e['message']}")
    book = Workbook(write_only=True)
    sheet = book.create_sheet("农户信息")
    sheet.append([*HEADERS, ERROR_HEADER])
    for number, row in read_table(content, file_name):
        sheet.append(text_cells(sheet, [_plain(v) for v in row] + ["；".join(by_row.get(number, []))]))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float)) else str(value)


def _row_of(state: Household, facts: Any) -> list[Any]:
    assert state.place is not None
    household = {"code": state.code, "kind": state.kind.value, "lifted_year": state.lifted_year,
                 "category": state.category.value if state.category else None, "status": state.status.value,
                 "flags": SEPARATOR.join(f.value for f in state.flags)}
    place = state.place.model_dump()
    member = facts.model_dump(mode="json")
    out = []
    for c in COLUMNS:
        level, _, name = c.key.partition(".")
        value = {"household": household, "place": place, "member": member}[level].get(name)
        if c.kind == "bool" and value is not None:
            value = YES if value else NO
        elif c.kind == "enums" and isinstance(value, list):
            value = SEPARATOR.join(value)
        out.append(value)
    return out


async def export_rows(engine: AsyncEngine, org: str) -> AsyncIterator[list[Any]]:
    """Every member of every household under `org`, in the template, households in code order."""
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT state FROM intake.households WHERE group_code LIKE :p ORDER BY code"),
                                   {"p": org + "%"})
        async for (raw,) in result:
            state = Household.model_validate(raw, context=STORED)
            for facts in state.members.values():
                yield _row_of(state, facts)


async def export_xlsx(engine: AsyncEngine, org: str) -> tuple[bytes, int]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("农户信息")
    sheet.append(HEADERS)
    count = 0
    async for row in export_rows(engine, org):
        sheet.append(text_cells(sheet, row))
        count += 1
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), count
