"""/v1/lists and /v1/stats: overdue cases per stage deadline, the 15-day identification limit (cases near or past
it, and every case acted on past it with the reasons given), counts per stage.

The lists are cursor-paged like /v1/cases: `data` holds one page of cases in township → village order, and
`townships` the counts of the whole list per township and village, so a screen shows the totals at once and pages
through the cases."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from povguard_contracts.review import CaseStage
from povguard_platform.api import cursor_key, cursor_of
from povguard_platform.auth import org_prefix
from povguard_platform.service import Runtime
from povguard_review.api.deps import Reader, ReviewDep

router = APIRouter(prefix="/v1", tags=["lists"])


Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _counts(rows: list[Any]) -> list[dict[str, Any]]:
    """(township, village, count) rows as counts per township, then per village."""
    towns: dict[str, dict[str, int]] = defaultdict(dict)
    for town, village, n in rows:
        towns[town][village] = int(n)
    return [{"township_code": t, "count": sum(villages.values()),
             "villages": [{"village_code": v, "count": n} for v, n in sorted(villages.items())]}
            for t, villages in sorted(towns.items())]


async def _page(runtime: Runtime, where: str, params: dict[str, Any], cursor: str | None,
                limit: int) -> tuple[list[Any], str | None, list[dict[str, Any]]]:
    """One page of cases matching `where` in (village, case) order, its next cursor and the whole list's
    counts per township and village."""
    after = cursor_key(cursor, 2) or ("", "")
    async with runtime.read() as conn:
        rows = (await conn.execute(text(f"""
            SELECT case_id, household_id, township_code, village_code, stage, outcome, lead_date, open,
                   CAST(state->'notice'->>'ends_on' AS date) AS notice_ends,
                   COALESCE(state->'late_actions', '[]'::jsonb) AS late_actions FROM review.cases
            WHERE {where} AND (village_code, case_id) > (:after_village, :after_case)
            ORDER BY village_code, case_id LIMIT :n"""),
            {**params, "after_village": after[0], "after_case": after[1], "n": limit + 1})).all()
        counts = (await conn.execute(text(f"""
            SELECT township_code, village_code, count(*) FROM review.cases WHERE {where}
            GROUP BY township_code, village_code"""), params)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return list(rows), cursor_of(rows[-1].village_code, rows[-1].case_id) if more else None, _counts(list(counts))


def _item(r: Any) -> dict[str, Any]:
    return {"case_id": r.case_id, "household_id": r.household_id, "township_code": r.township_code,
            "village_code": r.village_code, "stage": r.stage, "outcome": r.outcome}


@router.get("/lists/overdue", operation_id="overdue_cases",
            summary="逾期案件：当前阶段已过工作日历规定的完成日期（按乡镇、村，分页）")
async def overdue(runtime: Runtime, review: ReviewDep, actor: Reader, as_of: date | None = None,
                  township: str | None = None, cursor: Cursor = None, limit: Limit = 200) -> dict[str, Any]:
    as_of = as_of or review.today()
    calendar = review.policy.calendar
    # during 公示 a case is held to its own notice's end (domain.held_to), not to the plan's notice_end
    late: dict[CaseStage, date] = {stage: d for stage in CaseStage if stage != CaseStage.NOTICE
            and (d := review.rules.deadline(calendar, stage)) is not None and d < as_of}
    rows, next_cursor, townships = await _page(
        runtime, """open AND (stage = ANY(:stages) OR (stage = :notice
                    AND CAST(state->'notice'->>'ends_on' AS date) < CAST(:as_of AS date)))
                    AND village_code LIKE :prefix AND (CAST(:town AS text) IS NULL OR township_code = :town)""",
        {"stages": [s.value for s in late], "notice": CaseStage.NOTICE.value, "as_of": as_of,
         "prefix": org_prefix(actor) + "%", "town": township}, cursor, limit)

    def deadline(r: Any) -> date:
        return r.notice_ends if r.stage == CaseStage.NOTICE.value else late[CaseStage(r.stage)]

    data = [_item(r) | {"deadline": deadline(r).isoformat(), "days_overdue": (as_of - deadline(r)).days}
            for r in rows]
    return {"as_of": as_of.isoformat(), "count": sum(t["count"] for t in townships), "townships": townships,
            "data": data, "next_cursor": next_cursor}


@router.get("/lists/identification-limit", operation_id="identification_limit",
            summary="识别时间不能超过15天：临近和已超过期限的未办结案件，及超期办理过的案件与理由（按乡镇、村，分页）")
async def identification_limit(runtime: Runtime, review: ReviewDep, actor: Reader, as_of: date | None = None,
                               cursor: Cursor = None, limit: Limit = 200) -> dict[str, Any]:
    as_of = as_of or review.today()
    max_days = review.policy.calendar.identification_max_days
    near = review.rules.near_limit_days
    rows, next_cursor, townships = await _page(
        runtime, """((open AND lead_date IS NOT NULL
                      AND lead_date + CAST(:max_days AS int) - CAST(:near AS int) <= CAST(:as_of AS date))
                     OR EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(state->'late_actions', '[]'::jsonb)) a
                                WHERE CAST(a->>'acted_on' AS date) <= CAST(:as_of AS date)))
                    AND village_code LIKE :prefix""",
        {"max_days": max_days, "near": near, "as_of": as_of, "prefix": org_prefix(actor) + "%"}, cursor, limit)
    data = []
    for r in rows:
        late = [a for a in r.late_actions if date.fromisoformat(a["acted_on"]) <= as_of]  # as known on as_of
        # a closed case has no days left to count; it is listed for what was done past its limit
        limit_day = r.lead_date + timedelta(days=max_days) if r.lead_date else None
        days_left = (limit_day - as_of).days if r.open and limit_day else None
        data.append(_item(r) | {
            "open": r.open, "lead_date": r.lead_date.isoformat() if r.lead_date else None,
            "limit": limit_day.isoformat() if limit_day else None, "days_left": days_left,
            "past": days_left is not None and days_left < 0, "acted_past_limit": bool(late),
            "late_actions": late})
    return {"as_of": as_of.isoformat(), "max_days": max_days, "near_days": near,
            "count": sum(t["count"] for t in townships), "townships": townships, "data": data,
            "next_cursor": next_cursor}


@router.get("/stats/stages", operation_id="stage_counts", summary="各乡镇各阶段案件数")
async def stage_counts(runtime: Runtime, actor: Reader) -> dict[str, Any]:
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT township_code, stage, count(*) FROM review.cases WHERE village_code LIKE :prefix
            GROUP BY township_code, stage ORDER BY township_code"""), {"prefix": org_prefix(actor) + "%"})
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for town, stage, n in rows:
            counts[town][stage] = int(n)
    return {"townships": [{"township_code": t, "stages": s, "total": sum(s.values())} for t, s in counts.items()]}
