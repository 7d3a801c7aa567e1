"""The intake service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef

SERVICE = ServiceDef(
    name="intake",
    title="povguard intake: 农户信息 household registry, visits (form 2-1), department warnings",
    description=__doc__ or "",
    default_port=8101,
    migrations_dir=Path(__file__).parent / "migrations",
)
