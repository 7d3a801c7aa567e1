"""Operator API every service has: its dead letters (failed events), and retrying one after a fix. Each dead letter
belongs to its event's township (the campaign's county when it has none); an operator reaches those in its org unit,
and sees the events with personal data masked (the error and the event's shape are what an operator needs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import text

from povguard_platform.actor import Actor, Role
from povguard_platform.api import Int64
from povguard_platform.auth import org_prefix, placed, placed_sql, require_org, require_roles
from povguard_platform.consumer import retry_dead_letter
from povguard_platform.personal import mask_personal
from povguard_platform.policy import load_policy
from povguard_platform.problems import Conflict, NotFound
from povguard_platform.service import Runtime


class DeadLetter(BaseModel):
    id: int
    consumer: str
    event_id: str
    subject: str
    error: str
    attempts: int
    failed_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    event: dict[str, Any]


class DeadLetters(BaseModel):
    data: list[DeadLetter]
    next_cursor: int | None


Reader = Annotated[Actor, Depends(require_roles(Role.INSPECTOR))]
Admin = Annotated[Actor, Depends(require_roles())]


def ops_router() -> APIRouter:
    router = APIRouter(prefix="/v1/ops", tags=["operations"])

    @router.get("/dead-letters", operation_id="list_dead_letters", response_model=DeadLetters,
                summary="Events a consumer gave up on, with the error and the whole event")
    async def list_dead_letters(
        runtime: Runtime, actor: Reader,
        include_resolved: bool = False,
        after: Annotated[Int64, Query(ge=0, description="cursor: the last id of the previous page")] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> DeadLetters:
        async with runtime.engine.connect() as conn:
            rows = await conn.execute(
                text(f"""SELECT id, consumer, event_id::text, subject, error, attempts, failed_at, resolved_at,
                                resolution, event
                         FROM {runtime.schema}.dead_letters
                         WHERE id > :after AND (:all OR resolved_at IS NULL)
                           AND {placed_sql("(event->>'township')")} LIKE :prefix
                         ORDER BY id LIMIT :n"""),
                {"after": after, "all": include_resolved, "n": limit + 1, "county": _county(runtime),
                 "prefix": org_prefix(actor) + "%"},
            )
            items = [DeadLetter.model_validate({**r._mapping, "event": mask_personal(r.event)}) for r in rows]
        more = len(items) > limit
        items = items[:limit]
        return DeadLetters(data=items, next_cursor=items[-1].id if more else None)

    @router.post("/dead-letters/{dead_letter_id}/retry", operation_id="retry_dead_letter",
                 summary="Apply a dead-lettered event again (after its cause is fixed)")
    async def retry(runtime: Runtime, actor: Admin, dead_letter_id: Int64) -> dict[str, Any]:
        async with runtime.engine.connect() as conn:
            row = (await conn.execute(
                text(f"SELECT consumer, event->>'township' AS township FROM {runtime.schema}.dead_letters "
                     "WHERE id = :id"), {"id": dead_letter_id})).first()
        if row is None:
            raise NotFound(f"no dead letter {dead_letter_id}")
        require_org(actor, placed(row.township, _county(runtime)))
        consumer = row.consumer
        try:
            async with runtime.engine.begin() as conn:
                done = await retry_dead_letter(conn, runtime.schema, runtime.consumer_spec(consumer),
                                               dead_letter_id)
        except Exception as exc:  # the whole retry rolled back; the dead letter stays as it was
            raise Conflict(f"the handler still fails: {type(exc).__name__}: {exc}") from exc
        if not done:
            raise Conflict(f"dead letter {dead_letter_id} is already resolved")
        return {"id": dead_letter_id, "retried": True}

    return router


def _county(runtime: Runtime) -> str:
    return load_policy(runtime.settings.campaign).policy.county_code
