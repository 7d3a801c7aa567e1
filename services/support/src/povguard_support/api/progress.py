"""/v1/progress: 月分析、季报告 — open plans per village or township against their income goals."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import text

from povguard_contracts.numbers import SignedYuan, fen
from povguard_platform.auth import org_prefix
from povguard_platform.service import Runtime
from povguard_support.api.deps import Reader

router = APIRouter(prefix="/v1/progress", tags=["progress"])


class ProgressRow(BaseModel):
    code: str
    plans: int
    measured: int
    behind: int
    on_track: int
    average_per_capita: SignedYuan | None
    average_expected: SignedYuan | None
    average_final_goal: SignedYuan | None
    missing_measures: int
    safety_net_only: int


class ProgressPublic(BaseModel):
    level: str
    data: list[ProgressRow]
    next_cursor: str | None


@router.get("", operation_id="progress", summary="按村或乡镇：帮扶计划数、已测算、进度滞后、缺措施、一兜了之")
async def progress(runtime: Runtime, actor: Reader,
                   level: Literal["village", "township"] = "village",
                   code: Annotated[str | None, Query(description="only under this code")] = None,
                   cursor: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> ProgressPublic:
    column = "village_code" if level == "village" else "township_code"
    async with runtime.read() as conn:
        rows = await conn.execute(text(f"""
            SELECT {column} AS code, count(*) AS plans, count(measured_on) AS measured,
                   count(*) FILTER (WHERE behind) AS behind,
                   count(*) FILTER (WHERE measured_on IS NOT NULL AND NOT behind) AS on_track,
                   avg(latest_per_capita) AS average_per_capita, avg(latest_expected) AS average_expected,
                   avg(final_goal) AS average_final_goal,
                   count(*) FILTER (WHERE missing <> '{{}}') AS missing_measures,
                   count(*) FILTER (WHERE safety_net_only) AS safety_net_only
            FROM support.plans
            WHERE open AND village_code LIKE :prefix AND village_code LIKE :code AND {column} > :cursor
            GROUP BY {column} ORDER BY {column} LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "code": (code or "") + "%", "cursor": cursor or "", "n": limit + 1})
        items = [ProgressRow(
            code=r.code, plans=r.plans, measured=r.measured, behind=r.behind, on_track=r.on_track,
            average_per_capita=_round(r.average_per_capita), average_expected=_round(r.average_expected),
            average_final_goal=_round(r.average_final_goal), missing_measures=r.missing_measures,
            safety_net_only=r.safety_net_only) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    return ProgressPublic(level=level, data=items, next_cursor=items[-1].code if more else None)


def _round(value: Decimal | None) -> Decimal | None:
    return fen(value) if value is not None else None
