"""The audit service, as the platform runs it: the ledger consumer and the verification and inspection API.

Without a token: the log's verifier keys (`/.well-known/povguard-audit/keys`; pin them out of band), the latest
checkpoint and the hash tiles (C2SP tlog-checkpoint and tlog-tiles under `/v1/audit/log/`).

Leaf encoding: an entry's bytes are the RFC 8785 canonical JSON of the entry object (`entry` in responses; entry
bundles serve these bytes); leaf hash = SHA-256(0x00 ‖ bytes), node = SHA-256(0x01 ‖ left ‖ right), empty tree
SHA-256("") (RFC 9162 §2.1). Not hashed: `leaf_hash` and `inclusion` beside an entry (derived from it), the org unit
that scopes reads (stored beside it) and the stored event, which the entry covers by `payload_sha256` (hex SHA-256
of the event's RFC 8785 JSON) so personal data can be redacted without breaking a proof. Every hash a response
carries is standard padded base64, as checkpoints write roots; hashes inside the entry are hex, as hashed."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from povguard_audit.consumers import LEDGER
from povguard_audit.metrics import collect
from povguard_audit.schedule import run_schedule
from povguard_platform.service import ServiceDef


def _routers() -> list[APIRouter]:
    from povguard_audit.api import routers

    found: list[APIRouter] = routers()
    return found


SERVICE = ServiceDef(
    name="audit",
    title="povguard audit: tamper-evident ledger, proofs and inspection queries",
    description=__doc__ or "",
    default_port=8105,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[LEDGER],
    background=[run_schedule],
    collect=collect,
)
