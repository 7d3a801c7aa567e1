"""/v1/reports: 附件3 统计表 and 附件2-2 工作台账 as XLSX for any org unit and date; /v1/exports: every table as CSV
for other government systems. A ledger with ID numbers is for roles that may see them, and each one is audited."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Response

from povguard_contracts.reporting import ReportExported
from povguard_platform.actor import Actor
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.problems import Forbidden
from povguard_platform.service import Runtime, ServiceRuntime
from povguard_reporting import queries, statistics
from povguard_reporting.api.deps import PERSONAL_DATA_ROLES, AsOfQuery, OrgQuery, PolicyDep, Reader, scope_of
from povguard_reporting.policy import ReportingPolicy
from povguard_reporting.queries import Scope

router = APIRouter(tags=["reports"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Personal = Annotated[bool, Query(description="证件号码不脱敏（仅限可查看个人信息的角色，记入审计）")]
Purpose = Annotated[str, Query(min_length=1, max_length=100, description="why personal data is exported (recorded)")]


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


async def _unit(runtime: ServiceRuntime, scope: Scope) -> tuple[str, datetime | None]:
    """The reporting unit's name, and the time of the last event the figures count (the 截至 line says both)."""
    async with runtime.read(replica=True) as conn:  # reports read a replica when there is one
        found = await queries.names(conn, [scope.org[:6], scope.org[:9], scope.org])
        data_time = queries.latest(await queries.data_as_of(conn, scope))
    name = "".join(dict.fromkeys(found.get(c, "") for c in (scope.org[:6], scope.org[:9], scope.org))) or scope.org
    return name, data_time


async def _ledger(runtime: ServiceRuntime, actor: Actor, policy: ReportingPolicy, scope: Scope, personal: bool,
                  ) -> list[dict[str, Any]]:
    if personal and actor.role not in PERSONAL_DATA_ROLES:
        raise Forbidden(f"role {actor.role.value} may not see personal data (证件号码)")
    async with runtime.read(replica=True) as conn:
        return await statistics.ledger_rows(conn, scope, policy, personal)


async def _audited(runtime: ServiceRuntime, actor: Actor, policy: ReportingPolicy, report: str, scope: Scope,
                   rows: Sequence[dict[str, Any]], data: bytes, purpose: str) -> None:
    """An export with ID numbers is an event of its own (the audit ledger records it, like the registry's)."""
    event = ReportExported(report=report, org=scope.org, as_of=scope.day.isoformat(),
                           households=sum(isinstance(r["no"], int) for r in rows),
                           sha256=hashlib.sha256(data).hexdigest(), purpose=purpose)
    stream = StreamRef("access", str(uuid7()))
    async with runtime.engine.begin() as conn:
        await runtime.store.append(conn, [NewEvent(stream, scope.org[:9].ljust(9, "0"), event)], {stream: 0},
                                   Metadata(actor=actor, policy=policy.policy.ref))


@router.get("/v1/reports/statistics.xlsx", operation_id="statistics_xlsx", response_class=Response,
            summary="附件3 防止返贫监测帮扶集中排查情况统计表（XLSX：按村分列、乡镇小计、合计）")
async def statistics_xlsx(runtime: Runtime, actor: Reader, policy: PolicyDep, org: OrgQuery = None,
                          as_of: AsOfQuery = None) -> Response:
    scope = scope_of(actor, policy, org, as_of, runtime.clock.today())
    async with runtime.read(replica=True) as conn:
        rows = await statistics.statistics_rows(conn, scope)
    unit, data_time = await _unit(runtime, scope)
    data = await asyncio.to_thread(statistics.statistics_xlsx, rows, unit, scope.day, data_time)
    return Response(data, media_type=XLSX, headers=_attachment(f"附件3-统计表-{scope.org}-{scope.day}.xlsx"))


@router.get("/v1/reports/ledger.xlsx", operation_id="ledger_xlsx", response_class=Response,
            summary="附件2-2 集中排查工作台账（XLSX：每户一行、乡镇小计；证件号码默认脱敏）")
async def ledger_xlsx(runtime: Runtime, actor: Reader, policy: PolicyDep, org: OrgQuery = None,
                      as_of: AsOfQuery = None, include_personal: Personal = False,
                      purpose: Purpose = "统计上报") -> Response:
    scope = scope_of(actor, policy, org, as_of, runtime.clock.today())
    rows = await _ledger(runtime, actor, policy, scope, include_personal)
    unit, data_time = await _unit(runtime, scope)
    data = await asyncio.to_thread(statistics.ledger_xlsx, rows, unit, scope.day, data_time)
    if include_personal:
        await _audited(runtime, actor, policy, "附件2-2", scope, rows, data, purpose)
    return Response(data, media_type=XLSX, headers=_attachment(f"附件2-2-工作台账-{scope.org}-{scope.day}.xlsx"))


