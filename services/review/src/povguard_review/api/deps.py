"""Dependencies of the review routes: the use cases and who may read what."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import require_org, require_roles
from povguard_review.domain.case import Case, held_to, identification_limit, notice_misses_plan
from povguard_review.handlers import Review
from povguard_review.policy import load

Reader = Annotated[Actor, Depends(require_roles(
    Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM, Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU,
    Role.DEPARTMENT, Role.INSPECTOR))]
Opener = Annotated[Actor, Depends(require_roles(Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM))]
# every role with a token may act; the domain decides who may do which action (403) and when (409)
Acting = Annotated[Actor, Depends(require_roles(*Role))]


async def get_review(request: Request) -> Review:
    review: Review | None = getattr(request.app.state, "review", None)
    if review is None:
        runtime = request.app.state.runtime
        review = Review(runtime.store, *load(request.app.state.settings.campaign), runtime.clock)
        request.app.state.review = review
    return review


ReviewDep = Annotated[Review, Depends(get_review)]


def check_read(actor: Actor, case: Case) -> None:
    require_org(actor, case.village_code)


def case_public(case: Case, review: Review) -> dict[str, Any]:
    data: dict[str, Any] = case.model_dump(mode="json")
    calendar = review.policy.calendar
    deadline = held_to(case, review.rules.deadline(calendar, case.stage)) if case.open else None
    limit = identification_limit(case, calendar.identification_max_days)
    data["stage_deadline"] = deadline.isoformat() if deadline else None
    data["identification_limit"] = limit.isoformat() if limit else None
    data["open"] = case.open
    # the plan's notice_end is a target: a notice that cannot end by it says so from its start
    data["notice_misses_plan"] = notice_misses_plan(case, calendar.notice_end)
    data["planned_notice_end"] = calendar.notice_end.isoformat()
    return data
