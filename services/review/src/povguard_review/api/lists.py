"""/v1/lists and /v1/stats: overdue cases per stage deadline, the 15-day identification limit, counts per stage."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from povguard_platform.contracts.review import CaseStage
from povguard_platform.service import Runtime
from povguard_review.api.deps import Reader, ReviewDep, scope_prefix

router = APIRouter(prefix="/v1", tags=["lists"])


def _group(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items grouped per township, then per village, with counts."""
    towns: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        towns[item["township_code"]][item["village_code"]].append(item)
    return [{"township_code": t, "count": sum(len(v) for v in villages.values()),
             "villages": [{"village_code": v, "count": len(cases), "cases": cases}
                          for v, cases in sorted(villages.items())]}
            for t, villages in sorted(towns.items())]


@router.get("/lists/overdue", operation_id="overdue_cases",
            summary="逾期案件：当前阶段已过工作日历规定的完成日期（按乡镇、村）")
async def overdue(runtime: Runtime, review: ReviewDep, actor: Reader, as_of: date | None = None,
                  township: str | None = None) -> dict[str, Any]:
    as_of = as_of or review.today()
    calendar = review.policy.calendar
    late = {stage: d for stage in CaseStage if (d := review.rules.deadline(calendar, stage)) is not None and d < as_of}
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT case_id, household_id, township_code, village_code, stage, outcome, lead_date FROM review.cases
            WHERE open AND stage = ANY(:stages) AND village_code LIKE :prefix
              AND (CAST(:town AS text) IS NULL OR township_code = :town)
            ORDER BY township_code, village_code, case_id"""),
            {"stages": [s.value for s in late], "prefix": scope_prefix(actor) + "%", "town": township})
        items = [{"case_id": r.case_id, "household_id": r.household_id, "township_code": r.township_code,
                  "village_code": r.village_code, "stage": r.stage, "outcome": r.outcome,
                  "deadline": late[CaseStage(r.stage)].isoformat(),
                  "days_overdue": (as_of - late[CaseStage(r.stage)]).days} for r in rows]
    return {"as_of": as_of.isoformat(), "count": len(items), "townships": _group(items)}


@router.get("/lists/identification-limit", operation_id="identification_limit",
            summary="识别时间不能超过15天：临近和已超过期限的未办结案件（按乡镇）")
async def identification_limit(runtime: Runtime, review: ReviewDep, actor: Reader,
                               as_of: date | None = None) -> dict[str, Any]:
    as_of = as_of or review.today()
    max_days = review.policy.calendar.identification_max_days
    near = review.rules.near_limit_days
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT case_id, household_id, township_code, village_code, stage, outcome, lead_date FROM review.cases
            WHERE open AND lead_date IS NOT NULL
              AND lead_date + CAST(:max_days AS int) - CAST(:near AS int) <= CAST(:as_of AS date)
              AND village_code LIKE :prefix ORDER BY lead_date, case_id"""),
            {"max_days": max_days, "near": near, "as_of": as_of, "prefix": scope_prefix(actor) + "%"})
        items = []
        for r in rows:
            limit = r.lead_date + timedelta(days=max_days)
            items.append({"case_id": r.case_id, "household_id": r.household_id, "township_code": r.township_code,
                          "village_code": r.village_code, "stage": r.stage, "outcome": r.outcome,
                          "lead_date": r.lead_date.isoformat(), "limit": limit.isoformat(),
                          "days_left": (limit - as_of).days})
    towns: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"near": [], "past": []})
    for item in items:
        towns[item["township_code"]]["past" if item["days_left"] < 0 else "near"].append(item)
    return {"as_of": as_of.isoformat(), "max_days": max_days, "near_days": near,
            "townships": [{"township_code": t, "near": v["near"], "past": v["past"]} for t, v in sorted(towns.items())]}


@router.get("/stats/stages", operation_id="stage_counts", summary="各乡镇各阶段案件数")
async def stage_counts(runtime: Runtime, actor: Reader) -> dict[str, Any]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT township_code, stage, count(*) FROM review.cases WHERE village_code LIKE :prefix
            GROUP BY township_code, stage ORDER BY township_code"""), {"prefix": scope_prefix(actor) + "%"})
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for town, stage, n in rows:
            counts[town][stage] = int(n)
    return {"townships": [{"township_code": t, "stages": s, "total": sum(s.values())} for t, s in counts.items()]}
