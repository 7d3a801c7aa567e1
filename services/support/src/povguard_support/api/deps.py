"""Dependencies of the support routes: the use cases, who may do what, and org scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import department_of, placed, require_org, require_roles
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.problems import Forbidden
from povguard_rules.measures import SupportPolicy
from povguard_support.domain.plan import Measure, Plan
from povguard_support.handlers import Support

CADRE_ROLES = frozenset({Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM})

Reader = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU,
    Role.INSPECTOR, Role.DEPARTMENT))]
Planner = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU))]
Deliverer = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.DEPARTMENT))]
Cadre = Annotated[Actor, Depends(require_roles(Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM))]
DepartmentClient = Annotated[Actor, Depends(require_roles(Role.DEPARTMENT, Role.COUNTY_BUREAU))]


async def get_support(request: Request) -> Support:
    support: Support | None = getattr(request.app.state, "support", None)
    if support is None:
        runtime = request.app.state.runtime
        campaign = request.app.state.settings.campaign
        support = Support(runtime.store, load_policy(campaign), policy_section(campaign, "support", SupportPolicy),
                          runtime.clock)
        request.app.state.support = support
    return support


SupportDep = Annotated[Support, Depends(get_support)]



def in_scope(actor: Actor, county: str) -> Callable[[Plan], None]:
    """The plan's village lies in the actor's org unit (the county's roles: every plan of their county; a plan not
    yet placed in a village belongs to the county)."""

    def check(plan: Plan) -> None:
        require_org(actor, placed(plan.village_code or plan.township_code, county))

    return check


def may_deliver(actor: Actor, plan: Plan, measure: Measure, county: str) -> None:
    """A measure's step is taken, inside the actor's org unit, by its responsible department or by a cadre of the
    household's village (or an administrator)."""
    in_scope(actor, county)(plan)
    department = department_of(actor)
    if department is not None and department != measure.department:
        raise Forbidden(f"部门账号 {department.value} 不是该措施的责任部门（{measure.department.value}）",
                        code="department")
    if actor.role not in {*CADRE_ROLES, Role.DEPARTMENT, Role.ADMIN}:
        raise Forbidden(f"role {actor.role.value} may not record a measure's delivery", code="role")
