"""/v1/measures: measures by responsible department and status (a department sees its own)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from povguard_contracts.vocab import Department, MeasureKind
from povguard_platform.auth import department_of, org_prefix
from povguard_platform.problems import Forbidden
from povguard_platform.service import Runtime
from povguard_support.api.deps import Reader
from povguard_support.api.schemas import MeasurePublic, MeasuresPublic
from povguard_support.domain.plan import MeasureStatus

router = APIRouter(prefix="/v1/measures", tags=["measures"])


def _d(value: Any) -> date | None:
    return value if isinstance(value, date) else None


@router.get("", operation_id="list_measures", summary="帮扶措施（按责任部门、状态、类型、村）")
async def list_measures(
    runtime: Runtime, actor: Reader,
    department: Department | None = None,
    status: MeasureStatus | None = None,
    kind: MeasureKind | None = None,
    village: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MeasuresPublic:
    own = department_of(actor)
    if own is not None:
        if department is not None and department != own:
            raise Forbidden(f"部门账号 {own.value} 只能查看本部门的措施", code="department")
        department = own
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT measure_id, household_id, village_code, kind, developmental, department, status, description,
                   amount, planned_start, planned_end, implemented_on, implemented_amount, evidence_ref, verified_on
            FROM support.measures
            WHERE village_code LIKE :prefix AND measure_id > :cursor
              AND (CAST(:dept AS text) IS NULL OR department = :dept)
              AND (CAST(:status AS text) IS NULL OR status = :status)
              AND (CAST(:kind AS text) IS NULL OR kind = :kind)
              AND (CAST(:village AS text) IS NULL OR village_code LIKE :village || '%')
            ORDER BY measure_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "cursor": cursor or "", "n": limit + 1,
             "dept": department.value if department else None, "status": status.value if status else None,
             "kind": kind.value if kind else None, "village": village})
        items = [MeasurePublic(
            measure_id=r.measure_id, household_id=r.household_id, village_code=r.village_code, kind=r.kind,
            developmental=r.developmental, department=r.department, status=r.status, description=r.description,
            amount=r.amount, planned_start=_d(r.planned_start), planned_end=_d(r.planned_end),
            implemented_on=_d(r.implemented_on), implemented_amount=r.implemented_amount,
            evidence_ref=r.evidence_ref, verified_on=_d(r.verified_on)) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    return MeasuresPublic(data=items, next_cursor=items[-1].measure_id if more else None)
