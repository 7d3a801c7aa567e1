"""The support service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef

SERVICE = ServiceDef(
    name="support",
    title="povguard support: 帮扶计划 and measures, 缺什么补什么",
    description=__doc__ or "",
    default_port=8104,
    migrations_dir=Path(__file__).parent / "migrations",
)
