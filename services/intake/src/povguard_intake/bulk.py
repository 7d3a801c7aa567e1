"""Bulk import and export of the registry in the template. An import runs in chunks of households, each chunk one
transaction; a household with any bad row is refused, the others are registered; a household already registered
with the same facts is counted unchanged, so importing a file twice changes nothing the second time."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_contracts.template import COLUMNS, ERROR_HEADER, HEADERS, NO, SEPARATOR, YES
from povguard_intake.domain.household import Household
from povguard_intake.handlers import Intake, Registered
from povguard_intake.importer import (
    HouseholdRows,
    RowError,
    duplicate_rows,
    group_households,
    parse_household,
    read_table,
    same_as_registered,
    violation_rows,
)
from povguard_platform.actor import Actor
from povguard_platform.errors import DomainConflict, RuleViolations
from povguard_platform.spreadsheet import text_cells

log = logging.getLogger(__name__)
CHUNK = 500


@dataclass
class ImportProgress:
    households: int = 0
    processed: int = 0
    imported: int = 0
    unchanged: int = 0
    refused: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)


def file_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def start_import(engine: AsyncEngine, import_id: str, file_name: str, content: bytes, actor: Actor) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("""INSERT INTO intake.imports (import_id, file_name, sha256, actor, status, content)
                                   VALUES (:i, :f, :s, CAST(:a AS jsonb), 'running', :c)"""),
                           {"i": import_id, "f": file_name, "s": file_digest(content), "a": actor.model_dump_json(),
                            "c": content})


async def run_import(engine: AsyncEngine, intake: Intake, import_id: str, file_name: str, content: bytes,
                     actor: Actor, in_scope: Callable[[str], bool],
                     on_progress: Callable[[ImportProgress], None] | None = None) -> ImportProgress:
    """Import a file already recorded by `start_import`; progress is written to its row after every chunk."""
    progress = ImportProgress()
    try:
        households = await asyncio.to_thread(lambda: list(group_households(read_table(content, file_name))))
        progress.households = len(households)
        progress.rows = sum(len(h.rows) for h in households)
        for start in range(0, len(households), CHUNK):
            await _import_chunk(engine, intake, households[start:start + CHUNK], actor, in_scope, progress)
            await _save_progress(engine, import_id, progress, "running")
            if on_progress:
                on_progress(progress)
            await asyncio.sleep(0)  # let the API answer between chunks
        await _save_progress(engine, import_id, progress, "done")
    except Exception as exc:
        log.exception("import %s failed", import_id)
        await _save_progress(engine, import_id, progress, "failed", str(exc))
        raise
    return progress


async def _import_chunk(engine: AsyncEngine, intake: Intake, chunk: list[HouseholdRows], actor: Actor,
                        in_scope: Callable[[str], bool], progress: ImportProgress) -> None:
    today = intake.today()
    parsed = await asyncio.to_thread(lambda: [parse_household(h, today) for h in chunk])
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
        registered = {r[0]: Household.model_validate(r[1]) for r in rows}
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


async def _save_progress(engine: AsyncEngine, import_id: str, progress: ImportProgress, status: str,
                         message: str | None = None) -> None:
    errors = sorted(progress.errors, key=lambda e: (e.row, e.column))
    async with engine.begin() as conn:
        await conn.execute(text("""
            UPDATE intake.imports SET status = :st, households = :h, processed = :p, imported = :i, unchanged = :u,
                   refused = :r, rows = :rows, errors = CAST(:e AS jsonb), message = :m,
                   finished_at = CASE WHEN :st IN ('done', 'failed') THEN now() END
            WHERE import_id = :id"""),
            {"st": status, "h": progress.households, "p": progress.processed, "i": progress.imported,
             "u": progress.unchanged, "r": progress.refused, "rows": progress.rows,
             "e": json.dumps([e.__dict__ for e in errors], ensure_ascii=False), "m": message, "id": import_id})


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
            state = Household.model_validate(raw)
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
