"""Dependencies of the support routes: the use cases, who may do what, and org scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_org, require_roles
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.problems import Forbidden
from povguard_support.domain.catalogue import SupportPolicy
from povguard_support.domain.plan import Measure, Plan
from povguard_support.handlers import Support

CADRE_ROLES = frozenset({Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM})
COUNTY_WIDE = frozenset({Role.COUNTY_BUREAU, Role.INSPECTOR, Role.ADMIN, Role.DEPARTMENT})

Reader = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU,
    Role.INSPECTOR, Role.DEPARTMENT))]
Planner = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU))]
Deliverer = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.DEPARTMENT))]
Cadre = Annotated[Actor, Depends(require_roles(Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM))]
DepartmentClient = Annotated[Actor, Depends(require_roles(Role.DEPARTMENT, Role.COUNTY_BUREAU))]


def get_support(request: Request) -> Support:
    support: Support | None = getattr(request.app.state, "support", None)
    if support is None:
        runtime = request.app.state.runtime
        campaign = request.app.state.settings.campaign
        support = Support(runtime.store, load_policy(campaign), policy_section(campaign, "support", SupportPolicy),
                          runtime.clock)
        request.app.state.support = support
    return support


SupportDep = Annotated[Support, Depends(get_support)]



def in_scope(actor: Actor) -> Callable[[Plan], None]:
    """The plan's village lies in the actor's org unit (departments and the county see every plan)."""

    def check(plan: Plan) -> None:
        if actor.role in COUNTY_WIDE:
            return
        require_org(actor, plan.village_code or plan.township_code or "?")

    return check


def may_deliver(actor: Actor, plan: Plan, measure: Measure) -> None:
    """A measure's step is taken by its responsible department (org = the department's name) or by a cadre of the
    household's village."""
    if actor.role == Role.ADMIN:
        return
    if actor.role == Role.DEPARTMENT:
        if actor.org != measure.department.value:
            raise Forbidden(f"部门账号 {actor.org} 不是该措施的责任部门（{measure.department.value}）")
        return
    if actor.role in CADRE_ROLES:
        require_org(actor, plan.village_code or "?")
        return
    raise Forbidden(f"role {actor.role.value} may not record a measure's delivery")


def org_prefix(actor: Actor) -> str:
    """The code prefix a list is limited to ('' = county-wide)."""
    if actor.role in COUNTY_WIDE or len(actor.org) <= 6:
        return ""
    return actor.org
