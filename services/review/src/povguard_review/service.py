"""The review service: every proposal is carried through 村民评议 → 村两委决定 → 公示 → 乡镇审核 → 县级审定 (with the
departments' checks), with people, dates and reasons an inspector will ask for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_platform.service import ServiceDef
from povguard_review.consumers import PROPOSALS, REGISTRY


def _routers() -> Sequence[APIRouter]:
    from povguard_review.api import cases, lists, notices

    return [cases.router, lists.router, notices.router]


SERVICE = ServiceDef(
    name="review",
    title="povguard review: 评议、公示、审核、审定 — the multi-level procedure",
    description=__doc__ or "",
    default_port=8103,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[PROPOSALS, REGISTRY],
)