class Table(StrEnum):
    STATISTICS = "statistics"
    LEDGER = "ledger"
    PROGRESS = "progress"
    DEADLINES = "deadlines"
    OUTCOMES = "outcomes"
    BANDS = "bands"
    MEASURES = "measures"
    PROBLEMS = "problems"


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()  # the BOM: spreadsheet programs then read it as UTF-8


PROGRESS = [("code", "代码"), ("name", "单位"), ("households", "农户户数"), ("persons", "人数"),
            ("priority", "重点排查户数"), ("visited", "入户调查户数"), ("assessed", "研判户数"),
            ("proposed", "研判有变化户数"), ("held", "暂缓户数"), ("open_cases", "办理中案件"),
            ("overdue", "逾期案件"), ("decided", "已审定户数"), ("plans", "帮扶计划"),
            ("missing", "缺什么补什么未覆盖"),
            ("safety_net_only", "一兜了之"), ("mismatched", "措施录入不一致户数"), ("problems_open", "未清零问题")]


async def _table(runtime: ServiceRuntime, actor: Actor, policy: ReportingPolicy, table: Table, scope: Scope,
                 personal: bool) -> tuple[list[str], list[list[Any]], list[dict[str, Any]] | None]:
    if table is Table.LEDGER:
        rows = await _ledger(runtime, actor, policy, scope, personal)
        return (statistics.headers(statistics.LEDGER), [[r.get(k, "") for k in statistics.LEDGER_KEYS] for r in rows],
                rows)
    async with runtime.read(replica=True) as conn:
        if table is Table.STATISTICS:
            rows = await statistics.statistics_rows(conn, scope)
            return (statistics.headers(statistics.STATISTICS),
                    [[r.get(k, "") for k in statistics.STATISTICS_KEYS] for r in rows], None)
        if table is Table.PROGRESS:
            totals, children = await queries.counts(conn, scope, policy)
            every = [{"code": scope.org, "name": "合计", **totals}, *children]
            return [h for _, h in PROGRESS], [[r.get(k, "") for k, _ in PROGRESS] for r in every], None
        if table is Table.DEADLINES:
            d = await queries.deadlines(conn, scope, policy)
            return (["阶段", "完成时限", "剩余天数", "办理中案件", "逾期案件", "办理人"],
                    [[s["stage"], s["deadline"], s["days_left"], s["open"], s["overdue"], s["acts"]]
                     for s in d["stages"]], None)
        if table is Table.OUTCOMES:
            o = await queries.outcomes(conn, scope)
            return (["结果", "研判户数", "审定户数", "审定人数"],
                    [[k, o["proposed"].get(k, 0), o["decided"].get(k, {}).get("households", 0),
                      o["decided"].get(k, {}).get("persons", 0)] for k in o["order"]], None)
        if table is Table.BANDS:
            return (["人均纯收入分段", "户数", "人数"],
                    [[b["band"], b["households"], b["persons"]] for b in await queries.bands(conn, scope)], None)
        if table is Table.MEASURES:
            s = await queries.support(conn, scope)
            return ["帮扶措施类型", "项数"], [[k, n] for k, n in s["by_kind"].items()], None
        p = await queries.problems(conn, scope)
        return (["规则", "类型", "未清零", "已清零"],
                [[r["rule"], r["kind"], r["open"], r["cleared"]] for r in p["by_rule"]], None)


@router.get("/v1/exports/{table}.csv", operation_id="export_csv", response_class=Response,
            summary="CSV（UTF-8）：统计表、工作台账、进度、时限、研判与审定结果、收入分段、帮扶措施、数据质量问题")
async def export_csv(table: Table, runtime: Runtime, actor: Reader, policy: PolicyDep, org: OrgQuery = None,
                     as_of: AsOfQuery = None, include_personal: Personal = False,
                     purpose: Purpose = "数据交换") -> Response:
    scope = scope_of(actor, policy, org, as_of, runtime.clock.today())
    header, rows, ledger = await _table(runtime, actor, policy, table, scope, include_personal)
    data = _csv(header, rows)
    if ledger is not None and include_personal:
        await _audited(runtime, actor, policy, "附件2-2", scope, ledger, data, purpose)
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers=_attachment(f"{table.value}-{scope.org}-{scope.day}.csv"))
