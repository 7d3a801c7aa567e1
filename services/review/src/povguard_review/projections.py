"""Read models of the review service, written in the same transaction as the events (a user reads what they just
wrote); `rebuild` replays them from the event store."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.intake import HouseholdRegistered
from povguard_contracts.vocab import Relation
from povguard_platform.batch import StateCache
from povguard_platform.envelope import StreamRef
from povguard_platform.eventstore import EventStore
from povguard_review.domain.case import Case, fold

_UPSERT = text("""
    INSERT INTO review.cases (case_id, household_id, township_code, village_code, stage, outcome, open, lead_date,
                              notice_ends_on, checked, open_objections, version, state, updated_at)
    SELECT u.id, u.hh, u.town, u.village, u.stage, u.outcome, u.open, u.lead, u.ends, CAST(u.checked AS text[]),
           u.objections, u.version, u.state, now()
    FROM unnest(CAST(:ids AS text[]), CAST(:hhs AS text[]), CAST(:towns AS text[]), CAST(:villages AS text[]),
                CAST(:stages AS text[]), CAST(:outcomes AS text[]), CAST(:opens AS boolean[]), CAST(:leads AS date[]),
                CAST(:ends AS date[]), CAST(:checked AS text[]), CAST(:objections AS int[]), CAST(:versions AS int[]),
                CAST(:states AS jsonb[]))
         AS u(id, hh, town, village, stage, outcome, open, lead, ends, checked, objections, version, state)
    ON CONFLICT (case_id) DO UPDATE SET
        stage = EXCLUDED.stage, outcome = EXCLUDED.outcome, open = EXCLUDED.open, lead_date = EXCLUDED.lead_date,
        notice_ends_on = EXCLUDED.notice_ends_on, checked = EXCLUDED.checked,
        open_objections = EXCLUDED.open_objections, version = EXCLUDED.version, state = EXCLUDED.state,
        updated_at = now()
    RETURNING case_id, CAST(xmin AS text)""")


def _array(values: Sequence[str]) -> str:
    return "{" + ",".join('"' + v + '"' for v in values) + "}"


async def save_cases(conn: AsyncConnection, cases: Sequence[Case],
                     cache: StateCache[Case] | None = None) -> None:
    """Write the cases' rows (one statement); a cache learns each state under the row version that now holds it."""
    if not cases:
        return
    written = await conn.execute(_UPSERT, {
        "ids": [c.case_id for c in cases], "hhs": [c.household_id for c in cases],
        "towns": [c.township_code for c in cases], "villages": [c.village_code for c in cases],
        "stages": [c.stage.value for c in cases], "outcomes": [c.outcome.value for c in cases],
        "opens": [c.open for c in cases], "leads": [c.lead_date for c in cases],
        "ends": [c.notice.ends_on if c.notice else None for c in cases],
        "checked": [_array([d.value for d in c.checks]) for c in cases],
        "objections": [len(c.open_objections()) for c in cases], "versions": [c.version for c in cases],
        "states": [c.model_dump_json() for c in cases],
    })
    if cache is not None:
        by_id = {c.case_id: c for c in cases}
        for case_id, xmin in written:
            cache.put(case_id, xmin, by_id[case_id])


async def save_households(conn: AsyncConnection, events: Sequence[HouseholdRegistered]) -> None:
    """The names and places a notice prints, one statement for a batch of registrations."""
    if not events:
        return
    rows = []
    for event in events:
        head = next((m.facts.name for m in event.members if m.facts.relation == Relation.HEAD), None)
        p = event.place
        rows.append({"h": event.household_id, "code": event.code, "head": head, "n": len(event.members),
                     "town": p.township, "village": p.village, "vc": p.village_code, "grp": p.group,
                     "kind": event.kind.value, "lifted": event.lifted_year, "status": event.status.value})
    await conn.execute(text("""
        INSERT INTO review.households (household_id, code, head_name, members, township, village, village_code,
                                       group_name, kind, lifted_year, status)
        VALUES (:h, :code, :head, :n, :town, :village, :vc, :grp, :kind, :lifted, :status)
        ON CONFLICT (household_id) DO NOTHING"""), rows)


async def rebuild(conn: AsyncConnection, store: EventStore) -> int:
    """Drop the case read model and replay every case stream into it; returns the number of cases."""
    await conn.execute(text("TRUNCATE review.cases"))
    rows = await conn.execute(text("SELECT DISTINCT stream_id FROM review.events WHERE stream_type = 'case'"))
    ids = [r[0] for r in rows]
    batch: list[Case] = []
    for case_id in ids:
        events = await store.load(conn, StreamRef("case", case_id))
        batch.append(fold([(store.decode(e), e.actor) for e in events]))
        if len(batch) >= 500:
            await save_cases(conn, batch)
            batch = []
    await save_cases(conn, batch)
    return len(ids)
