"""Commands → domain → event store, in one transaction with the read models. The routes and the importer call
these; nothing here knows about HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.intake import (
    HouseholdRegistered,
    LeadOpened,
    MemberFacts,
    MonitoringStatusChanged,
    PersonalDataRead,
    Place,
    VisitCorrected,
    VisitRecorded,
    WarningMatched,
    WarningReceived,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CountyDecided
from povguard_contracts.vocab import (
    ChangeReason,
    Department,
    HouseholdKind,
    LeadSource,
    MonitoringCategory,
    MonitoringStatus,
    PriorityGroup,
    WarningKind,
)
from povguard_intake.domain import household as domain
from povguard_intake.domain.household import Household
from povguard_intake.domain.idcard import id_number_problems, normalise
from povguard_intake.projections import match_warning, save_households, save_warning
from povguard_platform.actor import Actor
from povguard_platform.batch import StateCache, decide_each, lock_states
from povguard_platform.clock import Clock
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.errors import DomainConflict, DomainNotFound, RuleViolations, Violation
from povguard_platform.eventstore import ConcurrencyError, EventStore
from povguard_platform.ids import uuid7
from povguard_platform.policy import Policy, amount_violations

UNKNOWN_TOWNSHIP = "000000000"  # subject token for a warning about a person not in the registry
CACHED_HOUSEHOLDS = 1000  # parsed states kept (about 20 KB each): a tablet's sync, then its corrections, a warning


def household_stream(household_id: str) -> StreamRef:
    return StreamRef("household", household_id)


@dataclass(frozen=True)
class RegisterCommand:
    code: str
    place: Place
    kind: HouseholdKind
    lifted_year: int | None
    category: MonitoringCategory | None
    status: MonitoringStatus
    flags: list[PriorityGroup]
    members: list[MemberFacts]


@dataclass(frozen=True)
class WarningCommand:
    department: Department
    kind: WarningKind
    id_number: str | None
    person_name: str | None
    household_id: str | None
    amount: Decimal | None
    occurred_on: date
    reported_on: date
    source_ref: str
    note: str = ""


@dataclass
class Registered:
    state: Household
    leads: int = 0


@dataclass
class Intake:
    """The registry's use cases over one service store."""

    store: EventStore
    policy: Policy
    clock: Clock = field(default_factory=Clock)  # the campaign's clock: today never comes from the machine
    # the households this process last wrote or read, by their row's xmin (`StateCache`): a household changed again
    # soon after (a visit, its correction, a department's warning) is not parsed again from its stored JSON. Few:
    # at 5,000 the process passed 300 MB at 70,000 households (and a full GC walks every cached object)
    states: StateCache[Household] = field(default_factory=lambda: StateCache(CACHED_HOUSEHOLDS))

    def today(self) -> date:
        return self.clock.today()

    def metadata(self, actor: Actor, causation: Any = None) -> Metadata:
        return Metadata(actor=actor, policy=self.policy.ref, causation_id=causation)

    async def load(self, conn: AsyncConnection, household_id: str, *, as_of: datetime | None = None,
                   to_version: int | None = None) -> Household:
        events = await self.store.load(conn, household_stream(household_id), as_of=as_of, to_version=to_version)
        state = domain.fold(self.store.decode_all(events))
        if not state.exists:
            raise DomainNotFound(f"没有这一户（{household_id}）")
        return state

    async def _commit(self, conn: AsyncConnection, state: Household, events: Sequence[EventPayload],
                      actor: Actor, expected: int | None = None, causation: RecordedEvent | None = None,
                      ) -> Household:
        if expected is not None and expected != state.version:
            raise ConcurrencyError(household_stream(state.household_id), expected, state.version)
        assert state.place is not None
        stream = household_stream(state.household_id)
        metadata = self.metadata(actor) if causation is None else Metadata(
            actor=actor, policy=self.policy.ref, causation_id=causation.id,
            correlation_id=causation.correlation_id or causation.id)
        new_state = domain.fold(events, state)
        # row locks first: the append lock must be the last lock taken
        await save_households(conn, [new_state], cache=self.states)
        await self.store.append(conn, [NewEvent(stream, state.place.township_code, e) for e in events],
                                {stream: state.version}, metadata)
        return new_state

    # --- households ---------------------------------------------------------------------------------------------

    async def _clashes(self, conn: AsyncConnection, id_numbers: Sequence[str],
                       except_household: str | None = None) -> dict[str, tuple[str, str, str]]:
        """ID numbers already active in another household: id → (household_id, code, village)."""
        rows = await conn.execute(text("""
            SELECT i.id_number, h.household_id, h.code, h.state->'place'->>'village'
            FROM intake.member_index i JOIN intake.households h USING (household_id)
            WHERE i.id_number = ANY(:ids) AND (CAST(:except AS text) IS NULL OR i.household_id <> :except)"""),
            {"ids": list(id_numbers), "except": except_household})
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    @staticmethod
    def _duplicate_error(clashes: dict[str, tuple[str, str, str]]) -> DomainConflict:
        parts = [f"{n[:6]}…{n[-4:]} 已是 {village} 户编号 {code}（{hid}）的成员"
                 for n, (hid, code, village) in clashes.items()]
        return DomainConflict("身份证号码重复：" + "；".join(parts),
                              duplicates=[{"id_number": n, "household_id": hid, "code": code}
                                          for n, (hid, code, _) in clashes.items()])

    async def register(self, conn: AsyncConnection, cmd: RegisterCommand, actor: Actor, source: str = "手工登记",
                       ) -> Registered:
        [result] = await self.register_many(conn, [cmd], actor, source)
        if isinstance(result, Exception):
            raise result
        return result

    async def register_many(self, conn: AsyncConnection, cmds: Sequence[RegisterCommand], actor: Actor,
                            source: str) -> list[Registered | RuleViolations | DomainConflict]:
        """Register households in one append; each result is the new household or why it was refused."""
        today = self.today()
        results: list[Registered | RuleViolations | DomainConflict] = []
        accepted: list[tuple[int, HouseholdRegistered]] = []
        codes = await conn.execute(text("SELECT code, household_id FROM intake.households WHERE code = ANY(:c)"),
                                   {"c": [c.code for c in cmds]})
        existing_codes: dict[str, str] = {r[0]: r[1] for r in codes}
        for i, cmd in enumerate(cmds):
            try:
                if cmd.code in existing_codes:
                    raise DomainConflict(f"户编号 {cmd.code} 已登记（{existing_codes[cmd.code]}）",
                                         household_id=existing_codes[cmd.code])
                event = domain.register(
                    code=cmd.code, place=cmd.place, kind=cmd.kind, lifted_year=cmd.lifted_year,
                    category=cmd.category, status=cmd.status, flags=cmd.flags, members=cmd.members, source=source,
                    policy=self.policy, today=today)
                accepted.append((i, event))
                results.append(Registered(Household()))
            except (RuleViolations, DomainConflict) as exc:
                results.append(exc)
        # the same ID number twice: against the registry, and across households of this batch
        ids = [m.facts.id_number for _, e in accepted for m in e.members]
        clashes = await self._clashes(conn, ids)
        seen: dict[str, tuple[str, str, str]] = {}
        keep: list[tuple[int, HouseholdRegistered]] = []
        for i, event in accepted:
            mine = {m.facts.id_number for m in event.members}
            found = {n: clashes.get(n) or seen[n] for n in mine if n in clashes or n in seen}
            if found:
                results[i] = self._duplicate_error(found)
                continue
            seen.update(dict.fromkeys(mine, (event.household_id, event.code, "本批")))
            keep.append((i, event))
        if not keep:
            return results
        leads = await self._leads_for_unmatched_warnings(conn, [e for _, e in keep], today)
        new_events: list[NewEvent] = []
        expected: dict[StreamRef, int] = {}
        states: list[Household] = []
        for i, event in keep:
            stream = household_stream(event.household_id)
            own = [event, *[lead for lead, _ in leads.get(event.household_id, [])]]
            new_events += [NewEvent(stream, event.place.township_code, e) for e in own]
            expected[stream] = 0
            state = domain.fold(own)
            states.append(state)
            results[i] = Registered(state, len(own) - 1)
        matches = [m for pairs in leads.values() for _, m in pairs]
        for match in matches:
            stream = StreamRef("warning", match.warning_id)
            new_events.append(NewEvent(stream, seen_township(states, match.household_id), match))
            expected[stream] = 1
        await self.store.append(conn, new_events, expected, self.metadata(actor))
        await save_households(conn, states)
        for match in matches:
            await match_warning(conn, match, seen_township(states, match.household_id))
        return results

    async def _leads_for_unmatched_warnings(
        self, conn: AsyncConnection, events: Sequence[HouseholdRegistered], today: date,
    ) -> dict[str, list[tuple[LeadOpened, WarningMatched]]]:
        """Warnings kept as unmatched become leads once the person is registered."""
        by_id = {m.facts.id_number: (e.household_id, m.member_id) for e in events for m in e.members}
        rows = await conn.execute(text("""SELECT warning_id, id_number, received_at FROM intake.warnings
                                          WHERE household_id IS NULL AND id_number = ANY(:ids)"""),
                                  {"ids": list(by_id)})
        out: dict[str, list[tuple[LeadOpened, WarningMatched]]] = {}
        for warning_id, id_number, received_at in rows:
            household_id, member_id = by_id[id_number]
            lead = LeadOpened(household_id=household_id, lead_id=str(uuid7()), source=LeadSource.DEPARTMENT,
                              lead_date=min(received_at.date(), today), warning_id=warning_id,
                              note="部门预警（登记后匹配）")
            match = WarningMatched(warning_id=warning_id, household_id=household_id, member_id=member_id)
            out.setdefault(household_id, []).append((lead, match))
        return out

    async def change(self, conn: AsyncConnection, household_id: str, actor: Actor, expected: int | None,
                     decide: Callable[[Household], EventPayload], check: Callable[[Household], None]) -> Household:
        """Load, authorise (`check`), decide one event, append at the loaded version, update the read model."""
        done, refused = await self.change_many(conn, actor, [(household_id, expected, decide)], check)
        if refused:
            raise refused[0][1]
        return done[0][1]

    async def change_many(self, conn: AsyncConnection, actor: Actor,
                          items: Sequence[tuple[str, int | None, Callable[[Household], EventPayload]]],
                          check: Callable[[Household], None],
                          ) -> tuple[list[tuple[int, Household, EventPayload]], list[tuple[int, Exception]]]:
        """`change` for many households (id, expected version, decide): loaded and locked in one query, each
        authorised and decided on its own, everything decided appended and projected together. A refused item has
        written nothing; a household named twice sees its first item's result."""
        households = await lock_states(conn, "intake.households", "household_id", [i[0] for i in items], Household,
                                       self.states)

        Item = tuple[int | None, Callable[[Household], EventPayload]]  # expected version, decide

        def one(household_id: str, state: Household | None, item: Item) -> tuple[Household, str, list[EventPayload]]:
            expected, decide = item
            if state is None or not state.exists:
                raise DomainNotFound(f"没有这一户（{household_id}）")
            check(state)
            if expected is not None and expected != state.version:
                raise ConcurrencyError(household_stream(household_id), expected, state.version)
            event = decide(state)
            assert state.place is not None
            return domain.fold([event], state), state.place.township_code, [event]

        decided = decide_each(households, [(h, (expected, decide)) for h, expected, decide in items],
                              household_stream, one)
        members_changed = not all(isinstance(e.payload, VisitRecorded | VisitCorrected) for e in decided.events)
        await save_households(conn, decided.changed, members_changed, self.states)
        await self.store.append(conn, decided.events, decided.expected(household_stream), self.metadata(actor))
        return [(index, state, events[0]) for index, state, events in decided.done], decided.failed

    async def add_member(self, conn: AsyncConnection, household_id: str, facts: MemberFacts, reason: ChangeReason,
                         effective: date, note: str, actor: Actor, expected: int | None,
                         check: Callable[[Household], None]) -> Household:
        state = await self.load(conn, household_id)
        check(state)
        event = domain.add_member(state, facts, reason, effective, note, self.policy, self.today())
        clashes = await self._clashes(conn, [event.member.facts.id_number], household_id)
        if clashes:
            raise self._duplicate_error(clashes)
        return await self._commit(conn, state, [event], actor, expected)

    async def update_member(self, conn: AsyncConnection, household_id: str, member_id: str, facts: MemberFacts,
                            reason: ChangeReason, effective: date, note: str, actor: Actor, expected: int | None,
                            check: Callable[[Household], None]) -> Household:
        state = await self.load(conn, household_id)
        check(state)
        event = domain.update_member(state, member_id, facts, reason, effective, note, self.policy, self.today())
        clashes = await self._clashes(conn, [event.facts.id_number], household_id)
        if clashes:
            raise self._duplicate_error(clashes)
        return await self._commit(conn, state, [event], actor, expected)

    async def record_access(self, conn: AsyncConnection, household_id: str, fields: list[str], purpose: str,
                            actor: Actor, township: str) -> None:
        """Every unmasked read of personal data is an event of its own (for the audit trail)."""
        stream = StreamRef("access", str(uuid7()))
        event = PersonalDataRead(household_id=household_id, fields=fields, purpose=purpose)
        await self.store.append(conn, [NewEvent(stream, township, event)], {stream: 0}, self.metadata(actor))

    async def record_decision(self, conn: AsyncConnection, event: RecordedEvent, decided: CountyDecided) -> None:
        """A county decision (县级审定) sets the household's kind and monitoring status; the decider is the actor."""
        state = await self.load(conn, decided.household_id)
        change = MonitoringStatusChanged(
            household_id=decided.household_id, kind=decided.kind, category=decided.category, status=decided.status,
            decided_on=decided.decided_on, case_id=decided.case_id)
        if (state.kind, state.category, state.status) == (change.kind, change.category, change.status):
            return  # 无变化: nothing to record
        await self._commit(conn, state, [change], event.actor, causation=event)

    # --- department warnings -----------------------------------------------------------------------------------

    async def receive_warning(self, conn: AsyncConnection, cmd: WarningCommand, actor: Actor) -> WarningReceived:
        violations: list[Violation] = []
        if cmd.id_number is None and cmd.household_id is None:
            violations.append(Violation("id_number", "须提供身份证号码或户编号之一", "required"))
        if cmd.id_number is not None:
            violations += [Violation("id_number", p, "id_number") for p in id_number_problems(cmd.id_number)]
        if cmd.occurred_on > cmd.reported_on:
            violations.append(Violation("occurred_on", "发生日期不能晚于报送日期", "date"))
        if cmd.reported_on > self.today():
            violations.append(Violation("reported_on", "报送日期不能晚于今天", "date"))
        violations += amount_violations(cmd.amount, self.policy.bounds.max_line_amount, "amount")
        if violations:
            raise RuleViolations(violations)
        dup = await conn.execute(
            text("SELECT warning_id FROM intake.warnings WHERE department = :d AND source_ref = :s"),
            {"d": cmd.department.value, "s": cmd.source_ref})
        if (existing := dup.scalar_one_or_none()) is not None:
            raise DomainConflict(f"该部门已报送过来源编号 {cmd.source_ref} 的预警（{existing}）", warning_id=existing)
        id_number = normalise(cmd.id_number) if cmd.id_number else None
        household_id, member_id = cmd.household_id, None
        if id_number:
            row = (await conn.execute(text("SELECT household_id, member_id FROM intake.member_index "
                                           "WHERE id_number = :n"), {"n": id_number})).first()
            if row is not None:
                household_id, member_id = row
        state = await self.load(conn, household_id) if household_id else None
        warning = WarningReceived(
            warning_id=str(uuid7()), department=cmd.department, kind=cmd.kind, id_number=id_number,
            person_name=cmd.person_name, household_id=household_id, member_id=member_id, amount=cmd.amount,
            occurred_on=cmd.occurred_on, source_ref=cmd.source_ref, note=cmd.note)
        township = state.place.township_code if state and state.place else UNKNOWN_TOWNSHIP
        stream = StreamRef("warning", warning.warning_id)
        [recorded] = await self.store.append(conn, [NewEvent(stream, township, warning)], {stream: 0},
                                             self.metadata(actor))
        await save_warning(conn, recorded, warning, township if state else None)
        if state is not None:
            lead = domain.open_lead(state, LeadSource.DEPARTMENT, cmd.reported_on,
                                    f"{cmd.department.value}预警：{cmd.kind.value}", self.today(),
                                    warning_id=warning.warning_id)
            await self._commit(conn, state, [lead], actor)
        return warning


def seen_township(states: Sequence[Household], household_id: str) -> str:
    for s in states:
        if s.household_id == household_id and s.place is not None:
            township: str = s.place.township_code
            return township
    raise KeyError(household_id)
