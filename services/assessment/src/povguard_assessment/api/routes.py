"""Assessments with their explanation (now or as of a past time), proposals, band counts (the base database of
seed §二(一)2), data problems per village and scale-risk indicators per township."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from povguard_assessment.api.deps import AssessorDep, Reader
from povguard_assessment.api.schemas import (
    AssessmentPublic,
    BandCount,
    ProblemCount,
    ProblemItem,
    ProblemsPage,
    ProposalsPage,
    ScaleRiskPublic,
    VillageScale,
)
from povguard_assessment.domain.scale import INDICATOR_NAMES
from povguard_contracts.assessment import DataProblemFound, IncomeAssessed, OutcomeProposed, RiskAssessed
from povguard_contracts.numbers import STORED
from povguard_contracts.vocab import Outcome
from povguard_platform.auth import require_org
from povguard_platform.errors import DomainNotFound
from povguard_platform.service import Runtime

router = APIRouter(prefix="/v1", tags=["assessments"])
Org = Annotated[str, Query(pattern=r"^\d{6,12}$", description="a county, township or village code in your scope")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/assessments/{household_id}", operation_id="get_assessment", response_model=AssessmentPublic,
            summary="一户的研判结果及其依据（可按过去某一时点重算）")
async def get_assessment(
    household_id: str, runtime: Runtime, assessor: AssessorDep, actor: Reader,
    as_of: Annotated[datetime | None, Query(description="recompute from the facts known at this time")] = None,
) -> AssessmentPublic:
    async with runtime.read() as conn:
        if as_of is None:
            row = (await conn.execute(text("SELECT * FROM assessment.households WHERE household_id = :h"),
                                      {"h": household_id})).first()
            if row is None:
                raise DomainNotFound(f"没有这一户的研判结果（{household_id}）")
            require_org(actor, row.village_code)
            proposal = OutcomeProposed.model_validate(row.proposal, context=STORED) if row.proposal else None
            income = IncomeAssessed.model_validate(row.income, context=STORED) if row.income else None
            return AssessmentPublic(
                household_id=household_id, township_code=row.township_code, village_code=row.village_code,
                policy=row.policy, income=income,
                risk=RiskAssessed.model_validate(row.risk, context=STORED) if row.risk else None, proposal=proposal,
                held=row.held, hold_reason=row.hold_reason,
                elimination_conditions=row.detail.get("elimination_conditions", {}),
                problems=[DataProblemFound.model_validate(p) for _, p in sorted(row.problems.items())])
        a = await assessor.as_of(conn, household_id, as_of)
    if a is None:
        raise DomainNotFound(f"该时点没有这一户的登记信息（{household_id}）")
    require_org(actor, a.village_code)
    conditions: Any = a.detail.get("elimination_conditions", {})
    return AssessmentPublic(
        household_id=household_id, township_code=a.township_code, village_code=a.village_code,
        policy=assessor.rules.ref, as_of=as_of, income=a.income, risk=a.risk, proposal=a.proposal,
        held=bool(a.proposal and a.proposal.held), hold_reason=a.proposal.hold_reason if a.proposal else None,
        elimination_conditions=conditions, problems=[p for _, p in sorted(a.problems.items())])


@router.get("/proposals", operation_id="list_proposals", response_model=ProposalsPage,
            summary="研判建议：按村、乡镇和结果列出")
async def list_proposals(
    runtime: Runtime, actor: Reader, org: Org,
    outcome: Annotated[list[Outcome] | None, Query(description="only these outcomes")] = None,
    held: Annotated[bool | None, Query(description="only held (or only not held) proposals")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Limit = 100,
) -> ProposalsPage:
    require_org(actor, org)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT household_id, proposal FROM assessment.households
            WHERE village_code LIKE :org || '%' AND proposal IS NOT NULL
              AND (CAST(:outcomes AS text[]) IS NULL OR outcome = ANY(CAST(:outcomes AS text[])))
              AND (CAST(:held AS boolean) IS NULL OR held = :held) AND household_id > :cursor
            ORDER BY household_id LIMIT :n"""),
            {"org": org, "outcomes": [o.value for o in outcome] if outcome else None, "held": held,
             "cursor": cursor or "", "n": limit + 1})
        found = rows.all()
    more = len(found) > limit
    found = found[:limit]
    return ProposalsPage(data=[OutcomeProposed.model_validate(r.proposal, context=STORED) for r in found],
                         next_cursor=found[-1].household_id if more else None)


