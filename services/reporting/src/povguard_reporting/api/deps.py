"""Dependencies of the reporting routes: who may read, which org unit and moment a figure is for, the policy."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_org, require_roles
from povguard_reporting.policy import ReportingPolicy, reporting_policy
from povguard_reporting.queries import Scope, end_of

# every role with a token reads the figures of its own org unit; departments and machine clients read the services
Reader = Annotated[Actor, Depends(require_roles(
    Role.COLLECTOR, Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER,
    Role.COUNTY_BUREAU, Role.INSPECTOR))]
# who may see ID numbers (the same roles as the registry's single-household read); each such export is audited
PERSONAL_DATA_ROLES = frozenset({Role.COLLECTOR, Role.VILLAGE_CLERK, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU,
                                 Role.INSPECTOR, Role.ADMIN})


async def get_policy(request: Request) -> ReportingPolicy:
    return reporting_policy(request.app.state.settings.campaign)


PolicyDep = Annotated[ReportingPolicy, Depends(get_policy)]
OrgQuery = Annotated[str | None, Query(pattern=r"^\d{6}(\d{3}){0,2}$",
                                       description="县、乡镇或行政村代码（默认：本人所在单位）")]
AsOfQuery = Annotated[date | None, Query(description="截至该日（含当日）；默认：现在")]


def scope_of(actor: Actor, policy: ReportingPolicy, org: str | None, as_of: date | None, today: date) -> Scope:
    """The org unit asked for (default: the actor's own, or the county for county-wide roles), within the actor's."""
    if org is None:
        org = actor.org if actor.org.isdigit() and len(actor.org) in (6, 9, 12) else policy.county_code
    require_org(actor, org)
    return Scope(org, end_of(as_of) if as_of else None, today)

