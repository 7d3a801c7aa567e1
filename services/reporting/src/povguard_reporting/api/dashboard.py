"""/v1/dashboard: the figures of one org unit for the dashboard (one answer per screen), its households and a
household's history; an ETag lets the page poll cheaply for changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import text

from povguard_platform.problems import NotFound
from povguard_platform.service import Runtime
from povguard_reporting import queries
from povguard_reporting.api.deps import AsOfQuery, OrgQuery, PolicyDep, Reader, scope_of

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


@router.get("/summary", operation_id="dashboard_summary",
            summary="看板：一个单位（县、乡镇、行政村）截至某日的全部指标及下级单位分列",
            responses={304: {"description": "unchanged since the ETag given in If-None-Match"}})
async def summary(request: Request, response: Response, runtime: Runtime, actor: Reader, policy: PolicyDep,
                  org: OrgQuery = None, as_of: AsOfQuery = None) -> Any:
    scope = scope_of(actor, policy, org, as_of, runtime.clock.today())
    async with runtime.read() as conn:
        version = await queries.version(conn)
        etag = f'"{version}-{scope.org}-{scope.day.isoformat()}-{as_of or ""}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        body = await queries.summary(conn, scope, policy)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return body


@router.get("/households", operation_id="dashboard_households",
            summary="一个单位的农户（分页；不含身份证号码）")
async def households(runtime: Runtime, actor: Reader, policy: PolicyDep, org: OrgQuery = None,
                     as_of: AsOfQuery = None,
                     cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    scope = scope_of(actor, policy, org, as_of, runtime.clock.today())
    async with runtime.read() as conn:
        rows = await queries.households(conn, scope, cursor or "", limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next_cursor": rows[-1]["household_id"] if more else None}


@router.get("/households/{household_id}/history", operation_id="dashboard_household_history",
            summary="一户的经历：各服务的事件（时间、类型、办理人），个人信息不显示")
async def history(household_id: str, runtime: Runtime, actor: Reader, policy: PolicyDep) -> dict[str, Any]:
    async with runtime.read() as conn:
        row = (await conn.execute(text("""SELECT village_code, state->>'code' AS code, state->>'head' AS head
                                          FROM reporting.households
                                          WHERE household_id = :h AND valid_to IS NULL"""),
                                  {"h": household_id})).first()
        if row is None:
            raise NotFound(f"没有农户 {household_id}")
        scope_of(actor, policy, row.village_code, None, runtime.clock.today())
        events = await conn.execute(text("""
            SELECT time, source, type, actor->>'user' AS user, actor->>'role' AS role, fact - 'head_id' AS fact
            FROM reporting.log WHERE household_id = :h ORDER BY time, seq"""), {"h": household_id})
        entries = [{"time": e.time.isoformat(), "source": e.source, "type": e.type, "user": e.user, "role": e.role,
                    "fact": {k: v for k, v in e.fact.items() if k not in ("t", "h")}} for e in events]
    return {"household_id": household_id, "code": row.code, "head": row.head, "village_code": row.village_code,
            "audit_timeline": f"/v1/audit/households/{household_id}/timeline", "events": entries}
