"""Events of the support service that other services react to. A plan is a stream (type "plan", id = household id);
every event carries the household id."""

from __future__ import annotations

from datetime import date

from povguard_platform.catalogue import CATALOGUE
from povguard_platform.contracts.vocab import Department, MeasureKind
from povguard_platform.envelope import EventPayload


class _Support(EventPayload):
    service = "support"
    household_id: str


@CATALOGUE.register
class MeasureImplemented(_Support):
    """A measure delivered (assessment: 帮扶消除 needs an implemented developmental measure)."""

    event_type = "MeasureImplemented"
    measure_id: str
    kind: MeasureKind
    developmental: bool
    department: Department
    implemented_on: date
    amount: float | None = None
    evidence_ref: str = ""
