"""Consumed events → facts → pure assessment → assessment events and read models, all in the consumer's
transaction. Also: the assessment of a household as of a past time, the visit-deadline sweep and the rebuild."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from typing import Any

from pydantic_core import from_json
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_assessment.domain.scale import Standing, flatten, indicators, should_raise
from povguard_assessment.scale_counts import TownshipScale, township_scale
from povguard_contracts.assessment import DataProblemCleared, DataProblemFound, ScaleRiskRaised
from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.vocab import MonitoringStatus, Outcome
from povguard_platform.actor import SYSTEM_ACTOR
from povguard_platform.batch import StateCache
from povguard_platform.clock import Clock
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_rules.assess import Assessment, Previous, assess, changes
from povguard_rules.facts import Fact, HouseholdFacts, VisitsDeadlinePassed, fold
from povguard_rules.policy import Rules

UNKNOWN_TOWNSHIP = "000000000"  # intake's subject token for a warning about a person not (yet) in the registry
DEADLINE_NAMESPACE = uuid.UUID("6f1d2a8e-3b7c-4d5e-9a0b-1c2d3e4f5a6b")
AT_RISK_OUTCOMES = frozenset({Outcome.NEWLY_IDENTIFIED, Outcome.RE_MARKED, Outcome.ELIMINATION_ROLLED_BACK})
HOUSEHOLD_EVENTS = frozenset({"HouseholdRegistered", "MemberAdded", "MemberUpdated", "MemberRemoved", "VisitRecorded",
                              "VisitCorrected", "LeadOpened", "MonitoringStatusChanged", "CountyDecided",
                              "MeasureImplemented"})


_SAVE_HOUSEHOLD = text("""
            INSERT INTO assessment.households (household_id, township_code, village_code, kind, status, visit_id,
                persons, per_capita, band, outcome, category, held, hold_reason, at_risk, income_fell, income, risk,
                proposal, problems, detail, policy)
            VALUES (:h, :t, :v, :kind, :status, :visit, :persons, :pc, :band, :outcome, :category, :held, :reason,
                    :at_risk, :fell, CAST(:income AS jsonb), CAST(:risk AS jsonb), CAST(:proposal AS jsonb),
                    CAST(:problems AS jsonb), CAST(:detail AS jsonb), :policy)
            ON CONFLICT (household_id) DO UPDATE SET township_code = EXCLUDED.township_code,
                village_code = EXCLUDED.village_code, kind = EXCLUDED.kind, status = EXCLUDED.status,
                visit_id = EXCLUDED.visit_id, persons = EXCLUDED.persons, per_capita = EXCLUDED.per_capita,
                band = EXCLUDED.band, outcome = EXCLUDED.outcome, category = EXCLUDED.category, held = EXCLUDED.held,
                hold_reason = EXCLUDED.hold_reason, at_risk = EXCLUDED.at_risk, income_fell = EXCLUDED.income_fell,
                income = EXCLUDED.income, risk = EXCLUDED.risk, proposal = EXCLUDED.proposal,
                problems = EXCLUDED.problems, detail = EXCLUDED.detail, policy = EXCLUDED.policy""")


PROBLEM_EVENTS = frozenset({"DataProblemFound", "DataProblemCleared"})
_FOUND = text("""
    INSERT INTO assessment.problems (problem_id, household_id, village_code, kind, rule_id, member_id, text, open,
                                     found_at, cleared_at)
    VALUES (:p, :h, :v, :k, :r, :m, :text, true, :at, NULL)
    ON CONFLICT (problem_id) DO UPDATE SET village_code = EXCLUDED.village_code, kind = EXCLUDED.kind,
        text = EXCLUDED.text, open = true, cleared_at = NULL,
        found_at = CASE WHEN assessment.problems.open THEN assessment.problems.found_at ELSE EXCLUDED.found_at END""")
_CLEARED = text("UPDATE assessment.problems SET open = false, cleared_at = :at WHERE problem_id = :p")


@dataclass
class _Appends:
    """What a batch appends, in order, each event with its own metadata; streams at their expected versions."""

    events: list[NewEvent] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)
    expected: dict[StreamRef, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _ScaleCheck:
    """A township counted under its scale lock: the counts, the crossings now, and the alert if they grew."""

    township: str
    scale: TownshipScale
    crossed: list[str]
    alert: NewEvent | None
    metadata: Metadata


def _due(due: dict[str, RecordedEvent | None], household_id: str, cause: RecordedEvent) -> None:
    """Mark a household for re-assessment after the batch, once, in the order of its last fact."""
    due.pop(household_id, None)
    due[household_id] = cause


def _parsed(raw: str | None) -> Any:
    return None if raw is None else from_json(raw)


def _at_risk(state: HouseholdFacts, a: Assessment) -> bool:
    """风险未消除, or proposed for identification: counted among the township's households at risk."""
    return state.status is MonitoringStatus.RISK_NOT_ELIMINATED or (
        a.proposal is not None and a.proposal.outcome in AT_RISK_OUTCOMES)


