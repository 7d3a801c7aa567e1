"""Commands and events → domain → event store, in one transaction with the read model. The routes, the consumer and
the benchmark call these; nothing here knows about HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.assessment import OutcomeProposed
from povguard_contracts.intake import HouseholdRegistered
from povguard_contracts.numbers import STORED
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CaseOpened
from povguard_contracts.vocab import HouseholdKind, MonitoringStatus, Outcome
from povguard_platform.actor import Actor
from povguard_platform.batch import StateCache, decide_each, lock_states
from povguard_platform.clock import Clock
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.errors import DomainConflict, DomainNotFound
from povguard_platform.eventstore import EventStore
from povguard_platform.ids import uuid7
from povguard_platform.policy import Policy
from povguard_review.domain import case as domain
from povguard_review.domain.case import Action, Before, Case
from povguard_review.policy import ReviewPolicy
from povguard_review.projections import save_cases, save_households


def case_stream(case_id: str) -> StreamRef:
    return StreamRef("case", case_id)


CACHED_CASES = 2000
Decide = Callable[[Case], EventPayload | Sequence[EventPayload]]  # what a stage action produces from a case


@dataclass
class Review:
    """The review procedure's use cases over one service store. `today` is the clock that bounds `acted_on`."""

    store: EventStore
    policy: Policy
    rules: ReviewPolicy
    clock: Clock = field(default_factory=Clock)  # the campaign's clock: today never comes from the machine
    # the cases this process last wrote or read: a batch of 15 departments' checks parses each case once, not 15
    # times (at most CACHED_CASES states, ~20 KB each at the county stage)
    states: StateCache[Case] = field(default_factory=lambda: StateCache(CACHED_CASES))

    def today(self) -> date:
        return self.clock.today()

    def metadata(self, actor: Actor, causation: RecordedEvent | None = None) -> Metadata:
        if causation is None:
            return Metadata(actor=actor, policy=self.policy.ref)
        return Metadata(actor=actor, policy=self.policy.ref, causation_id=causation.id,
                        correlation_id=causation.correlation_id or causation.id)

    # --- loading ----------------------------------------------------------------------------------------------------

    async def load(self, conn: AsyncConnection, case_id: str, *, lock: bool = False) -> Case:
        """The case from its read model (written with every append, so it is the case's latest state)."""
        row = await conn.execute(text("SELECT state FROM review.cases WHERE case_id = :c"
                                      + (" FOR UPDATE" if lock else "")), {"c": case_id})
        state = row.scalar_one_or_none()
        if state is None:
            raise DomainNotFound(f"没有这个案件（{case_id}）")
        return Case.model_validate(state)

    async def history(self, conn: AsyncConnection, case_id: str) -> list[RecordedEvent]:
        return await self.store.load(conn, case_stream(case_id))

    async def _open_case_of(self, conn: AsyncConnection, household_id: str) -> Case | None:
        row = await conn.execute(text("SELECT state FROM review.cases WHERE household_id = :h AND open"),
                                 {"h": household_id})
        state = row.scalar_one_or_none()
        return Case.model_validate(state) if state is not None else None

    async def village_of(self, conn: AsyncConnection, household_id: str) -> str | None:
        """The household's administrative village as the registry has it (None: not registered, or not yet here)."""
        row = await conn.execute(text("SELECT village_code FROM review.households WHERE household_id = :h"),
                                 {"h": household_id})
        village: str | None = row.scalar_one_or_none()
        return village

    async def _registry(self, conn: AsyncConnection, household_id: str) -> Any:
        row = await conn.execute(text("SELECT kind, lifted_year, status FROM review.households "
                                      "WHERE household_id = :h"), {"h": household_id})
        return row.first()

    # --- writing ----------------------------------------------------------------------------------------------------

    async def _commit(self, conn: AsyncConnection, case: Case, events: Sequence[EventPayload], actor: Actor,
                      causation: RecordedEvent | None = None) -> Case:
        first = events[0]
        stream = case_stream(case.case_id or (first.case_id if isinstance(first, CaseOpened) else ""))
        township = case.township_code or (first.township_code if isinstance(first, CaseOpened) else "")
        new = domain.fold([(e, actor) for e in events], case)
        # row locks first: the append lock must be the last lock taken (no deadlock)
        await save_cases(conn, [new], self.states)
        await self.store.append(conn, [NewEvent(stream, township, e) for e in events], {stream: case.version},
                                self.metadata(actor, causation))
        return new

    async def open(self, conn: AsyncConnection, opened: CaseOpened, actor: Actor,
                   causation: RecordedEvent | None = None) -> Case:
        existing = await self._open_case_of(conn, opened.household_id)
        if existing is not None:
            raise DomainConflict(f"该户已有未办结的案件 {existing.case_id}（{existing.stage.value}）",
                                 code="case_open", case_id=existing.case_id, current_stage=existing.stage.value)
        return await self._commit(conn, Case(), [opened], actor, causation)

    async def before(self, conn: AsyncConnection, household_id: str, outcome: Outcome,
                     category: Any) -> Before:
        return self._before(await self._registry(conn, household_id), outcome, category)

    @staticmethod
    def _before(reg: Any, outcome: Outcome, category: Any) -> Before:
        """What the household was before the case, from its registry row (None: not registered)."""
        if reg is None:
            return domain.before_from_outcome(outcome, category)
        return domain.before_from_outcome(outcome, category, reg.lifted_year, HouseholdKind(reg.kind),
                                          MonitoringStatus(reg.status))

    async def on_proposal(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self.on_proposals(conn, [event])

    async def on_proposals(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        """OutcomeProposed, in order: open a case, update the open one before its appraisal, or record the change.
        A batch reads its households' open cases, last closed outcomes and registry rows in one query each and
        writes one read-model update and one append; a household proposed twice sees its first proposal's case."""
        proposals = [(e, p) for e in events if e.type == "OutcomeProposed"
                     for p in [self.store.decode(e)] if isinstance(p, OutcomeProposed)]
        if not proposals:
            return
        households = sorted({p.household_id for _, p in proposals})
        open_cases = await self._open_cases_of(conn, households)
        loaded = {c.case_id: c.version for c in open_cases.values()}
        closed = await self._last_closed_outcomes(conn, households)
        registry = await self._registries(conn, households)
        changed: dict[str, Case] = {}
        appended: list[NewEvent] = []
        metadata: list[Metadata] = []
        for event, proposal in proposals:
            case = open_cases.get(proposal.household_id)
            produced: Sequence[EventPayload]
            if case is not None:
                produced = domain.on_proposal(case, proposal)
            elif domain.opens_case(proposal, closed.get(proposal.household_id)):
                case = Case()
                before = self._before(registry.get(proposal.household_id), proposal.outcome, proposal.category)
                produced = [domain.open_case(str(uuid7()), proposal, before, proposal.lead_date or self.today())]
            else:
                continue
            if not produced:
                continue
            new = domain.fold([(e, event.actor) for e in produced], case)
            loaded.setdefault(new.case_id, 0)
            open_cases[new.household_id] = changed[new.case_id] = new
            appended += [NewEvent(case_stream(new.case_id), new.township_code, e) for e in produced]
            metadata += [self.metadata(event.actor, event)] * len(produced)
        if not changed:
            return
        await save_cases(conn, [changed[k] for k in sorted(changed)], self.states)  # row locks before append lock
        await self.store.append(conn, appended, {case_stream(k): loaded[k] for k in sorted(changed)}, metadata)

    async def _open_cases_of(self, conn: AsyncConnection, households: Sequence[str]) -> dict[str, Case]:
        rows = await conn.execute(text("SELECT household_id, CAST(state AS text) FROM review.cases "
                                       "WHERE household_id = ANY(:h) AND open"), {"h": households})
        return {r[0]: Case.model_validate_json(r[1], context=STORED) for r in rows}

    async def _last_closed_outcomes(self, conn: AsyncConnection, households: Sequence[str]) -> dict[str, Outcome]:
        rows = await conn.execute(text("SELECT DISTINCT ON (household_id) household_id, outcome FROM review.cases "
                                       "WHERE household_id = ANY(:h) AND NOT open "
                                       "ORDER BY household_id, updated_at DESC"), {"h": households})
        return {r[0]: Outcome(r[1]) for r in rows}

    async def _registries(self, conn: AsyncConnection, households: Sequence[str]) -> dict[str, Any]:
        rows = await conn.execute(text("SELECT household_id, kind, lifted_year, status FROM review.households "
                                       "WHERE household_id = ANY(:h)"), {"h": households})
        return {r.household_id: r for r in rows}

    async def on_household(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self.on_households(conn, [event])

    async def on_households(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        registered = [self.store.decode(e) for e in events if e.type == "HouseholdRegistered"]
        await save_households(conn, [e for e in registered if isinstance(e, HouseholdRegistered)])

    async def act(self, conn: AsyncConnection, case_id: str, actor: Actor, action: Action, acted_on: date,
                  decide: Callable[[Case], EventPayload | Sequence[EventPayload]],
                  override_reason: str | None = None) -> tuple[Case, list[EventPayload]]:
        """Check who may do `action` now, let `decide` produce the events, append them and update the read model."""
        done, refused = await self.act_many(conn, actor, action, [(case_id, acted_on, decide, override_reason)])
        if refused:
            raise refused[0][1]
        [(_, case, events)] = done
        return case, events


    async def act_many(self, conn: AsyncConnection, actor: Actor, action: Action,
                       items: Sequence[tuple[str, date, Callable[[Case], EventPayload | Sequence[EventPayload]],
                                             str | None]],
                       ) -> tuple[list[tuple[int, Case, list[EventPayload]]], list[tuple[int, Exception]]]:
        """`act` for many cases at once (case id, acted_on, decide, override reason): the cases are loaded and locked
        in one query, each is authorised and decided on its own, and everything decided is appended and projected
        together. A refused item has written nothing; a case named twice sees its first item's result."""
        cases = await lock_states(conn, "review.cases", "case_id", [i[0] for i in items], Case, self.states)

        def one(case_id: str, case: Case | None, item: tuple[date, Decide, str | None],
                ) -> tuple[Case, str, list[EventPayload]]:
            acted_on, decide, override = item
            if case is None:
                raise DomainNotFound(f"没有这个案件（{case_id}）")
            calendar = self.policy.calendar
            domain.authorise(case, actor, action, acted_on, today=self.today(), calendar=calendar,
                             override_reason=override)
            produced = decide(case)
            events = domain.mark_past_limit([produced] if isinstance(produced, EventPayload) else produced,
                                            domain.past_limit(case, action, acted_on, calendar.identification_max_days))
            return domain.fold([(e, actor) for e in events], case), case.township_code, events

        decided = decide_each(cases, [(case_id, (on, decide, override)) for case_id, on, decide, override in items],
                              case_stream, one)
        await save_cases(conn, decided.changed, self.states)
        await self.store.append(conn, decided.events, decided.expected(case_stream), self.metadata(actor))
        return decided.done, decided.failed
