"""/v1/delivery-records and /v1/mismatches: departments send their own records of what they delivered (JSON batch
or XLSX); the service compares them with the plans and lists 未录入 and 未享受录入 until they are resolved."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text

from povguard_contracts.numbers import Yuan
from povguard_contracts.vocab import Department, MeasureKind
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import department_of, org_prefix, require_org
from povguard_platform.errors import RuleViolations, Violation
from povguard_platform.problems import Forbidden, InvalidInput
from povguard_platform.service import Runtime
from povguard_platform.spreadsheet import FORMULA_REFUSED, Formula, read_sheet
from povguard_support.api.deps import DepartmentClient, Reader, SupportDep
from povguard_support.handlers import DeliveryRecord

router = APIRouter(prefix="/v1", tags=["delivery checks"])
XLSX_COLUMNS = {"记录编号": "record_ref", "户ID": "household_id", "措施类型": "kind", "发放日期": "delivered_on",
                "金额": "amount"}
MAX_UPLOAD = 20 * 1024 * 1024


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    record_ref: str = Field(min_length=1, max_length=100, description="the department's own record number")
    household_id: str = Field(min_length=1, max_length=64)
    kind: MeasureKind
    delivered_on: date
    amount: Yuan | None = None


class RecordsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    department: Department | None = Field(default=None, description="default: the department of the token")
    records: list[RecordIn] = Field(min_length=1, max_length=20000)


class ReconcileResult(BaseModel):
    department: str
    records: int
    found: int
    resolved: int


class MismatchPublic(BaseModel):
    mismatch_id: str
    household_id: str
    village_code: str
    department: str
    kind: str
    mismatch: str
    open: bool
    detail: str
    resolution: str | None
    updated_at: datetime


class MismatchesPublic(BaseModel):
    data: list[MismatchPublic]
    next_cursor: str | None


def _department(actor: Actor, named: Department | None, county: str) -> Department:
    """The department whose records these are; the records are about the county's households, so the sender must
    serve that county."""
    require_org(actor, county)
    own = department_of(actor)
    if own is not None:
        if named is not None and named != own:
            raise Forbidden(f"部门账号 {own.value} 只能报送本部门的记录（不能代 {named.value} 报送）",
                            code="department")
        return own
    if named is None:
        raise RuleViolations([Violation("department", "须指明报送部门", "required")])
    return named


def _record(r: RecordIn) -> DeliveryRecord:
    return DeliveryRecord(record_ref=r.record_ref, household_id=r.household_id, kind=r.kind,
                          delivered_on=r.delivered_on, amount=r.amount)


@router.post("/delivery-records", operation_id="receive_delivery_records",
             summary="行业部门报送帮扶措施发放/实施记录（JSON 批量），与帮扶计划比对")
async def receive_records(body: RecordsIn, runtime: Runtime, support: SupportDep,
                          actor: DepartmentClient) -> ReconcileResult:
    department = _department(actor, body.department, support.county)
    async with runtime.engine.begin() as conn:
        result = await support.receive_records(conn, department, [_record(r) for r in body.records], actor)
    return ReconcileResult(department=department.value, **result)


def parse_xlsx(content: bytes, file_name: str) -> list[RecordIn]:
    """The first sheet: a header row naming 记录编号, 户ID, 措施类型, 发放日期, 金额 (any order), one record a row."""
    rows = read_sheet(content, file_name)
    header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
    missing = [h for h in XLSX_COLUMNS if h != "金额" and h not in header]
    if missing:
        raise RuleViolations([Violation("file", f"缺少列：{'、'.join(missing)}", "template")])
    index = {XLSX_COLUMNS[h]: i for i, h in enumerate(header) if h in XLSX_COLUMNS}
    records: list[RecordIn] = []
    violations: list[Violation] = []
    for n, row in enumerate(rows, start=2):
        if not any(c not in (None, "") for c in row):
            continue
        values: dict[str, Any] = {k: row[i] if i < len(row) else None for k, i in index.items()}
        formulas = [h for h, k in XLSX_COLUMNS.items() if isinstance(values.get(k), Formula)]
        violations += [Violation(f"rows.{n}.{h}", f"第{n}行 {h}：{FORMULA_REFUSED}", "formula") for h in formulas]
        if formulas:
            continue
        if isinstance(values.get("delivered_on"), datetime):
            values["delivered_on"] = values["delivered_on"].date()
        for key in ("record_ref", "household_id"):
            if values.get(key) is not None:
                values[key] = str(values[key]).strip()
        if values.get("amount") in ("", None):
            values["amount"] = None
        try:
            records.append(RecordIn.model_validate(values))
        except ValidationError as exc:
            header_of = {v: k for k, v in XLSX_COLUMNS.items()}
            for err in exc.errors():
                column = header_of.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else "?"
                violations.append(Violation(f"rows.{n}.{column}", f"第{n}行 {column}：{err['msg']}", "row"))
    if violations:
        raise RuleViolations(violations)
    if not records:
        raise RuleViolations([Violation("file", "文件中没有记录", "empty")])
    return records


@router.post("/delivery-records.xlsx", operation_id="upload_delivery_records",
             summary="行业部门上传发放/实施记录表（XLSX：记录编号、户ID、措施类型、发放日期、金额），与帮扶计划比对")
async def upload_records(runtime: Runtime, support: SupportDep, actor: DepartmentClient,
                         file: Annotated[UploadFile, File(description="XLSX")],
                         department: Annotated[Department | None, Form()] = None) -> ReconcileResult:
    dept = _department(actor, department, support.county)
    content = await file.read()
    if len(content) > MAX_UPLOAD:
        raise InvalidInput("文件过大（上限 20 MB）")
    records = parse_xlsx(content, file.filename or "upload.xlsx")
    async with runtime.engine.begin() as conn:
        result = await support.receive_records(conn, dept, [_record(r) for r in records], actor)
    return ReconcileResult(department=dept.value, **result)


@router.get("/mismatches", operation_id="list_mismatches",
            summary="未录入（有发放记录未登记实施）与未享受录入（登记实施而部门无记录），按户、按部门")
async def list_mismatches(
    runtime: Runtime, support: SupportDep, actor: Reader,
    department: Department | None = None,
    household_id: str | None = None,
    mismatch: Annotated[str | None, Query(description="未录入 | 未享受录入")] = None,
    open: bool | None = True,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MismatchesPublic:
    if actor.role == Role.DEPARTMENT:
        department = _department(actor, department, support.county)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT mismatch_id, household_id, village_code, department, kind, mismatch, open, detail, resolution,
                   updated_at
            FROM support.mismatches
            WHERE coalesce(nullif(village_code, ''), :county) LIKE :prefix AND mismatch_id > :cursor
              AND (CAST(:dept AS text) IS NULL OR department = :dept)
              AND (CAST(:hh AS text) IS NULL OR household_id = :hh)
              AND (CAST(:mm AS text) IS NULL OR mismatch = :mm)
              AND (CAST(:open AS boolean) IS NULL OR open = :open)
            ORDER BY mismatch_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "county": support.county, "cursor": cursor or "",
             "dept": department.value if department else None, "hh": household_id, "mm": mismatch, "open": open,
             "n": limit + 1})
        items = [MismatchPublic(**r._mapping) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    return MismatchesPublic(data=items, next_cursor=items[-1].mismatch_id if more else None)