@router.get("/bands", operation_id="band_counts", response_model=list[BandCount],
            summary="人均纯收入分段户数和人数（按村、乡镇）")
async def band_counts(runtime: Runtime, actor: Reader, org: Org) -> list[BandCount]:
    require_org(actor, org)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT village_code, township_code, band, count(*) AS households, sum(persons) AS persons
            FROM assessment.households WHERE village_code LIKE :org || '%' AND band IS NOT NULL
            GROUP BY GROUPING SETS ((village_code, township_code, band), (township_code, band))
            ORDER BY township_code, village_code NULLS FIRST, band"""), {"org": org})
        return [BandCount(level="village" if r.village_code else "township", code=r.village_code or r.township_code,
                          band=r.band, households=r.households, persons=int(r.persons or 0)) for r in rows]


@router.get("/data-problems/counts", operation_id="data_problem_counts", response_model=list[ProblemCount],
            summary="数据质量问题数（按村和类型：未清零/已清零）")
async def problem_counts(runtime: Runtime, actor: Reader, org: Org) -> list[ProblemCount]:
    require_org(actor, org)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT village_code, kind, count(*) FILTER (WHERE open) AS open, count(*) FILTER (WHERE NOT open) AS cleared
            FROM assessment.problems WHERE village_code LIKE :org || '%'
            GROUP BY village_code, kind ORDER BY village_code, kind"""), {"org": org})
        return [ProblemCount(village_code=r.village_code, kind=r.kind, open=r.open, cleared=r.cleared) for r in rows]


@router.get("/data-problems", operation_id="list_data_problems", response_model=ProblemsPage,
            summary="数据质量问题清单（按户和成员）")
async def list_problems(
    runtime: Runtime, actor: Reader, org: Org,
    open: Annotated[bool | None, Query(description="only open (or only cleared) problems")] = True,
    cursor: Annotated[str | None, Query()] = None, limit: Limit = 100,
) -> ProblemsPage:
    require_org(actor, org)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT * FROM assessment.problems WHERE village_code LIKE :org || '%'
              AND (CAST(:open AS boolean) IS NULL OR open = :open) AND problem_id > :cursor
            ORDER BY problem_id LIMIT :n"""), {"org": org, "open": open, "cursor": cursor or "", "n": limit + 1})
        found = rows.all()
    more = len(found) > limit
    found = found[:limit]
    return ProblemsPage(data=[ProblemItem.model_validate(r._asdict()) for r in found],
                        next_cursor=found[-1].problem_id if more else None)


@router.get("/scale-risk", operation_id="scale_risk", response_model=list[ScaleRiskPublic],
            summary="规模性返贫风险指标（按乡镇、行政村）")
async def scale_risk(runtime: Runtime, assessor: AssessorDep, actor: Reader, org: Org) -> list[ScaleRiskPublic]:
    require_org(actor, org)  # a village reads its township's figures and its own village's
    limits = assessor.rules.section.scale
    async with runtime.read() as conn:
        rows = await conn.execute(text("SELECT * FROM assessment.scale WHERE township_code LIKE :org || '%' "
                                       "OR :org LIKE township_code || '%' ORDER BY township_code"), {"org": org})
        return [ScaleRiskPublic(
            township_code=r.township_code, households=r.households, indicators=r.indicators, counts=r.counts,
            thresholds=limits.thresholds(), min_counts=limits.min_counts(), names=INDICATOR_NAMES,
            crossed=list(r.crossed), raised=list(r.raised), raised_at=r.raised_at,
            villages=[VillageScale(village_code=code, **v) for code, v in sorted(r.villages.items())
                      if len(org) <= 9 or code.startswith(org) or org.startswith(code)]) for r in rows]
