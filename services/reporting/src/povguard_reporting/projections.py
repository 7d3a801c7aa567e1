"""The read models: each consumed batch is kept as facts in `reporting.log` and projected into versioned rows
(households, data problems) and small tables (places, scale-risk alerts, audit findings and checkpoints). A
versioned row gets a version per event time, however the events were batched, so a figure as of any moment counts
exactly the events up to it.
`rebuild` drops the read models and projects the log again, batch by batch, through the same code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.envelope import RecordedEvent
from povguard_reporting.domain.facts import Fact, fact_of
from povguard_reporting.domain.household import HouseholdState, apply, columns
from povguard_rules.measures import SupportPolicy

READ_MODELS = ("households", "problems", "places", "scale_alerts", "audit_facts")


@dataclass(frozen=True)
class Entry:
    """One logged fact: what the projections need of its event."""

    event_id: str
    type: str
    time: datetime
    fact: Fact
    actor: str


async def record(conn: AsyncConnection, events: Sequence[RecordedEvent], catalogue: SupportPolicy) -> int:
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
        INSERT INTO reporting.log (batch, event_id, source, position, type, household_id, time, actor, fact)
        SELECT :b, u.id, u.src, u.pos, u.type, u.hh, u.time, u.actor::jsonb, u.fact::jsonb
        FROM unnest(CAST(:ids AS uuid[]), CAST(:srcs AS text[]), CAST(:positions AS bigint[]), CAST(:types AS text[]),
                    CAST(:hhs AS text[]), CAST(:times AS timestamptz[]), CAST(:actors AS text[]),
                    CAST(:facts AS text[]))
             WITH ORDINALITY AS u(id, src, pos, type, hh, time, actor, fact, ord)
        ORDER BY u.ord"""),
        {"b": batch, "ids": [e.id for e, _ in entries], "srcs": [e.source for e, _ in entries],
         "positions": [e.position for e, _ in entries],
         "types": [e.type for e, _ in entries], "hhs": [f["h"] for _, f in entries],
         "times": [e.time for e, _ in entries], "actors": [e.actor.model_dump_json() for e, _ in entries],
         "facts": [json.dumps(f, ensure_ascii=False, default=_number) for _, f in entries]})
    await project(conn, [Entry(str(e.id), e.type, e.time, f, e.actor.user) for e, f in entries], catalogue)
    return len(entries)


async def project(conn: AsyncConnection, entries: Sequence[Entry], catalogue: SupportPolicy) -> None:
    await _places(conn, [e.fact for e in entries if e.type == "HouseholdRegistered"])
    await _households(conn, entries, catalogue)
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
    INSERT INTO reporting.households (household_id, valid_from, valid_to, {", ".join(_COLUMNS)}, state)
    VALUES (:household_id, :valid_from, :valid_to, {", ".join(":" + c for c in _COLUMNS)}, CAST(:state AS jsonb))
    ON CONFLICT (household_id, valid_from) DO UPDATE SET valid_to = EXCLUDED.valid_to,
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)}, state = EXCLUDED.state""")


def _chain(versions: list[dict[str, Any]], since: datetime | None, at: datetime, row: dict[str, Any]) -> datetime:
    """Add a version valid from `at` (never before the one it follows: a late event from another service counts from
    when it arrived), or rewrite the last one when it is valid from the same moment. Returns the version's time."""
    at = max(at, since) if since is not None else at
    if versions and versions[-1]["valid_from"] == at:
        versions[-1] = row | {"valid_from": at, "valid_to": None}
    else:
        if versions:
            versions[-1]["valid_to"] = at
        versions.append(row | {"valid_from": at, "valid_to": None})
    return at


async def _close(conn: AsyncConnection, table: str, key: str, current: dict[str, datetime],
                 versions: dict[str, list[dict[str, Any]]]) -> None:
    """Close the current version of each row that got newer ones (one valid from the same moment rewrites it)."""
    closing = [{"k": k, "t": v[0]["valid_from"]} for k, v in versions.items()
               if v and k in current and v[0]["valid_from"] > current[k]]
    if closing:
        await conn.execute(text(f"UPDATE reporting.{table} SET valid_to = :t WHERE {key} = :k AND valid_to IS NULL"),
                           closing)


async def _households(conn: AsyncConnection, entries: Sequence[Entry], catalogue: SupportPolicy) -> None:
    """Fold each household's facts of the batch into its current state, one event at a time, and write a version of
    it per event time."""
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
    versions: dict[str, list[dict[str, Any]]] = {}
    for household_id in ids:
        since, state = current.get(household_id, (None, HouseholdState(household_id=household_id)))
        chain = versions.setdefault(household_id, [])
        for e in by_household[household_id]:
            apply(state, e.fact)
            if not state.village_code:
                continue  # nothing says where the household is yet (e.g. a warning for an unknown person)
            row = columns(state, catalogue)
            row["lead_date"] = date.fromisoformat(row["lead_date"]) if row["lead_date"] else None
            since = _chain(chain, since, e.time, {"household_id": household_id, **row,
                                                  "state": state.model_dump_json()})
    await _close(conn, "households", "household_id", {k: v[0] for k, v in current.items()}, versions)
    every = [v for chain in versions.values() for v in chain]
    if every:
        await conn.execute(_INSERT, every)


async def _problems(conn: AsyncConnection, entries: Sequence[Entry]) -> None:
    if not entries:
        return
    by_problem: dict[str, list[Entry]] = {}
    for e in entries:
        by_problem.setdefault(e.fact["id"], []).append(e)
    ids = sorted(by_problem)
    rows = await conn.execute(text("""SELECT problem_id, valid_from, kind FROM reporting.problems
                                      WHERE problem_id = ANY(:ids) AND valid_to IS NULL ORDER BY problem_id
                                      FOR UPDATE"""), {"ids": ids})
    current = {r.problem_id: (r.valid_from, r.kind) for r in rows}
    versions: dict[str, list[dict[str, Any]]] = {}
    for problem_id in ids:
        since, kind = current.get(problem_id, (None, None))
        chain = versions.setdefault(problem_id, [])
        for e in by_problem[problem_id]:
            kind = e.fact.get("kind") or kind or ""
            since = _chain(chain, since, e.time, {"p": problem_id, "h": e.fact["h"], "v": e.fact["village"],
                                                  "kind": kind, "rule": e.fact["rule"],
                                                  "open": e.type == "DataProblemFound"})
    await _close(conn, "problems", "problem_id", {k: v[0] for k, v in current.items()}, versions)
    await conn.execute(text("""
        INSERT INTO reporting.problems (problem_id, valid_from, valid_to, household_id, village_code, kind, rule_id,
                                        open)
        VALUES (:p, :valid_from, :valid_to, :h, :v, :kind, :rule, :open)
        ON CONFLICT (problem_id, valid_from) DO UPDATE SET valid_to = EXCLUDED.valid_to, open = EXCLUDED.open"""),
        [v for chain in versions.values() for v in chain])


async def rebuild(conn: AsyncConnection, catalogue: SupportPolicy) -> int:
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
            await project(conn, batches[batch], catalogue)
            done += len(batches[batch])
        after = max(batches)


def _number(value: object) -> float:
    """Amounts are Decimals with two places: JSON numbers, as the events themselves carry them."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
