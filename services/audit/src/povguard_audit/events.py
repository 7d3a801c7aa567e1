"""Events the audit service emits (on its own store, so they travel on the bus like every other event)."""

from __future__ import annotations

from typing import Any

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import Count, Position
from povguard_contracts.payload import EventPayload


@CATALOGUE.register
class CheckpointSigned(EventPayload):
    event_type = "CheckpointSigned"
    service = "audit"
    origin: str
    tree_size: Position
    root_hash: str  # base64, as in the checkpoint
    note: str


@CATALOGUE.register
class LedgerMismatchFound(EventPayload):
    """The alert of the full re-check (or of a refused checkpoint): the ledger no longer matches what was signed."""

    event_type = "LedgerMismatchFound"
    service = "audit"
    tree_size: Position
    first_bad_index: Position | None
    kind: str
    detail: str


@CATALOGUE.register
class AnomalyFound(EventPayload):
    event_type = "AnomalyFound"
    service = "audit"
    kind: str
    household_id: str | None = None
    actor: str | None = None
    evidence: dict[str, Any]


@CATALOGUE.register
class LedgerPayloadsRead(EventPayload):
    """An unmasked read of stored events from the ledger (they hold ID numbers, phones, health): a household's
    timeline or dispute replay, or a bundle with its payloads. Entered in the ledger like intake's
    PersonalDataRead, so that every read of personal data is on the record."""

    event_type = "LedgerPayloadsRead"
    service = "audit"
    household_id: str | None  # None: a bundle of a time range or of the whole ledger
    view: str  # timeline | dispute | bundle
    entries: Count
    purpose: str
