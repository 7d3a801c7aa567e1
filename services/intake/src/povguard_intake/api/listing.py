"""A list page of households (masked), read from the registry's read model without rebuilding each `Household`.

Validating a stored household in full (every visit form's income and spending lines, every member's facts) was
two thirds of a 500-household page's CPU, for fields a list never shows. `StoredHousehold` reads only what
`HouseholdPublic` shows; the rest of the stored JSON is skipped by the parser. Member facts are taken as stored
(they were written by `MemberFacts`' own JSON serialiser, so they are what `model_dump(mode="json")` gives) and
masked like every other masked read. tests/test_households.py checks that each item of a page equals the masked
read of the same household."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel

from povguard_contracts.intake import Place
from povguard_contracts.vocab import HouseholdKind, MonitoringCategory, MonitoringStatus, PriorityGroup
from povguard_intake.api.schemas import HouseholdPublic, LeadPublic, MemberPublic, VisitSummary
from povguard_platform.personal import mask_personal


class _StoredForm(BaseModel):
    visit_date: date
    collector: str


class _StoredVisit(BaseModel):
    visit_id: str
    form: _StoredForm
    corrects: str | None = None
    superseded_by: str | None = None


class StoredHousehold(BaseModel):
    """The fields of intake.households.state that a masked list shows (extra fields are ignored)."""

    household_id: str
    code: str
    place: Place
    kind: HouseholdKind
    lifted_year: int | None = None
    category: MonitoringCategory | None = None
    status: MonitoringStatus
    flags: list[PriorityGroup] = []
    members: dict[str, dict[str, Any]] = {}
    visits: dict[str, _StoredVisit] = {}
    leads: list[LeadPublic] = []
    version: int


def listed(stored_json: str) -> HouseholdPublic:
    """One household of a list page, masked, from its stored state."""
    s = StoredHousehold.model_validate_json(stored_json)
    return HouseholdPublic(
        household_id=s.household_id, code=s.code, place=s.place, kind=s.kind, lifted_year=s.lifted_year,
        category=s.category, status=s.status, flags=s.flags,
        members=[MemberPublic(member_id=k, facts=mask_personal(facts)) for k, facts in s.members.items()],
        visits=[VisitSummary(visit_id=v.visit_id, visit_date=v.form.visit_date, collector=v.form.collector,
                             corrects=v.corrects, superseded_by=v.superseded_by) for v in s.visits.values()],
        leads=s.leads, version=s.version, personal_data="masked")
