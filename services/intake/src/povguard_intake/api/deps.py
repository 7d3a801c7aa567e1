"""Dependencies of the intake routes: the use cases, who may do what, and masking of personal data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from povguard_contracts.intake import MemberFacts
from povguard_intake.domain.household import Household
from povguard_intake.handlers import Intake
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_org, require_roles
from povguard_platform.personal import PERSONAL_FIELDS as PERSONAL
from povguard_platform.personal import mask_personal
from povguard_platform.policy import load_policy

# Who may see ID numbers, phones and health facts on a single-household read (each such read is audited).
PERSONAL_DATA_ROLES = frozenset({Role.COLLECTOR, Role.VILLAGE_CLERK, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU,
                                 Role.INSPECTOR, Role.ADMIN})
PERSONAL_FIELDS = list(PERSONAL)

Registrar = Annotated[Actor, Depends(require_roles(Role.COLLECTOR, Role.VILLAGE_CLERK, Role.COUNTY_BUREAU))]
Collector = Annotated[Actor, Depends(require_roles(Role.COLLECTOR, Role.VILLAGE_CLERK))]
VillageWorker = Annotated[Actor, Depends(require_roles(Role.COLLECTOR, Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE,
                                                       Role.WORK_TEAM))]
Reader = Annotated[Actor, Depends(require_roles(
    Role.COLLECTOR, Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER,
    Role.COUNTY_BUREAU, Role.INSPECTOR))]
DepartmentClient = Annotated[Actor, Depends(require_roles(Role.DEPARTMENT, Role.COUNTY_BUREAU))]


async def get_intake(request: Request) -> Intake:
    intake: Intake | None = getattr(request.app.state, "intake", None)
    if intake is None:
        runtime = request.app.state.runtime
        intake = Intake(runtime.store, load_policy(request.app.state.settings.campaign), runtime.clock)
        request.app.state.intake = intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]



def scope(actor: Actor) -> Callable[[Household], None]:
    """A check that the household lies in the actor's org unit (a township sees its own villages)."""

    def check(state: Household) -> None:
        assert state.place is not None
        require_org(actor, state.place.group_code)

    return check


def masked_facts(facts: MemberFacts) -> dict[str, object]:
    masked: dict[str, object] = mask_personal(facts.model_dump(mode="json"))
    return masked
