"""The support service: 帮扶计划 (一户一策) and measures, 缺什么补什么, 一兜了之, delivery checks against departments'
records (未录入, 未享受录入), quarterly income measurement against the three-year goals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_platform.service import ServiceDef
from povguard_support.consumers import DECISIONS


def _routers() -> Sequence[APIRouter]:
    from povguard_support.api import delivery, measures, plans, progress

    return [plans.router, measures.router, delivery.router, progress.router]


SERVICE = ServiceDef(
    name="support",
    title="povguard support: 帮扶计划 and measures, 缺什么补什么",
    description=__doc__ or "",
    default_port=8104,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[DECISIONS],
)
