"""The reporting service: read-only. It follows every service's events, owns no decision, and serves the operations
dashboard (进度、研判、帮扶、数据质量、审计、运行), the campaign statistics (附件3 统计表, 附件2-2 工作台账) as XLSX and
every table as CSV, for a county, township or village, as of now or any past date."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_reporting.consumers import PROJECTIONS


def _routers() -> Sequence[APIRouter]:
    from povguard_reporting.api import dashboard, operations, reports, web

    return [dashboard.router, reports.router, operations.router, web.router]


async def rebuild(runtime: ServiceRuntime, conn: AsyncConnection) -> int:
    from povguard_reporting.policy import reporting_policy
    from povguard_reporting.projections import rebuild as project_again

    return await project_again(conn, reporting_policy(runtime.settings.campaign).catalogue)


SERVICE = ServiceDef(
    name="reporting",
    title="povguard reporting: 运行看板与统计报表",
    description=__doc__ or "",
    default_port=8106,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[PROJECTIONS],
    rebuild=rebuild,
)
