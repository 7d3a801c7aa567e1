"""The assessment service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef

SERVICE = ServiceDef(
    name="assessment",
    title="povguard assessment: 收入和风险研判, outcome proposals, data quality, scale risk",
    description=__doc__ or "",
    default_port=8102,
    migrations_dir=Path(__file__).parent / "migrations",
)
