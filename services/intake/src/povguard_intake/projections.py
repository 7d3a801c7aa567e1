"""Read models of the registry, written in the same transaction as the events (so a user reads what they just
wrote) and rebuildable from the events at any time (`rebuild`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.intake import WarningMatched, WarningReceived
from povguard_intake.domain.household import Household, fold
from povguard_platform.batch import StateCache
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.errors import DomainConflict
from povguard_platform.eventstore import EventStore

_UPSERT = text("""
    INSERT INTO intake.households (household_id, code, county_code, township_code, village_code, group_code, kind,
                                   status, flags, members, version, state, updated_at)
    SELECT u.id, u.code, u.county, u.town, u.village, u.grp, u.kind, u.status, CAST(u.flags AS text[]), u.members,
           u.version, u.state, now()
    FROM unnest(CAST(:ids AS text[]), CAST(:codes AS text[]), CAST(:counties AS text[]), CAST(:towns AS text[]),
                CAST(:villages AS text[]), CAST(:groups AS text[]), CAST(:kinds AS text[]),
                CAST(:statuses AS text[]), CAST(:flags AS text[]), CAST(:members AS int[]), CAST(:versions AS int[]),
                CAST(:states AS jsonb[]))
         AS u(id, code, county, town, village, grp, kind, status, flags, members, version, state)
    ON CONFLICT (household_id) DO UPDATE SET
        kind = EXCLUDED.kind, status = EXCLUDED.status, flags = EXCLUDED.flags, members = EXCLUDED.members,
        version = EXCLUDED.version, state = EXCLUDED.state, updated_at = now()
    RETURNING household_id, CAST(xmin AS text)""")


async def save_households(conn: AsyncConnection, states: Sequence[Household], members_changed: bool = True,
                          cache: StateCache[Household] | None = None) -> None:
    """Write the current state of households and re-index their members' ID numbers (unless the change left the
    members as they were: a visit); a cache learns each state under the row version that now holds it."""
    if not states:
        return
    places = [s.place for s in states]
    assert all(p is not None for p in places)
    written = await conn.execute(_UPSERT, {
        "ids": [s.household_id for s in states],
        "codes": [s.code for s in states],
        "counties": [p.county_code for p in places if p],
        "towns": [p.township_code for p in places if p],
        "villages": [p.village_code for p in places if p],
        "groups": [p.group_code for p in places if p],
        "kinds": [s.kind.value for s in states],
        "statuses": [s.status.value for s in states],
        # a text[] column from a text[] parameter: one "{a,b}" literal per row
        "flags": ["{" + ",".join(json.dumps(f.value, ensure_ascii=False) for f in s.flags) + "}" for s in states],
        "members": [len(s.members) for s in states],
        "versions": [s.version for s in states],
        "states": [s.model_dump_json() for s in states],
    })
    if cache is not None:
        by_id = {s.household_id: s for s in states}
        for household_id, xmin in written:
            cache.put(household_id, xmin, by_id[household_id])
    if not members_changed:
        return
    ids = [s.household_id for s in states]
    await conn.execute(text("DELETE FROM intake.member_index WHERE household_id = ANY(:ids)"), {"ids": ids})
    rows = [(m.id_number, s.household_id, member_id) for s in states for member_id, m in s.members.items()]
    conflict = await conn.execute(text("""
        INSERT INTO intake.member_index (id_number, household_id, member_id)
        SELECT * FROM unnest(CAST(:n AS text[]), CAST(:h AS text[]), CAST(:m AS text[]))
        ON CONFLICT (id_number) DO NOTHING RETURNING id_number"""),
        {"n": [r[0] for r in rows], "h": [r[1] for r in rows], "m": [r[2] for r in rows]})
    inserted = {r[0] for r in conflict}
    clashes = [r[0] for r in rows if r[0] not in inserted]
    if clashes:
        # a concurrent registration got there first: refuse, the caller's transaction rolls back
        raise DomainConflict(f"身份证号码已是其他户的成员：{', '.join(clashes)}", id_numbers=clashes)


async def save_warning(conn: AsyncConnection, event: RecordedEvent, payload: WarningReceived,
                       township_code: str | None) -> None:
    await conn.execute(text("""
        INSERT INTO intake.warnings (warning_id, department, kind, id_number, person_name, household_id, member_id,
                                     township_code, amount, occurred_on, source_ref, note, received_at)
        VALUES (:w, :d, :k, :n, :p, :h, :m, :t, :a, :o, :s, :note, :at)"""),
        {"w": payload.warning_id, "d": payload.department.value, "k": payload.kind.value, "n": payload.id_number,
         "p": payload.person_name, "h": payload.household_id, "m": payload.member_id, "t": township_code,
         "a": payload.amount, "o": payload.occurred_on, "s": payload.source_ref, "note": payload.note,
         "at": event.time})


async def match_warning(conn: AsyncConnection, payload: WarningMatched, township_code: str) -> None:
    await conn.execute(text("UPDATE intake.warnings SET household_id = :h, member_id = :m, township_code = :t "
                            "WHERE warning_id = :w"),
                       {"h": payload.household_id, "m": payload.member_id, "t": township_code,
                        "w": payload.warning_id})


async def rebuild(conn: AsyncConnection, store: EventStore) -> int:
    """Drop the read models and replay every event into them; returns the number of households."""
    await conn.execute(text("TRUNCATE intake.households, intake.member_index, intake.warnings"))
    streams = await conn.execute(text("SELECT DISTINCT stream_id FROM intake.events WHERE stream_type = 'household'"))
    ids = [r[0] for r in streams]
    batch: list[Household] = []
    for household_id in ids:
        events = await store.load(conn, StreamRef("household", household_id))
        batch.append(fold(store.decode_all(events)))
        if len(batch) >= 1000:
            await save_households(conn, batch)
            batch = []
    await save_households(conn, batch)
    position = 0
    while True:
        events = await store.read_after(conn, position, 5000)
        if not events:
            break
        position = events[-1].position
        for event in events:
            if event.type == "WarningReceived":
                payload = store.decode(event)
                assert isinstance(payload, WarningReceived)
                township = None
                if payload.household_id:
                    row = await conn.execute(text("SELECT township_code FROM intake.households "
                                                  "WHERE household_id = :h"), {"h": payload.household_id})
                    township = row.scalar_one_or_none()
                await save_warning(conn, event, payload, township)
            elif event.type == "WarningMatched":
                matched = store.decode(event)
                assert isinstance(matched, WarningMatched)
                row = await conn.execute(text("SELECT township_code FROM intake.households WHERE household_id = :h"),
                                         {"h": matched.household_id})
                await match_warning(conn, matched, row.scalar_one())
    return len(ids)
