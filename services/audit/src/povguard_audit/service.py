"""The audit service, as the platform runs it: the ledger consumer and the verification and inspection API."""

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
