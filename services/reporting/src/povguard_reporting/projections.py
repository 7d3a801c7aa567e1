"""The read models: each consumed batch is kept as facts in `reporting.log` and projected into versioned rows
(households, data problems) and small tables (places, scale-risk alerts, audit findings and checkpoints).
`rebuild` drops the read models and projects the log again, batch by batch, through the same code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.envelope import RecordedEvent
from povguard_reporting.domain.facts import Fact, fact_of
from povguard_reporting.domain.household import HouseholdState, apply, columns

READ_MODELS = ("households", "problems", "places", "scale_alerts", "audit_facts")


@dataclass(frozen=True)
class Entry:
    """One logged fact: what the projections need of its event."""

    event_id: str
    type: str
    time: datetime
    fact: Fact
    actor: str


async def record(conn: AsyncConnection, events: Sequence[RecordedEvent], covers: Mapping[str, frozenset[str]]) -> int:
    """Log the facts of a consumed batch (one statement) and project them. Returns how many were kept."""
    entries: list[tuple[RecordedEvent, Fact]] = []
    for event in events:
        fact = fact_of(event.type, event.type_version, event.data)
        if fact is not None:
            entries.append((event, fact))
    if not entries:
        return 0
    batch = (await conn.execute(text("SELECT nextval('reporting.log_batches')"))).scalar_one()
    await conn.execute(text("""
        INSERT INTO reporting.log (batch, event_id, source, type, household_id, time, actor, fact)
        SELECT :b, u.id, u.src, u.type, u.hh, u.time, u.actor::jsonb, u.fact::jsonb
        FROM unnest(CAST(:ids AS uuid[]), CAST(:srcs AS text[]), CAST(:types AS text[]), CAST(:hhs AS text[]),
                    CAST(:times AS timestamptz[]), CAST(:actors AS text[]), CAST(:facts AS text[]))
             WITH ORDINALITY AS u(id, src, type, hh, time, actor, fact, ord)
        ORDER BY u.ord"""),
        {"b": batch, "ids": [e.id for e, _ in entries], "srcs": [e.source for e, _ in entries],
         "types": [e.type for e, _ in entries], "hhs": [f["h"] for _, f in entries],
         "times": [e.time for e, _ in entries], "actors": [e.actor.model_dump_json() for e, _ in entries],
         "facts": [json.dumps(f, ensure_ascii=False, default=_number) for _, f in entries]})
    await project(conn, [Entry(str(e.id), e.type, e.time, f, e.actor.user) for e, f in entries], covers)
    return len(entries)


async def project(conn: AsyncConnection, entries: Sequence[Entry], covers: Mapping[str, frozenset[str]]) -> None:
    await _places(conn, [e.fact for e in entries if e.type == "HouseholdRegistered"])
    await _households(conn, entries, covers)
    await _problems(conn, [e for e in entries if e.type in ("DataProblemFound", "DataProblemCleared")])
    alerts = [e for e in entries if e.type == "ScaleRiskRaised"]
    if alerts:
        await conn.execute(text("""INSERT INTO reporting.scale_alerts (township_code, recorded_at, crossed, as_of)
                                   VALUES (:town, :at, :crossed, :as_of)"""),
                           [{"town": e.fact["town"], "at": e.time, "crossed": e.fact["crossed"],
                             "as_of": date.fromisoformat(e.fact["as_of"])} for e in alerts])
    audit = [e for e in entries if e.type in ("CheckpointSigned", "AnomalyFound")]
    if audit:
        await conn.execute(text("""
            INSERT INTO reporting.audit_facts (event_id, type, recorded_at, household_id, kind, actor, tree_size,
                                               root_hash)
            VALUES (CAST(:id AS uuid), :type, :at, :hh, :kind, :actor, :size, :root)"""),
            [{"id": e.event_id, "type": e.type, "at": e.time, "hh": e.fact.get("h"), "kind": e.fact.get("kind"),
              "actor": e.fact.get("actor"), "size": e.fact.get("size"), "root": e.fact.get("root")} for e in audit])


async def _places(conn: AsyncConnection, facts: list[Fact]) -> None:
    places: dict[str, tuple[str, str]] = {}
    for f in facts:
        places[f["county"]] = (f["county_name"], "county")
        places[f["town"]] = (f["town_name"], "township")
        places[f["village"]] = (f["village_name"], "village")
    if places:
        codes = sorted(places)
        await conn.execute(text("""
            INSERT INTO reporting.places (code, name, level)
            SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:levels AS text[]))
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name"""),
            {"codes": codes, "names": [places[c][0] for c in codes], "levels": [places[c][1] for c in codes]})


_COLUMNS = ("township_code", "village_code", "registered", "kind", "status", "category", "persons", "priority",
            "visited", "assessed", "band", "per_capita", "assessed_persons", "risks", "gaps", "proposal", "held",
            "case_stages", "open_stage", "lead_date", "decided", "refused", "new_category", "new_risks", "plan_open",
            "measure_kinds", "implemented", "missing", "safety_net_only", "behind", "unrecorded", "unreceived")

_INSERT = text(f"""
    INSERT INTO reporting.households (household_id, valid_from, {", ".join(_COLUMNS)}, state)
    VALUES (:household_id, :valid_from, {", ".join(":" + c for c in _COLUMNS)}, CAST(:state AS jsonb))
    ON CONFLICT (household_id, valid_from) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)}, state = EXCLUDED.state""")


async def _households(conn: AsyncConnection, entries: Sequence[Entry], covers: Mapping[str, frozenset[str]]) -> None:
    """Fold each household's facts of the batch into its current state and write one new version of it, valid from
    its latest event's time (never before the version it replaces: a late event from another service counts from
    when it arrived)."""
    by_household: dict[str, list[Entry]] = {}
    for e in entries:
        if e.fact.get("h") and e.type not in ("CheckpointSigned", "AnomalyFound", "ScaleRiskRaised"):
            by_household.setdefault(e.fact["h"], []).append(e)
    if not by_household:
        return
    ids = sorted(by_household)
    rows = await conn.execute(text("""
        SELECT household_id, valid_from, state FROM reporting.households
        WHERE household_id = ANY(:ids) AND valid_to IS NULL ORDER BY household_id FOR UPDATE"""), {"ids": ids})
    current = {r.household_id: (r.valid_from, HouseholdState.model_validate(r.state)) for r in rows}
    closing: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    for household_id in ids:
        since, state = current.get(household_id, (None, HouseholdState(household_id=household_id)))
        for e in by_household[household_id]:
            apply(state, e.fact)
        valid_from = max(e.time for e in by_household[household_id])
        if since is not None and valid_from <= since:
            valid_from = since  # the version it replaces is rewritten in place
        elif since is not None:
            closing.append({"h": household_id, "t": valid_from})
        if not state.village_code:
            continue  # nothing says where the household is yet (e.g. a warning for an unknown person)
        row = columns(state, covers)
        row["lead_date"] = date.fromisoformat(row["lead_date"]) if row["lead_date"] else None
        versions.append({"household_id": household_id, "valid_from": valid_from, **row,
                         "state": state.model_dump_json()})
    if closing:
        await conn.execute(text("""UPDATE reporting.households SET valid_to = :t
                                   WHERE household_id = :h AND valid_to IS NULL"""), closing)
    if versions:
        await conn.execute(_INSERT, versions)


async def _problems(conn: AsyncConnection, entries: Sequence[Entry]) -> None:
    if not entries:
        return
    latest: dict[str, Entry] = {}
    for e in entries:
        latest[e.fact["id"]] = e  # the last word on each problem in this batch
    ids = sorted(latest)
    rows = await conn.execute(text("""SELECT problem_id, valid_from, kind FROM reporting.problems
                                      WHERE problem_id = ANY(:ids) AND valid_to IS NULL FOR UPDATE"""), {"ids": ids})
    current = {r.problem_id: (r.valid_from, r.kind) for r in rows}
    closing, versions = [], []
    for problem_id in ids:
        e = latest[problem_id]
        since, kind = current.get(problem_id, (None, None))
        at = e.time if since is None or e.time > since else since
        if since is not None and at > since:
            closing.append({"p": problem_id, "t": at})
        versions.append({"p": problem_id, "at": at, "h": e.fact["h"], "v": e.fact["village"],
                         "kind": e.fact.get("kind") or kind or "", "rule": e.fact["rule"],
                         "open": e.type == "DataProblemFound"})
    if closing:
        await conn.execute(text("UPDATE reporting.problems SET valid_to = :t WHERE problem_id = :p "
                                "AND valid_to IS NULL"), closing)
    await conn.execute(text("""
        INSERT INTO reporting.problems (problem_id, valid_from, household_id, village_code, kind, rule_id, open)
        VALUES (:p, :at, :h, :v, :kind, :rule, :open)
        ON CONFLICT (problem_id, valid_from) DO UPDATE SET open = EXCLUDED.open"""), versions)


async def rebuild(conn: AsyncConnection, covers: Mapping[str, frozenset[str]]) -> int:
    """Drop the read models and project the whole log again, batch by batch; returns the facts projected."""
    await conn.execute(text("TRUNCATE " + ", ".join(f"reporting.{t}" for t in READ_MODELS)))
    done, after = 0, -1
    while True:
        rows = (await conn.execute(text("""
            SELECT batch, event_id::text AS event_id, type, time, actor->>'user' AS actor, fact FROM reporting.log
            WHERE batch IN (SELECT DISTINCT batch FROM reporting.log WHERE batch > :after ORDER BY batch LIMIT 50)
            ORDER BY seq"""), {"after": after})).all()
        if not rows:
            return done
        batches: dict[int, list[Entry]] = {}
        for r in rows:
            batches.setdefault(r.batch, []).append(Entry(r.event_id, r.type, r.time, r.fact, r.actor))
        for batch in sorted(batches):
            await project(conn, batches[batch], covers)
            done += len(batches[batch])
        after = max(batches)


def _number(value: object) -> float:
    """Amounts are Decimals with two places: JSON numbers, as the events themselves carry them."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
