"""Who may read assessments, and the assessor of the running service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from povguard_assessment.handlers import Assessor
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_roles
from povguard_rules.config import rules_for

Reader = Annotated[Actor, Depends(require_roles(
    Role.COLLECTOR, Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER,
    Role.COUNTY_BUREAU, Role.INSPECTOR))]


async def get_assessor(request: Request) -> Assessor:
    runtime = request.app.state.runtime
    return Assessor(runtime.store, rules_for(request.app.state.settings.campaign), runtime.clock)


AssessorDep = Annotated[Assessor, Depends(get_assessor)]
