"""/v1/imports and /v1/exports: the registry in and out of the template (XLSX or CSV).

An import belongs to its uploader's org unit: its status is read inside that unit, and its errors file (the upload
as it came, every ID number and phone in it) only by the roles that may export the registry, each download recorded
like an export."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.intake import PersonalDataExported
from povguard_intake import bulk
from povguard_intake.api.deps import IntakeDep, Reader
from povguard_intake.handlers import Intake
from povguard_intake.importer import TemplateError
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_org, require_roles
from povguard_platform.envelope import NewEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.problems import InvalidInput, NotFound
from povguard_platform.service import Runtime
from povguard_platform.spreadsheet import check_xlsx

router = APIRouter(tags=["import and export"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Importer = Annotated[Actor, Depends(require_roles(Role.VILLAGE_CLERK, Role.COUNTY_BUREAU))]
Exporter = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU, Role.INSPECTOR))]


class RowErrorPublic(BaseModel):
    row: int
    column: str
    message: str
    code: str


class ImportStatus(BaseModel):
    import_id: str
    file_name: str
    sha256: str
    status: str  # running | done | failed
    households: int
    processed: int
    imported: int
    unchanged: int
    refused: int
    rows: int
    error_count: int
    errors: list[RowErrorPublic]
    message: str | None
    errors_xlsx: str


@router.get("/v1/imports/template.xlsx", operation_id="download_template", response_class=Response,
            summary="下载导入模板（附填写说明与可选值）")
async def template(_: Reader) -> Response:
    return Response(bulk.template_xlsx(), media_type=XLSX, headers=_attachment("农户信息模板.xlsx"))


@router.post("/v1/imports", status_code=status.HTTP_202_ACCEPTED, operation_id="start_import",
             summary="上传农户信息表（XLSX 或 CSV）批量导入；返回导入编号，进度与错误见 GET /v1/imports/{id}")
async def start_import(request: Request, runtime: Runtime, intake: IntakeDep, actor: Importer,
                       response: Response, file: Annotated[UploadFile, File(description="按模板填写的文件")]
                       ) -> ImportStatus:
    name = file.filename or "upload.xlsx"
    if not name.lower().endswith((".xlsx", ".csv")):
        raise InvalidInput("只支持 .xlsx 或 .csv 文件")
    # bounded by the platform's upload limit (settings.max_upload_bytes): 413 beyond. Read from the spooled file,
    # never whole into memory
    if name.lower().endswith(".xlsx"):
        check_xlsx(file.file, name)  # a zip bomb is refused here, before anything unpacks it
    import_id = str(uuid7())
    await bulk.start_import(runtime.engine, import_id, name, file.file, actor)
    task = asyncio.create_task(bulk.run_import(runtime.engine, intake, import_id))
    tasks: set[asyncio.Task[Any]] = request.app.state.__dict__.setdefault("import_tasks", set())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    response.headers["Location"] = f"/v1/imports/{import_id}"
    return await _status(runtime, import_id, actor)


async def _status(runtime: Runtime, import_id: str, actor: Actor, limit: int = 1000) -> ImportStatus:
    async with runtime.read() as conn:
        row = (await conn.execute(text("""
            SELECT import_id, file_name, sha256, status, households, processed, imported, unchanged, refused, rows,
                   jsonb_array_length(errors) AS error_count, message, actor->>'org' AS org,
                   (SELECT coalesce(jsonb_agg(e), '[]') FROM (SELECT e FROM jsonb_array_elements(errors) e
                                                             LIMIT :n) x) AS first_errors
            FROM intake.imports WHERE import_id = :i"""), {"i": import_id, "n": limit})).first()
    if row is None:
        raise NotFound(f"没有导入记录 {import_id}")
    require_org(actor, row.org)
    return ImportStatus(
        import_id=row.import_id, file_name=row.file_name, sha256=row.sha256, status=row.status,
        households=row.households, processed=row.processed, imported=row.imported, unchanged=row.unchanged,
        refused=row.refused, rows=row.rows, error_count=row.error_count, message=row.message,
        errors=[RowErrorPublic(**e) for e in row.first_errors],
        errors_xlsx=f"/v1/imports/{import_id}/errors.xlsx")


@router.get("/v1/imports/{import_id}", operation_id="get_import", summary="导入进度、结果与错误（前1000条）")
async def get_import(import_id: str, runtime: Runtime, actor: Reader,
                     limit: Annotated[int, Query(ge=0, le=100_000)] = 1000) -> ImportStatus:
    return await _status(runtime, import_id, actor, limit)


@router.get("/v1/imports/{import_id}/errors.xlsx", operation_id="download_import_errors", response_class=Response,
            summary="原文件加“错误原因”列（含个人信息，记入审计）")
async def errors_file(import_id: str, runtime: Runtime, intake: IntakeDep, actor: Exporter,
                      purpose: Annotated[str, Query(max_length=100)] = "修正导入错误") -> Response:
    async with runtime.read() as conn:
        row = (await conn.execute(text("""SELECT file_name, content, errors, households, rows, actor->>'org' AS org
                                          FROM intake.imports WHERE import_id = :i"""), {"i": import_id})).first()
    if row is None:
        raise NotFound(f"没有导入记录 {import_id}")
    require_org(actor, row.org)
    try:
        data = await asyncio.to_thread(bulk.errors_xlsx, row.content, row.file_name, row.errors)
    except TemplateError as exc:
        raise InvalidInput(str(exc)) from exc
    async with runtime.engine.begin() as conn:
        await _record_export(conn, intake, actor, row.org, row.households, row.rows, data,
                             f"{purpose}（导入 {import_id} 的错误文件）")
    return Response(data, media_type=XLSX, headers=_attachment(f"导入错误-{import_id}.xlsx"))


@router.get("/v1/exports/registry.xlsx", operation_id="export_registry", response_class=Response,
            summary="导出村、乡镇或全县的农户信息（含个人信息，记入审计）")
async def export_registry(
    runtime: Runtime, intake: IntakeDep, actor: Exporter,
    org: Annotated[str, Query(pattern=r"^\d{6,15}$", description="县、乡镇、行政村或村民小组代码")],
    purpose: Annotated[str, Query(max_length=100)] = "数据比对",
) -> Response:
    require_org(actor, org)
    data, members = await bulk.export_xlsx(runtime.engine, org)
    async with runtime.engine.begin() as conn:
        households = (await conn.execute(text("SELECT count(*) FROM intake.households WHERE group_code LIKE :p"),
                                         {"p": org + "%"})).scalar_one()
        await _record_export(conn, intake, actor, org, households, members, data, purpose)
    return Response(data, media_type=XLSX, headers=_attachment(f"农户信息-{org}.xlsx"))


async def _record_export(conn: AsyncConnection, intake: Intake, actor: Actor, org: str, households: int,
                         members: int, data: bytes, purpose: str) -> None:
    """A file with the personal data of an org unit's households left the system: an event for the audit trail."""
    stream = StreamRef("access", str(uuid7()))
    event = PersonalDataExported(org=org, households=households, members=members,
                                 sha256=hashlib.sha256(data).hexdigest(), purpose=purpose)
    await intake.store.append(conn, [NewEvent(stream, org[:9].ljust(9, "0"), event)], {stream: 0},
                              intake.metadata(actor))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
