"""A household as the API shows it (`HouseholdPublic`), built straight from its stored state: the row of the
registry's read model, written by `Household.model_dump_json()` in the same transaction as its events, so it was
validated on write and is already the JSON the response carries.

Validating a stored household again on every read (every visit form's income and spending lines through a Python
validator, every member's facts), then the response model, then its serialiser cost several times the rest of a
read's own work, for fields a read never shows. Here the stored JSON is parsed once (pydantic_core's parser, no
model), the shown fields are picked, member facts masked like every other masked read (or shown as stored for an
audited read: they were written by `MemberFacts`' own serialiser, so they are what `model_dump(mode="json")` gives),
and the result is serialised once. tests/test_read_path.py checks that a read built here equals the validated read
of the same household (`public` in households.py: a read as of a version), masked and unmasked, and that each
item of a list page equals the masked read."""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from povguard_platform.personal import mask_record


def stored_state(stored_json: str | bytes) -> dict[str, Any]:
    """A household's stored state as plain JSON values (not validated again: see the module's note)."""
    state: dict[str, Any] = from_json(stored_json)
    return state


def shown(state: dict[str, Any], *, personal: bool) -> dict[str, Any]:
    """The `HouseholdPublic` of a stored state, as JSON values: personal data masked unless `personal` (a read
    that the caller has checked may see it and records)."""
    return {
        "household_id": state["household_id"], "code": state["code"], "place": state["place"],
        "kind": state["kind"], "lifted_year": state.get("lifted_year"), "category": state.get("category"),
        "status": state["status"], "flags": state.get("flags") or [],
        # member facts are flat (scalars and the health codes: MemberFacts), so mask_record masks them as
        # mask_personal would (tests/test_households.py checks every field)
        "members": [{"member_id": k, "facts": facts if personal else mask_record(facts)}
                    for k, facts in (state.get("members") or {}).items()],
        "visits": [{"visit_id": v["visit_id"], "visit_date": v["form"]["visit_date"],
                    "collector": v["form"]["collector"], "corrects": v.get("corrects"),
                    "superseded_by": v.get("superseded_by")} for v in (state.get("visits") or {}).values()],
        "leads": [{"lead_id": lead["lead_id"], "source": lead["source"], "lead_date": lead["lead_date"],
                   "warning_id": lead.get("warning_id"), "note": lead.get("note", "")}
                  for lead in state.get("leads") or []],
        "version": state["version"], "personal_data": "shown" if personal else "masked"}


def listed(stored_json: str | bytes) -> dict[str, Any]:
    """One household of a list page, masked, from its stored state."""
    return shown(stored_state(stored_json), personal=False)
