"""Events of the reporting service: it decides nothing, so its only events are the audit trail of its exports that
hold personal data (the statistics ledger with names and ID numbers)."""

from __future__ import annotations

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import Count
from povguard_contracts.payload import EventPayload


@CATALOGUE.register
class ReportExported(EventPayload):
    """A report of an org unit exported with personal data (户主姓名、证件号码), for the audit trail."""

    event_type = "ReportExported"
    service = "reporting"
    report: str
    org: str
    as_of: str
    households: Count
    sha256: str
    purpose: str
