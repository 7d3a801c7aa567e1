"""A monitoring object needs a 主要风险类型 (the national form requires one): a case that would make one cannot be
decided at village or county level without it."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from review_helpers import APPRAISAL, DECISION, committee, events, new_case, step, walk

from povguard_contracts.review import CaseOpened, ProposalUpdated
from povguard_contracts.vocab import Department, HouseholdKind, MonitoringCategory, MonitoringStatus, Outcome
from povguard_platform.errors import RuleViolations
from povguard_platform.settings import Settings
from povguard_review.domain import case as d


async def test_no_village_decision_without_a_risk_type(client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings, risks=[])
    base = f"/v1/cases/{case_id}"
    await step(client, f"{base}/appraisal", APPRAISAL, committee(settings))
    r = await client.post(f"{base}/village-decision", json=DECISION, headers=committee(settings))
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "body.risks" and "主要风险类型" in error["message"]
    await step(client, f"{base}/village-decision", DECISION | {"risks": ["因学"]}, committee(settings))
    case = await walk(client, settings, case_id)
    assert case["stage"] == "已审定"
    [decided] = [e for e in await events(client, "CountyDecided") if e["case_id"] == case_id]
    assert decided["risks"] == ["因学"]


def test_county_refuses_a_monitoring_object_whose_risk_types_were_lost() -> None:
    opened = CaseOpened(case_id="c1", household_id="h1", village_code="533123101201", township_code="533123101",
                        outcome=Outcome.NEWLY_IDENTIFIED, category=MonitoringCategory.MARGINAL, risks=[],
                        lead_date=date(2022, 5, 8), source="研判建议", kind_before=HouseholdKind.ORDINARY,
                        status_before=MonitoringStatus.NOT_MONITORED)
    updated = ProposalUpdated(case_id="c1", household_id="h1", outcome=Outcome.NEWLY_IDENTIFIED,
                              category=MonitoringCategory.MARGINAL, risks=[], lead_date=date(2022, 5, 8),
                              rationale="")
    case = d.fold([opened, updated])
    with pytest.raises(RuleViolations) as err:
        d.county_decide(case, date(2022, 5, 25), [], lead_department=Department.EDUCATION, elimination_method=None,
                        measures=[], opinion="")
    assert [v.field for v in err.value.violations] == ["risks"]
