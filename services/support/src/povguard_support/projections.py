"""Read models of the support service, written in the same transaction as the events they follow (rebuildable by
replaying the plan streams and the assessment/review events)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_rules.measures import SupportPolicy
from povguard_support.domain import plan as domain
from povguard_support.domain.plan import HouseholdFacts, Plan


@dataclass(frozen=True)
class Place:
    village_code: str
    township_code: str


async def load_facts(conn: AsyncConnection, household_ids: Sequence[str],
                     ) -> dict[str, tuple[HouseholdFacts | None, Place | None]]:
    rows = await conn.execute(text("""SELECT household_id, village_code, township_code, risks, gaps, no_labour,
                                             labour_capable_members, per_capita
                                      FROM support.facts WHERE household_id = ANY(:ids)"""),
                              {"ids": list(household_ids)})
    out: dict[str, tuple[HouseholdFacts | None, Place | None]] = {}
    for r in rows:
        assessed = r.risks is not None or r.no_labour is not None or r.per_capita is not None
        facts = HouseholdFacts(
            risks=frozenset(r.risks or ()), gaps=frozenset(r.gaps or ()), no_labour=r.no_labour,
            labour_capable_members=r.labour_capable_members,
            per_capita=r.per_capita) if assessed else None
        place = Place(r.village_code, r.township_code) if r.village_code else None
        out[r.household_id] = (facts, place)
    return out


async def save_facts(conn: AsyncConnection, household_id: str, **values: Any) -> None:
    """Upsert some columns of a household's facts (the others stay as they were)."""
    await save_facts_many(conn, {household_id: values})


async def save_facts_many(conn: AsyncConnection, facts: dict[str, dict[str, Any]]) -> None:
    """Upsert some columns of many households' facts: one statement per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for household_id, values in facts.items():
        by_columns.setdefault(tuple(sorted(values)), []).append({"hh": household_id, **values})
    for cols, rows in by_columns.items():
        await conn.execute(text(f"""
            INSERT INTO support.facts (household_id, {", ".join(cols)})
            VALUES (:hh, {", ".join(":" + c for c in cols)})
            ON CONFLICT (household_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in cols)},
                updated_at = now()"""), rows)


def plan_row(plan: Plan, facts: HouseholdFacts | None, place: Place | None, policy: SupportPolicy) -> dict[str, Any]:
    latest = plan.latest_income
    village = plan.village_code or (place.village_code if place else "")
    township = plan.township_code or (place.township_code if place else "")
    return {
        "hh": plan.household_id, "village": village, "township": township, "open": plan.open,
        "basis": plan.basis, "lead": plan.lead_department.value if plan.lead_department else None,
        "cadre": plan.cadre, "version": plan.version, "missing": domain.uncovered(plan, facts, policy),
        "safety": domain.safety_net_only(plan, facts),
        "labour": facts.labour_capable if facts else None, "measures": len(plan.measures),
        "dev": sum(m.developmental for m in plan.measures.values()),
        "final_goal": plan.goals[max(plan.goals)] if plan.goals else None,
        "measured_on": latest.measured_on if latest else None,
        "per_capita": latest.per_capita if latest else None, "goal": latest.goal if latest else None,
        "expected": latest.expected if latest else None, "behind": latest.behind if latest else False,
        "closed_reason": None if plan.open else plan.closed_reason,
    }


_SAVE_PLAN = text("""
    INSERT INTO support.plans (household_id, village_code, township_code, open, basis, lead_department, cadre,
        version, missing, safety_net_only, labour_capable, measures, developmental, final_goal, measured_on,
        latest_per_capita, latest_goal, latest_expected, behind, closed_reason)
    VALUES (:hh, :village, :township, :open, :basis, :lead, :cadre, :version, :missing, :safety, :labour,
        :measures, :dev, :final_goal, :measured_on, :per_capita, :goal, :expected, :behind, :closed_reason)
    ON CONFLICT (household_id) DO UPDATE SET village_code = EXCLUDED.village_code,
        township_code = EXCLUDED.township_code, open = EXCLUDED.open, basis = EXCLUDED.basis,
        lead_department = EXCLUDED.lead_department, cadre = EXCLUDED.cadre, version = EXCLUDED.version,
        missing = EXCLUDED.missing, safety_net_only = EXCLUDED.safety_net_only,
        labour_capable = EXCLUDED.labour_capable, measures = EXCLUDED.measures,
        developmental = EXCLUDED.developmental, final_goal = EXCLUDED.final_goal,
        measured_on = EXCLUDED.measured_on, latest_per_capita = EXCLUDED.latest_per_capita,
        latest_goal = EXCLUDED.latest_goal, latest_expected = EXCLUDED.latest_expected, behind = EXCLUDED.behind,
        closed_reason = EXCLUDED.closed_reason, updated_at = now()""")

_SAVE_MEASURE = text("""
    INSERT INTO support.measures (measure_id, household_id, village_code, township_code, kind, department,
        developmental, status, description, amount, planned_start, planned_end, implemented_on, implemented_amount,
        evidence_ref, verified_on)
    VALUES (:id, :hh, :village, :township, :kind, :dept, :dev, :status, :description, :amount, :start, :end,
        :implemented_on, :implemented_amount, :evidence_ref, :verified_on)
    ON CONFLICT (measure_id) DO UPDATE SET status = EXCLUDED.status, village_code = EXCLUDED.village_code,
        township_code = EXCLUDED.township_code, implemented_on = EXCLUDED.implemented_on,
        implemented_amount = EXCLUDED.implemented_amount, evidence_ref = EXCLUDED.evidence_ref,
        verified_on = EXCLUDED.verified_on""")


async def save_plans(conn: AsyncConnection, plans: Sequence[tuple[Plan, HouseholdFacts | None, Place | None]],
                     policy: SupportPolicy) -> None:
    if not plans:
        return
    rows = [plan_row(p, f, pl, policy) for p, f, pl in plans]
    await conn.execute(_SAVE_PLAN, rows)
    measures = [
        {"id": m.measure_id, "hh": p.household_id, "village": row["village"], "township": row["township"],
         "kind": m.kind.value, "dept": m.department.value, "dev": m.developmental, "status": m.status.value,
         "description": m.description, "amount": m.amount, "start": m.planned_start, "end": m.planned_end,
         "implemented_on": m.implemented_on, "implemented_amount": m.implemented_amount,
         "evidence_ref": m.evidence_ref, "verified_on": m.verified_on}
        for (p, _, _), row in zip(plans, rows, strict=True) for m in p.measures.values()]
    if measures:
        await conn.execute(_SAVE_MEASURE, measures)