def household_stream(household_id: str) -> StreamRef:
    return StreamRef("assessment", household_id)


def township_stream(township_code: str) -> StreamRef:
    return StreamRef("township", township_code)


def decode_fact(type_: str, type_version: int, raw: str) -> Fact:
    """A stored fact from its JSON text (`data::text`): parsed and validated in one pass."""
    if type_ == "VisitsDeadlinePassed":
        return VisitsDeadlinePassed.model_validate_json(raw)
    return CATALOGUE.decode_json(type_, type_version, raw)


# Facts decoded in this process, by event id and row xmin. The table is append-only (a trigger refuses UPDATE and
# DELETE) and payloads are frozen, so a fact once decoded is shared by every later re-assessment of its household
# (a household is re-assessed on each new fact: its registration was parsed again for every visit, warning,
# decision and measure). Bounded: a decoded fact holds 7-12 KB (a visit form, a registration), and at 10,000 the
# service passed 300 MB at 70,000 households.
CACHED_FACTS = 3000
DECODED: StateCache[Fact] = StateCache(CACHED_FACTS)


def cached_fact(event_id: uuid.UUID, xmin: str, type_: str, type_version: int, raw: str) -> Fact:
    key = str(event_id)
    fact = DECODED.get(key, xmin)
    if fact is None:
        fact = decode_fact(type_, type_version, raw)
        DECODED.put(key, xmin, fact)
    return fact


_PAST_DEADLINE = """
    SELECT f.household_id, min(f.township_code) AS township FROM assessment.facts f
    WHERE f.household_id IS NOT NULL {among} GROUP BY f.household_id
    HAVING count(*) FILTER (WHERE f.type IN ('VisitRecorded', 'VisitCorrected', 'VisitsDeadlinePassed')) = 0
       AND count(*) FILTER (WHERE f.type = 'HouseholdRegistered') > 0
    ORDER BY f.household_id"""


