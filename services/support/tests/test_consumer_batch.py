"""The consumer's batch handler over one fetched batch, called directly: a run of decisions is decided together, a
household decided twice in it sees its first decision's result, and facts after a decision are not the ones it was
made on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from support_helpers import BUREAU, VILLAGE, new_household

from povguard_contracts.assessment import IncomeAssessed
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CountyDecided
from povguard_contracts.vocab import (
    Department,
    HouseholdKind,
    IncomeBand,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.settings import Settings
from povguard_rules.measures import SupportPolicy
from povguard_support.handlers import Support


def recorded(source: str, stream: StreamRef, payload: EventPayload, position: int) -> RecordedEvent:
    return RecordedEvent(
        id=uuid7(), source=source, stream=stream, version=position, position=position, type=payload.event_type,
        type_version=1, township=VILLAGE[:9], time=datetime.now(UTC), actor=BUREAU,
        data=payload.model_dump(mode="json"))


def decided(household_id: str, status: MonitoringStatus, **over: Any) -> CountyDecided:
    return CountyDecided(
        case_id=f"case-{household_id}", household_id=household_id, outcome=Outcome.NEWLY_IDENTIFIED,
        kind=HouseholdKind.MONITORED, category=MonitoringCategory.MARGINAL, status=status,
        risks=[RiskType.ILLNESS], lead_department=Department.AGRICULTURE,
        proposed_measures=[MeasureKind.HEALTH], decided_on=date(2022, 5, 27), **over)


async def test_a_run_of_decisions_is_decided_together_in_order(client: httpx.AsyncClient,
                                                                 settings: Settings) -> None:
    created, closed = new_household(), new_household()
    case = StreamRef("case", "c")
    income = IncomeAssessed(household_id=created, village_code=VILLAGE, visit_id="v1", household_size=2,
                            size_basis="户籍", lines={}, net_income=Decimal(9000), per_capita=Decimal(4500),
                            band=IncomeBand.UNDER_LINE)
    batch = [
        recorded("review", case, decided(created, MonitoringStatus.RISK_NOT_ELIMINATED), 1),
        recorded("review", case, decided(closed, MonitoringStatus.RISK_NOT_ELIMINATED), 2),
        recorded("review", case, decided(closed, MonitoringStatus.RISK_ELIMINATED), 3),
        recorded("assessment", StreamRef("assessment", created), income, 4),  # after the decision: not its base
    ]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    support = Support(runtime.store, load_policy(settings.campaign),
                      policy_section(settings.campaign, "support", SupportPolicy))
    async with runtime.engine.begin() as conn:
        await support.consume_batch(conn, batch)
    async with runtime.engine.connect() as conn:
        events = (await conn.execute(text(
            "SELECT stream_id, version, type, causation_id, xmin FROM support.events "
            "WHERE stream_id IN (:a, :b) ORDER BY position"), {"a": created, "b": closed})).all()
        plans = {r[0]: r[1:] for r in await conn.execute(text(
            "SELECT household_id, open, version FROM support.plans WHERE household_id IN (:a, :b)"),
            {"a": created, "b": closed})}
    assert [(e.stream_id, e.version, e.type) for e in events if e.stream_id == closed][-1] == (
        closed, 3, "PlanClosed")  # the second decision saw the plan the first created
    assert {e.causation_id for e in events if e.type == "PlanClosed"} == {batch[2].id}
    assert len({e.xmin for e in events}) == 1  # one append
    assert plans == {created: (True, 2), closed: (False, 3)}
    async with runtime.engine.connect() as conn:
        first = await support.load(conn, created)
    assert first.base_source == "监测范围"  # made before the income assessment that followed it
