"""The intake service: the household registry (农户信息), visits (入户调查信息采集表), department warnings
(部门筛查预警) and bulk import/export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_intake.consumers import DECISIONS
from povguard_platform.service import ServiceDef, ServiceRuntime


def _routers() -> Sequence[APIRouter]:
    from povguard_intake.api import batches, households, imports, warnings

    return [households.router, warnings.router, imports.router, batches.router]


async def _rebuild(runtime: ServiceRuntime, conn: AsyncConnection) -> int:
    from povguard_intake.projections import rebuild

    return await rebuild(conn, runtime.store)


async def _resume_imports(runtime: ServiceRuntime) -> None:
    """Imports whose process died or whose database went away are taken up again (bulk.resume_imports)."""
    from povguard_intake.bulk import resume_imports
    from povguard_intake.handlers import Intake
    from povguard_platform.policy import load_policy

    intake = Intake(runtime.store, load_policy(runtime.settings.campaign), runtime.clock)
    await resume_imports(runtime.engine, intake, runtime.stop)


SERVICE = ServiceDef(
    name="intake",
    title="povguard intake: 农户信息 household registry, visits (form 2-1), department warnings",
    description=__doc__ or "",
    default_port=8101,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[DECISIONS],
    rebuild=_rebuild,
    background=[_resume_imports],
)
