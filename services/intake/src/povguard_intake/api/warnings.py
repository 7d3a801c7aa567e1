"""/v1/warnings: department warnings (部门筛查预警) pushed by machine clients; unmatched ones are kept and listed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_intake.api.deps import DepartmentClient, IntakeDep, Reader
from povguard_intake.api.schemas import WarningCreate, WarningPublic, WarningsPublic
from povguard_intake.domain.idcard import mask
from povguard_intake.handlers import Intake, WarningCommand
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import department_of, org_prefix, require_org
from povguard_platform.problems import Forbidden
from povguard_platform.service import Runtime

router = APIRouter(prefix="/v1/warnings", tags=["warnings"])


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="receive_warning",
             summary="行业部门报送预警信息；匹配到在册农户即形成线索，未匹配的保留待查",
             responses={409: {"description": "the department already sent this source_ref"}})
async def receive_warning(body: WarningCreate, runtime: Runtime, intake: IntakeDep,
                          actor: DepartmentClient) -> WarningPublic:
    async with runtime.engine.begin() as conn:
        return await receive(conn, intake, actor, body)


async def receive(conn: AsyncConnection, intake: Intake, actor: Actor, body: WarningCreate) -> WarningPublic:
    # a warning is about anyone in the campaign's county (matched or not): a sender must serve that county
    require_org(actor, intake.policy.policy.county_code)
    own = department_of(actor)
    if actor.role == Role.DEPARTMENT and own != body.department:
        raise Forbidden(f"部门账号 {actor.dept} 只能报送本部门的预警（不能代 {body.department.value} 报送）",
                        code="department")
    cmd = WarningCommand(
        department=body.department, kind=body.kind, id_number=body.id_number, person_name=body.person_name,
        household_id=body.household_id, amount=body.amount, occurred_on=body.occurred_on,
        reported_on=body.reported_on or intake.today(), source_ref=body.source_ref, note=body.note)
    warning = await intake.receive_warning(conn, cmd, actor)
    return WarningPublic(warning_id=warning.warning_id, department=warning.department.value, kind=warning.kind.value,
                         id_number=mask(warning.id_number) if warning.id_number else None,
                         person_name=warning.person_name, household_id=warning.household_id,
                         matched=warning.household_id is not None, amount=warning.amount,
                         occurred_on=warning.occurred_on, source_ref=warning.source_ref)


@router.get("", operation_id="list_warnings", summary="预警列表（可只看未匹配的）")
async def list_warnings(
    runtime: Runtime, intake: IntakeDep, actor: Reader,
    matched: Annotated[bool | None, Query(description="false: only warnings about people not in the registry")] = None,
    department: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WarningsPublic:
    """Warnings about households in one's org unit; those about people not in the registry belong to the county."""
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT w.warning_id, w.department, w.kind, w.id_number, w.person_name, w.household_id, w.amount,
                   w.occurred_on, w.source_ref
            FROM intake.warnings w LEFT JOIN intake.households h USING (household_id)
            WHERE (CAST(:matched AS boolean) IS NULL OR (w.household_id IS NOT NULL) = :matched)
              AND (CAST(:dept AS text) IS NULL OR w.department = :dept) AND w.warning_id > :cursor
              AND coalesce(h.group_code, :county) LIKE :prefix
            ORDER BY w.warning_id LIMIT :n"""),
            {"matched": matched, "dept": department, "cursor": cursor or "", "n": limit + 1,
             "county": intake.policy.policy.county_code, "prefix": org_prefix(actor) + "%"})
        items = [WarningPublic(warning_id=r.warning_id, department=r.department, kind=r.kind,
                               id_number=mask(r.id_number) if r.id_number else None, person_name=r.person_name,
                               household_id=r.household_id, matched=r.household_id is not None,
                               amount=r.amount, occurred_on=r.occurred_on,
                               source_ref=r.source_ref) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    return WarningsPublic(data=items, next_cursor=items[-1].warning_id if more else None)