@dataclass
class Assessor:
    store: EventStore
    rules: Rules
    clock: Clock = field(default_factory=Clock)  # the campaign's clock: alerts are dated on the campaign's day

    # --- facts ---------------------------------------------------------------------------------------------------

    async def record_fact(self, conn: AsyncConnection, event_id: uuid.UUID, household_id: str | None, township: str,
                          source: str, type_: str, type_version: int, time: datetime, data: dict[str, Any]) -> bool:
        row = await conn.execute(text("""
            INSERT INTO assessment.facts (event_id, household_id, township_code, source, type, type_version, time, data)
            VALUES (:e, :h, :t, :s, :ty, :tv, :at, CAST(:d AS jsonb)) ON CONFLICT (event_id) DO NOTHING RETURNING 1"""),
            {"e": event_id, "h": household_id, "t": township, "s": source, "ty": type_, "tv": type_version, "at": time,
             "d": json.dumps(data, ensure_ascii=False)})
        return row.first() is not None

    async def record_facts(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> set[uuid.UUID]:
        """Household events as facts, in order, in one statement; the ids of those not recorded before."""
        if not events:
            return set()
        rows = await conn.execute(text("""
            INSERT INTO assessment.facts (event_id, household_id, township_code, source, type, type_version, time, data)
            SELECT u.e, u.h, u.t, u.s, u.ty, u.tv, u.at, CAST(u.d AS jsonb)
            FROM unnest(CAST(:e AS uuid[]), CAST(:h AS text[]), CAST(:t AS text[]), CAST(:s AS text[]),
                        CAST(:ty AS text[]), CAST(:tv AS int[]), CAST(:at AS timestamptz[]), CAST(:d AS text[]))
                 WITH ORDINALITY AS u(e, h, t, s, ty, tv, at, d, ord)
            ORDER BY u.ord
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id"""),
            {"e": [e.id for e in events], "h": [str(e.data["household_id"]) for e in events],
             "t": [e.township for e in events], "s": [e.source for e in events], "ty": [e.type for e in events],
             "tv": [e.type_version for e in events], "at": [e.time for e in events],
             "d": [json.dumps(e.data, ensure_ascii=False) for e in events]})
        return {r[0] for r in rows}

    async def facts(self, conn: AsyncConnection, household_id: str, as_of: datetime | None = None) -> HouseholdFacts:
        rows = await conn.execute(text("""
            SELECT type, type_version, data::text AS data FROM assessment.facts
            WHERE household_id = :h AND (CAST(:at AS timestamptz) IS NULL OR time <= :at) ORDER BY seq"""),
            {"h": household_id, "at": as_of})
        return fold(household_id, (decode_fact(r.type, r.type_version, r.data) for r in rows))

    # --- the consumer --------------------------------------------------------------------------------------------

    async def consume(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self.consume_batch(conn, [event])

    async def consume_batch(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        """A fetched batch in order: facts recorded, each touched household re-assessed once with its latest facts,
        then the scale-risk check once per township (after each event it would re-count a whole township thousands
        of times during an import)."""
        due: dict[str, RecordedEvent | None] = {}
        new_facts = await self.record_facts(conn, [e for e in events if e.type in HOUSEHOLD_EVENTS])
        townships: dict[str, RecordedEvent | None] = {}
        for event in events:
            await self._take(conn, event, due, new_facts, townships)
        await self.reassess_now(conn, due, townships)

    async def _take(self, conn: AsyncConnection, event: RecordedEvent, due: dict[str, RecordedEvent | None],
                    new_facts: set[uuid.UUID], townships: dict[str, RecordedEvent | None]) -> None:
        """One event of a batch: its fact recorded (household events: already, in `new_facts`), the household it
        concerns marked `due` for re-assessment, a township-wide warning's township for the scale check."""
        data = event.data
        if event.type in HOUSEHOLD_EVENTS:
            if event.id in new_facts:
                _due(due, str(data["household_id"]), event)
        elif event.type == "WarningReceived":
            maybe_household: str | None = data.get("household_id")
            if not await self.record_fact(conn, event.id, maybe_household, event.township, event.source, event.type,
                                          event.type_version, event.time, data):
                return
            await self.save_warning(conn, data, event.township)
            if maybe_household:
                _due(due, maybe_household, event)
            if event.township != UNKNOWN_TOWNSHIP:  # a new warning row: the township's counts may move
                townships[event.township] = event
        elif event.type == "WarningMatched":
            await self.warning_matched(conn, event, due, townships)

    async def warning_matched(self, conn: AsyncConnection, event: RecordedEvent, due: dict[str, RecordedEvent | None],
                              townships: dict[str, RecordedEvent | None]) -> None:
        """An unmatched warning found its household: it becomes a fact of that household (the original warning
        with the household filled in)."""
        row = await conn.execute(text("SELECT type_version, data FROM assessment.facts WHERE type = 'WarningReceived' "
                                      "AND data->>'warning_id' = :w ORDER BY seq LIMIT 1"),
                                 {"w": event.data["warning_id"]})
        original = row.first()
        if original is None:
            return
        data = {**original.data, "household_id": event.data["household_id"], "member_id": event.data["member_id"]}
        if await self.record_fact(conn, event.id, str(event.data["household_id"]), event.township, event.source,
                                  "WarningReceived", original.type_version, event.time, data):
            await self.save_warning(conn, data, event.township)
            _due(due, str(event.data["household_id"]), event)
            if event.township != UNKNOWN_TOWNSHIP:
                townships[event.township] = event

    async def save_warning(self, conn: AsyncConnection, data: dict[str, Any], township: str) -> None:
        if township == UNKNOWN_TOWNSHIP:
            return
        await conn.execute(text("""
            INSERT INTO assessment.warnings (warning_id, township_code, household_id, kind, occurred_on)
            VALUES (:w, :t, :h, :k, :o) ON CONFLICT (warning_id) DO UPDATE
            SET township_code = EXCLUDED.township_code, household_id = EXCLUDED.household_id"""),
            {"w": data["warning_id"], "t": township, "h": data.get("household_id"), "k": data["kind"],
             "o": date.fromisoformat(str(data["occurred_on"]))})

    # --- assessment ----------------------------------------------------------------------------------------------

    async def reassess_many(self, conn: AsyncConnection, due: dict[str, RecordedEvent | None],
                            touched: dict[str, RecordedEvent | None]) -> _Appends:
        """Re-assess households (each with the event that caused it, or None): facts, previous results and stream
        versions read in three queries, the read model written in one; every household's changes returned for the
        caller's one append, each with its own cause (the visit that led to a proposal stays its causation).
        `touched` collects the townships whose scale check the caller runs."""
        out = _Appends()
        if not due:
            return out
        ids = list(due)
        facts: dict[str, list[Fact]] = {h: [] for h in ids}
        for r in await conn.execute(text("SELECT household_id, event_id, CAST(xmin AS text) AS xmin, type, "
                                         "type_version, data::text AS data "
                                         "FROM assessment.facts WHERE household_id = ANY(:h) ORDER BY seq"),
                                    {"h": ids}):
            facts[r.household_id].append(cached_fact(r.event_id, r.xmin, r.type, r.type_version, r.data))
        previous: dict[str, Previous] = {}
        standing: dict[str, Standing] = {}
        for r in await conn.execute(text("SELECT household_id, township_code, village_code, kind, at_risk, "
                                         "income::text, risk::text, proposal::text, problems::text "
                                         "FROM assessment.households WHERE household_id = ANY(:h)"), {"h": ids}):
            # jsonb as text, parsed by pydantic-core: about twice as fast as the driver's json.loads
            risk = _parsed(r.risk)
            previous[r.household_id] = Previous(_parsed(r.income), risk, _parsed(r.proposal), _parsed(r.problems))
            standing[r.household_id] = Standing.of(r.township_code, r.village_code, r.kind, r.at_risk,
                                                   (x["type"] for x in (risk or {}).get("risks", [])))
        versions = {r[0]: int(r[1]) for r in await conn.execute(
            text("SELECT stream_id, max(version) FROM assessment.events WHERE stream_type = :t "
                 "AND stream_id = ANY(:h) GROUP BY stream_id"), {"t": household_stream("").type, "h": ids})}
        assessed: list[tuple[HouseholdFacts, Assessment, RecordedEvent | None]] = []
        for household_id, cause in due.items():
            state = fold(household_id, facts[household_id])
            current = assess(state, self.rules)
            if current is not None:
                assessed.append((state, current, cause))
        await self.save_households(conn, [(state, a) for state, a, _ in assessed])
        for state, current, cause in assessed:
            new = changes(previous.get(current.household_id, Previous()), current)
            stream = household_stream(current.household_id)
            if new:
                out.events += [NewEvent(stream, current.township_code, e) for e in new]
                out.metadata += [self.metadata(cause)] * len(new)
                out.expected[stream] = versions.get(current.household_id, 0)
            # the scale counts change only with what they read of the row (or with warnings: `_take`)
            was, now = standing.get(current.household_id), self._standing(state, current)
            if was != now:
                touched[now.township] = cause
                if was is not None:
                    touched[was.township] = cause
        return out

    async def reassess(self, conn: AsyncConnection, household_id: str, cause: RecordedEvent | None) -> None:
        await self.reassess_now(conn, {household_id: cause})

    async def reassess_now(self, conn: AsyncConnection, due: dict[str, RecordedEvent | None],
                           townships: dict[str, RecordedEvent | None] | None = None) -> None:
        """Re-assess the households, then check scale risk once in each township whose counts they (or
        `townships`) may have moved; everything the batch appends, last and at once (see `_append`)."""
        touched = dict(townships or {})
        appends = await self.reassess_many(conn, due, touched)
        checks = [await self._count_scale(conn, township, cause) for township, cause in sorted(touched.items())]
        await self._append(conn, appends, checks)

    async def _append(self, conn: AsyncConnection, appends: _Appends, checks: Sequence[_ScaleCheck]) -> None:
        """The households' events, then any scale alerts, in one append, as late in the transaction as may be: the
        event store's append lock is held from the append to the commit, so every other transaction of this service
        that appends waits for what follows it (reading and counting come before)."""
        for check in checks:
            if check.alert is None:
                await self.save_scale(conn, check.township, check.scale, None, None)
            else:
                stream = check.alert.stream
                appends.events.append(check.alert)
                appends.metadata.append(check.metadata)
                appends.expected[stream] = await self.store.stream_version(conn, stream)
        if not appends.events:
            return
        recorded = await self.store.append(conn, appends.events, appends.expected, appends.metadata)
        # only the recorded events needed are built (each a payload dump): the problems' and alerts' times
        await self._save_problems(conn, [(e.payload, recorded[i].time) for i, e in enumerate(appends.events)
                                         if isinstance(e.payload, DataProblemFound | DataProblemCleared)])
        alerted = {e.stream.id: recorded[i].time for i, e in enumerate(appends.events)
                   if isinstance(e.payload, ScaleRiskRaised)}
        for check in checks:
            if check.alert is not None:
                await self.save_scale(conn, check.township, check.scale, check.crossed, alerted[check.township])

    def metadata(self, cause: RecordedEvent | None) -> Metadata:
        if cause is None:
            return Metadata(actor=SYSTEM_ACTOR, policy=self.rules.ref)
        return Metadata(actor=SYSTEM_ACTOR, policy=self.rules.ref, causation_id=cause.id,
                        correlation_id=cause.correlation_id or cause.id)

    async def save_household(self, conn: AsyncConnection, state: HouseholdFacts, a: Assessment) -> None:
        await self.save_households(conn, [(state, a)])

    async def save_households(self, conn: AsyncConnection, assessed: Sequence[tuple[HouseholdFacts, Assessment]]
                              ) -> None:
        if assessed:
            await conn.execute(_SAVE_HOUSEHOLD, [self._household_row(state, a) for state, a in assessed])

    def _standing(self, state: HouseholdFacts, a: Assessment) -> Standing:
        return Standing.of(a.township_code, a.village_code, state.kind.value, _at_risk(state, a),
                           (r.type.value for r in a.risk.risks) if a.risk else ())

    def _household_row(self, state: HouseholdFacts, a: Assessment) -> dict[str, Any]:
        p, inc = a.proposal, a.income
        at_risk = _at_risk(state, a)
        fell = inc is not None and inc.change_ratio is not None and \
            inc.change_ratio <= -self.rules.section.income_drop_share

        def dump(m: Any) -> str | None:
            return None if m is None else str(m.model_dump_json())

        return {"h": a.household_id, "t": a.township_code, "v": a.village_code, "kind": state.kind.value,
                "status": state.status.value, "visit": inc.visit_id if inc else None,
                "persons": inc.household_size if inc else len(state.members), "pc": inc.per_capita if inc else None,
                "band": inc.band.value if inc else None, "outcome": p.outcome.value if p else None,
                "category": p.category.value if p and p.category else None, "held": bool(p and p.held),
                "reason": p.hold_reason if p else None, "at_risk": at_risk, "fell": fell, "income": dump(inc),
                "risk": dump(a.risk), "proposal": dump(p),
                "problems": json.dumps({k: v.model_dump(mode="json") for k, v in a.problems.items()},
                                       ensure_ascii=False),
                "detail": json.dumps(a.detail, ensure_ascii=False), "policy": self.rules.ref}

    async def apply_problem_events(self, conn: AsyncConnection, recorded: Sequence[RecordedEvent]) -> None:
        await self._save_problems(conn, [
            (DataProblemFound.model_validate(e.data) if e.type == "DataProblemFound"
             else DataProblemCleared.model_validate(e.data), e.time) for e in recorded if e.type in PROBLEM_EVENTS])

    async def _save_problems(self, conn: AsyncConnection,
                             problems: Sequence[tuple[DataProblemFound | DataProblemCleared, datetime]]) -> None:
        """The problems read model, in event order: each run of one kind in one round trip."""
        for found, run in groupby(problems, key=lambda p: isinstance(p[0], DataProblemFound)):
            rows = list(run)
            if found:
                await conn.execute(_FOUND, [
                    {"p": f.problem_id, "h": f.household_id, "v": f.village_code, "k": f.kind, "r": f.rule_id,
                     "m": f.member_id, "text": f.text, "at": at} for f, at in rows if isinstance(f, DataProblemFound)])
            else:
                await conn.execute(_CLEARED, [{"p": c.problem_id, "at": at} for c, at in rows])

    # --- scale risk ----------------------------------------------------------------------------------------------

    async def check_scale(self, conn: AsyncConnection, township: str, cause: RecordedEvent | None) -> None:
        await self._append(conn, _Appends(), [await self._count_scale(conn, township, cause)])

    async def _count_scale(self, conn: AsyncConnection, township: str, cause: RecordedEvent | None) -> _ScaleCheck:
        """The township counted, and the alert to append if its crossings grew."""
        thresholds = self.rules.section.scale
        # Partitions apply batches concurrently, and two of them may touch one township: each would count the
        # township without the other's uncommitted warning and the later write would lose one. One counter at a
        # time per township (callers go in sorted township order and append only after the last of these locks,
        # so two batches cannot deadlock here nor over the append lock); the count below starts after the lock, so
        # it sees what the previous holder committed.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('povguard.assessment.scale'), hashtext(:t))"),
                           {"t": township})
        scale = await township_scale(conn, township, thresholds)
        town, villages = scale.crossed(thresholds)
        now = flatten(town, villages)
        row = (await conn.execute(text("SELECT crossed, villages FROM assessment.scale WHERE township_code = :t "
                                       "FOR UPDATE"), {"t": township})).first()
        before = flatten(list(row.crossed), {k: v["crossed"] for k, v in row.villages.items()}) if row else []
        if not should_raise(before, now):
            return _ScaleCheck(township, scale, now, None, self.metadata(cause))
        alert = ScaleRiskRaised(township_code=township, indicators=indicators(scale.township),
                                counts=scale.township.counts(), thresholds=thresholds.thresholds(),
                                min_counts=thresholds.min_counts(), crossed=town, villages=villages,
                                as_of=self.clock.today())
        return _ScaleCheck(township, scale, now, NewEvent(township_stream(township), township, alert),
                           self.metadata(cause))

    async def save_scale(self, conn: AsyncConnection, township: str, scale: TownshipScale,
                         raised: list[str] | None, raised_at: datetime | None) -> None:
        """The read model row; `raised` (the crossings of the last alert) is kept when no new alert is given."""
        thresholds = self.rules.section.scale
        town, _ = scale.crossed(thresholds)
        await conn.execute(text("""
            INSERT INTO assessment.scale (township_code, households, indicators, counts, crossed, villages, raised,
                                          raised_at)
            VALUES (:t, :n, CAST(:i AS jsonb), CAST(:k AS jsonb), CAST(:c AS text[]), CAST(:v AS jsonb),
                    CAST(:r AS text[]), :at)
            ON CONFLICT (township_code) DO UPDATE SET households = EXCLUDED.households,
                indicators = EXCLUDED.indicators, counts = EXCLUDED.counts, crossed = EXCLUDED.crossed,
                villages = EXCLUDED.villages,
                raised = CASE WHEN :at IS NULL THEN assessment.scale.raised ELSE EXCLUDED.raised END,
                raised_at = coalesce(:at, assessment.scale.raised_at)"""),
            {"t": township, "n": scale.township.households, "i": json.dumps(indicators(scale.township)),
             "k": json.dumps(scale.township.counts()), "c": town,
             "v": json.dumps(scale.village_rows(thresholds), ensure_ascii=False), "r": raised or [],
             "at": raised_at})

    # --- the visit deadline --------------------------------------------------------------------------------------

    async def past_deadline(self, conn: AsyncConnection, today: date) -> list[str]:
        """The households without a visit (and without the deadline's fact yet) once the visit deadline passed."""
        if today <= self.rules.policy.calendar.visits:
            return []
        return list((await conn.execute(text(_PAST_DEADLINE.format(among="")))).scalars())

    async def sweep_deadlines(self, conn: AsyncConnection, today: date, among: Sequence[str] | None = None) -> int:
        """After the campaign's visit deadline, record once per household without a visit that the deadline passed
        (a fact of its own, so that replay never depends on the clock) and re-assess it. `among`: only these
        households (the sweep goes a chunk at a time, each in its own transaction: a county's unvisited households
        re-assessed at once held gigabytes); each is checked again here, so a visit that came meanwhile wins."""
        deadline = self.rules.policy.calendar.visits
        if today <= deadline:
            return 0
        rows = await conn.execute(text(_PAST_DEADLINE.format(
            among="" if among is None else "AND f.household_id = ANY(:among)")), {"among": list(among or [])})
        due: dict[str, RecordedEvent | None] = {}
        for household_id, township in rows.all():
            fact = VisitsDeadlinePassed(household_id=household_id, deadline=deadline)
            event_id = uuid.uuid5(DEADLINE_NAMESPACE, f"{household_id}:{deadline.isoformat()}")
            if await self.record_fact(conn, event_id, household_id, township, "assessment", fact.event_type, 1,
                                      datetime.now().astimezone(),  # when recorded (as_of reads it): real time
                                      fact.model_dump(mode="json")):
                due[household_id] = None
        await self.reassess_now(conn, due)
        return len(due)

    # --- past states and rebuild ---------------------------------------------------------------------------------

    async def as_of(self, conn: AsyncConnection, household_id: str, at: datetime | None) -> Assessment | None:
        return assess(await self.facts(conn, household_id, at), self.rules)

    async def rebuild(self, conn: AsyncConnection) -> int:
        """Drop the read models and rebuild them: households from the consumed facts (the same pure assessment),
        problems and scale alerts from assessment's own events. Appends nothing."""
        await conn.execute(text("TRUNCATE assessment.households, assessment.problems, assessment.warnings, "
                                "assessment.scale"))
        rows = await conn.execute(text("SELECT township_code, data FROM assessment.facts "
                                       "WHERE type = 'WarningReceived' ORDER BY seq"))
        for township, data in rows.all():
            await self.save_warning(conn, data, township)
        ids = [r[0] for r in await conn.execute(text(
            "SELECT DISTINCT household_id FROM assessment.facts WHERE household_id IS NOT NULL ORDER BY 1"))]
        for household_id in ids:
            state = await self.facts(conn, household_id)
            current = assess(state, self.rules)
            if current is not None:
                await self.save_household(conn, state, current)
        position = 0
        last_alert: dict[str, RecordedEvent] = {}
        while events := await self.store.read_after(conn, position, 5000):
            position = events[-1].position
            await self.apply_problem_events(conn, events)
            last_alert.update({e.stream.id: e for e in events if e.type == "ScaleRiskRaised"})
        towns = [r[0] for r in await conn.execute(text(
            "SELECT township_code FROM assessment.households UNION SELECT township_code FROM assessment.warnings"))]
        for township in sorted(towns):
            alert = last_alert.get(township)
            raised = flatten(alert.data["crossed"], alert.data.get("villages", {})) if alert else None
            await self.save_scale(conn, township, await township_scale(conn, township, self.rules.section.scale),
                                  raised, alert.time if alert else None)
        return len(ids)
