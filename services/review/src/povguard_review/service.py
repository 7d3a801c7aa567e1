"""The review service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from povguard_platform.service import ServiceDef

SERVICE = ServiceDef(
    name="review",
    title="povguard review: 评议、公示、审核、审定 — the multi-level procedure",
    description=__doc__ or "",
    default_port=8103,
    migrations_dir=Path(__file__).parent / "migrations",
)
