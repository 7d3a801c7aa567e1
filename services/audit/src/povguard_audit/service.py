"""The audit service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef

SERVICE = ServiceDef(
    name="audit",
    title="povguard audit: tamper-evident ledger, proofs and inspection queries",
    description=__doc__ or "",
    default_port=8105,
    migrations_dir=Path(__file__).parent / "migrations",
)
