"""Commands and events → domain → event store, in one transaction with the read models. The routes and the
consumer call these; nothing here knows about HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.assessment import IncomeAssessed, RiskAssessed
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CaseOpened, CountyDecided
from povguard_contracts.support import DeliveryMismatchFound, DeliveryMismatchResolved, MeasureImplemented
from povguard_contracts.vocab import Department, MeasureKind, MonitoringStatus
from povguard_platform.actor import SYSTEM_ACTOR, Actor
from povguard_platform.batch import decide_each
from povguard_platform.clock import Clock
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.errors import DomainNotFound
from povguard_platform.eventstore import ConcurrencyError, EventStore
from povguard_platform.ids import uuid7
from povguard_platform.policy import Policy
from povguard_rules.measures import GAPS, SupportPolicy
from povguard_support.domain import delivery
from povguard_support.domain import plan as domain
from povguard_support.domain.plan import HouseholdFacts, Plan
from povguard_support.projections import Place, load_facts, save_facts, save_facts_many, save_plans

FACT_EVENTS = frozenset({"CaseOpened", "RiskAssessed", "IncomeAssessed"})
UNKNOWN_TOWNSHIP = "000000000"  # subject token while a household's place is not known yet

Step = Callable[[Plan], EventPayload]
Known = dict[str, tuple[HouseholdFacts | None, Place | None]]


def plan_stream(household_id: str) -> StreamRef:
    return StreamRef("plan", household_id)


def mismatch_stream(mismatch_id: str) -> StreamRef:
    return StreamRef("mismatch", mismatch_id)


@dataclass(frozen=True)
class DeliveryRecord:
    """One line of a department's own record of what it delivered (发放/实施记录)."""

    record_ref: str
    household_id: str
    kind: MeasureKind
    delivered_on: date
    amount: Decimal | None = None


@dataclass
class Support:
    """The support service's use cases over its store."""

    store: EventStore
    policy: Policy
    catalogue: SupportPolicy
    clock: Clock = field(default_factory=Clock)  # the campaign's clock: today never comes from the machine

    def today(self) -> date:
        return self.clock.today()

    @property
    def max_amount(self) -> Decimal:
        """The policy's bound for one amount ([bounds] max_line_amount): measures' amounts, measured incomes."""
        return self.policy.bounds.max_line_amount

    @property
    def county(self) -> str:
        """The campaign's county: where a plan not yet placed in a village belongs."""
        return self.policy.policy.county_code

    def metadata(self, actor: Actor, cause: RecordedEvent | None = None) -> Metadata:
        if cause is None:
            return Metadata(actor=actor, policy=self.policy.ref)
        return Metadata(actor=actor, policy=self.policy.ref, causation_id=cause.id,
                        correlation_id=cause.correlation_id or cause.id)

    # --- loading and committing ----------------------------------------------------------------------------------

    async def load(self, conn: AsyncConnection, household_id: str) -> Plan:
        return self._plan(household_id, await self.store.load(conn, plan_stream(household_id)))

    def _plan(self, household_id: str, events: Sequence[RecordedEvent]) -> Plan:
        state = domain.fold(self.store.decode_all(events))
        state.household_id = household_id
        domain.note_implementers(state, [(e.data["measure_id"], e.actor) for e in events
                                         if e.type == "MeasureImplemented"])
        return state

    async def load_locked(self, conn: AsyncConnection, household_ids: Sequence[str]) -> dict[str, Plan]:
        """The plans of many households (those that have one), their rows locked first in one order (a batch takes
        all its row locks before the append lock), then every stream read in one query."""
        locked = [r[0] for r in await conn.execute(text(
            "SELECT household_id FROM support.plans WHERE household_id = ANY(:h) ORDER BY household_id FOR UPDATE"),
            {"h": sorted(set(household_ids))})]
        streams = await self.store.load_streams(conn, plan_stream("").type, locked)
        return {h: self._plan(h, streams[h]) for h in locked if h in streams}

    async def refresh(self, conn: AsyncConnection, household_id: str) -> None:
        """Recompute a plan's flags after the household's facts changed (no events: the facts are assessment's)."""
        await self.refresh_many(conn, [household_id])

    async def refresh_many(self, conn: AsyncConnection, household_ids: Sequence[str]) -> None:
        """`refresh` for many households: most assessed households have no plan, and the read model says so; the
        rows of those that do are locked first (a plan changed meanwhile is read as committed, not written back
        stale), their streams read in one query and their rows written in one statement."""
        if not household_ids:
            return
        plans = await self.load_locked(conn, household_ids)
        if not plans:
            return
        known = await load_facts(conn, list(plans))
        await save_plans(conn, [(plans[h], *known.get(h, (None, None))) for h in sorted(plans)], self.catalogue)

    # --- reactions to review and assessment ----------------------------------------------------------------------

    def _facts_of(self, event: RecordedEvent) -> tuple[str, dict[str, Any]]:
        """The household and the fact columns a case opening or an assessment sets."""
        payload = self.store.decode(event)
        if isinstance(payload, CaseOpened):
            return payload.household_id, {"village_code": payload.village_code,
                                          "township_code": payload.township_code}
        if isinstance(payload, RiskAssessed):
            return payload.household_id, {
                "village_code": payload.village_code, "township_code": payload.village_code[:9],
                "risks": sorted({r.type.value for r in payload.risks}), "gaps": sorted(set(payload.gaps)),
                "no_labour": payload.no_labour, "labour_capable_members": payload.labour_capable_members}
        assert isinstance(payload, IncomeAssessed)
        return payload.household_id, {"village_code": payload.village_code,
                                      "township_code": payload.village_code[:9], "per_capita": payload.per_capita}

    async def on_case_opened(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        household_id, values = self._facts_of(event)
        await save_facts(conn, household_id, **values)

    async def on_assessed(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        household_id, values = self._facts_of(event)
        await save_facts(conn, household_id, **values)
        await self.refresh(conn, household_id)

    async def consume_batch(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        """A fetched batch in order. Facts are merged per household and written together, and written before a
        county decision in the batch reads them; plans are refreshed once per household; a run of decisions is
        decided together (one load of the plans, one write, one append)."""
        pending: dict[str, dict[str, Any]] = {}
        assessed: set[str] = set()
        decisions: list[RecordedEvent] = []

        async def flush() -> None:
            await save_facts_many(conn, pending)
            await self.refresh_many(conn, sorted(assessed))
            pending.clear()
            assessed.clear()

        async def decide() -> None:
            await self.decide_many(conn, [self._decided(e) for e in decisions], decisions)
            decisions.clear()

        for event in events:
            if event.type == "CountyDecided":
                if pending:
                    await flush()
                decisions.append(event)
            elif event.type in FACT_EVENTS:
                if decisions:  # facts that come after a decision are not the ones it was made on
                    await decide()
                household_id, values = self._facts_of(event)
                pending.setdefault(household_id, {}).update(values)
                if event.type != "CaseOpened":
                    assessed.add(household_id)
        if decisions:
            await decide()
        await flush()

    def _decided(self, event: RecordedEvent) -> CountyDecided:
        decided = self.store.decode(event)
        assert isinstance(decided, CountyDecided)
        return decided

    async def on_county_decided(self, conn: AsyncConnection, event: RecordedEvent) -> None:
        await self.decide_many(conn, [self._decided(event)], [event])

    async def decide_many(self, conn: AsyncConnection, decisions: Sequence[CountyDecided],
                          causes: Sequence[RecordedEvent] | None = None) -> list[Plan]:
        """What county decisions mean for the plans: create (监测对象, 三年目标, 户户增收), close (风险已消除,
        整户清退), reopen (回退, 再标注) or add the newly proposed measures to an open plan. The plans' rows are
        locked and their streams read together; a household decided twice sees its first decision's result; the
        read models are written in one statement and the events appended at once, last, each event with its own
        cause (`causes`: the source event of each decision; none: the system decided). Returns the changed plans."""
        ids = [d.household_id for d in decisions]
        plans = await self.load_locked(conn, ids)
        known = await load_facts(conn, ids)
        loaded = {h: p.version for h, p in plans.items()}
        appended: list[NewEvent] = []
        metadata: list[Metadata] = []
        for index, decided in enumerate(decisions):
            household_id = decided.household_id
            plan = plans.get(household_id) or self._plan(household_id, [])
            facts, place = known.get(household_id, (None, None))
            produced = self._decide(plan, decided, facts, place)
            if not produced:
                continue
            plans[household_id] = new = domain.fold(produced, plan)
            loaded.setdefault(household_id, plan.version)
            township = new.township_code or (place.township_code if place else "") or UNKNOWN_TOWNSHIP
            appended += [NewEvent(plan_stream(household_id), township, e) for e in produced]
            cause = causes[index] if causes is not None else None
            metadata += [self.metadata(cause.actor if cause is not None else SYSTEM_ACTOR, cause)] * len(produced)
        changed = sorted({e.stream.id for e in appended})
        await save_plans(conn, [(plans[h], *known.get(h, (None, None))) for h in changed], self.catalogue)
        await self.store.append(conn, appended, {plan_stream(h): loaded[h] for h in changed}, metadata)
        return [plans[h] for h in changed]

    def _decide(self, plan: Plan, decided: CountyDecided, facts: HouseholdFacts | None,
                place: Place | None) -> list[EventPayload]:
        on = decided.decided_on
        if decided.status == MonitoringStatus.RISK_ELIMINATED:
            method = f"（{decided.elimination_method.value}）" if decided.elimination_method else ""
            closed = domain.close(plan, f"风险已消除{method}", on, decided.case_id)
            return [closed] if closed else []
        if decided.status == MonitoringStatus.REMOVED:
            closed = domain.close(plan, f"整户清退（{decided.outcome.value}）", on, decided.case_id)
            return [closed] if closed else []
        basis = domain.plan_basis(decided.status, decided.three_year_target, decided.income_increase_target)
        if not basis:
            return []
        events: list[EventPayload] = []
        if not plan.exists:
            cmd = domain.NewPlan(
                household_id=decided.household_id, village_code=place.village_code if place else "",
                township_code=place.township_code if place else "", basis=basis, decided_on=on,
                case_id=decided.case_id, outcome=decided.outcome.value, risks=decided.risks,
                lead_department=decided.lead_department, proposed_measures=decided.proposed_measures)
            ids = [str(uuid7()) for _ in range(len(decided.proposed_measures) + len(GAPS))]
            return domain.create(plan, cmd, facts, self.catalogue, self.policy.income.monitoring_line,
                                 self.policy.income.three_year_goal_below, ids)
        if not plan.open:
            reopened = domain.reopen(plan, decided.outcome.value, on, decided.case_id)
            if reopened:
                events.append(reopened)
        have = {m.kind for m in plan.measures.values()}
        state = domain.fold(events, plan)
        wanted = [(k, "县级审定") for k in dict.fromkeys(decided.proposed_measures) if k not in have]
        kinds = have | {k for k, _ in wanted}
        wanted += [(k, "缺什么补什么") for k in domain.gap_measures(kinds, facts, self.catalogue)]
        for kind, source in wanted:
            assigned = domain.assign(state, str(uuid7()), kind, self.catalogue, planned_start=on,
                                     max_amount=self.max_amount)
            events.append(assigned.model_copy(update={"source": source}))
        return events

    # --- commands of cadres and departments ----------------------------------------------------------------------

    async def change(self, conn: AsyncConnection, household_id: str, actor: Actor, expected: int | None,
                     decide: Step, check: Callable[[Plan], None]) -> Plan:
        """Load, authorise (`check`), decide one event, append at the loaded version, reconcile deliveries."""
        return await self.change_all(conn, household_id, actor, expected, [decide], check)

    async def change_all(self, conn: AsyncConnection, household_id: str, actor: Actor, expected: int | None,
                         decides: Sequence[Step], check: Callable[[Plan], None]) -> Plan:
        """Several steps on one plan (a cadre and measures entered together), each decided on the state the one
        before left, appended together."""
        done, failed, _ = await self.change_many(conn, actor, [(household_id, check, decides)], expected)
        if failed:
            raise failed[0][1]
        return done[0][1]

    async def change_many(self, conn: AsyncConnection, actor: Actor,
                          items: Sequence[tuple[str, Callable[[Plan], None], Sequence[Step]]],
                          expected: int | None = None,
                          ) -> tuple[list[tuple[int, Plan]], list[tuple[int, Exception]], Known]:
        """Commands of cadres and departments on many plans at once (household, authorisation `check`, steps):
        the plans' rows are locked and their streams read together, each item is authorised and decided on its
        own (pure; a household named twice sees its first item's result; an item without steps only reads), then
        the read models are written in one statement, the deliveries of the implemented measures reconciled, and
        everything appended at once, last. Returns the items done (index, plan after it), the refused ones (index,
        error: they wrote nothing) and the households' facts. `expected`: the If-Match version (single items)."""
        ids = [h for h, _, _ in items]
        plans = await self.load_locked(conn, ids)
        known = await load_facts(conn, ids)

        def one(household_id: str, plan: Plan | None, item: tuple[Callable[[Plan], None], Sequence[Step]],
                ) -> tuple[Plan, str, list[EventPayload]]:
            check, steps = item
            if plan is None:
                raise DomainNotFound(f"户 {household_id} 没有帮扶计划")
            check(plan)
            events: list[EventPayload] = []
            state = plan
            for step in steps:
                events.append(step(state))
                state = domain.fold(events[-1:], state)
            if expected is not None and expected != plan.version:
                raise ConcurrencyError(plan_stream(household_id), expected, plan.version)
            # who recorded an implementation (verification's separation), as a load from the stream would know it
            domain.note_implementers(state, [(e.measure_id, actor) for e in events
                                             if isinstance(e, MeasureImplemented)])
            place = known.get(household_id, (None, None))[1]
            return state, state.township_code or (place.township_code if place else "") or UNKNOWN_TOWNSHIP, events

        decided = decide_each(plans, [(h, (check, steps)) for h, check, steps in items], plan_stream, one)
        written = [k for k in sorted(decided.changed_keys) if decided.states[k].version != decided.loaded[k]]
        await save_plans(conn, [(decided.states[k], *known.get(k, (None, None))) for k in written], self.catalogue)
        appended = list(decided.events)
        versions = {plan_stream(k): decided.loaded[k] for k in written}
        implemented: dict[Department, set[str]] = {}
        for _, plan, events in decided.done:
            for e in events:
                if isinstance(e, MeasureImplemented):
                    implemented.setdefault(e.department, set()).add(plan.household_id)
        for department in sorted(implemented):
            mismatches, at, _, _ = await self._reconcile(conn, department, sorted(implemented[department]))
            appended += mismatches
            versions |= at
        await self.store.append(conn, appended, versions, self.metadata(actor))  # last: the append lock to commit
        return [(index, plan) for index, plan, _ in decided.done], decided.failed, known

    # --- delivery records and mismatches -------------------------------------------------------------------------

    async def receive_records(self, conn: AsyncConnection, department: Department,
                              records: Sequence[DeliveryRecord], actor: Actor) -> dict[str, int]:
        """Store a department's records (a resent record_ref replaces the earlier line), then compare them with
        every plan measure of that department."""
        await conn.execute(text("""
            INSERT INTO support.delivery_records (department, record_ref, household_id, kind, delivered_on, amount,
                                                  received_by)
            VALUES (:d, :ref, :hh, :kind, :on, :amount, :by)
            ON CONFLICT (department, record_ref) DO UPDATE SET household_id = EXCLUDED.household_id,
                kind = EXCLUDED.kind, delivered_on = EXCLUDED.delivered_on, amount = EXCLUDED.amount,
                received_at = now(), received_by = EXCLUDED.received_by"""),
            [{"d": department.value, "ref": r.record_ref, "hh": r.household_id, "kind": r.kind.value,
              "on": r.delivered_on, "amount": r.amount, "by": actor.user} for r in records])
        found, resolved = await self.reconcile(conn, department, None, actor)
        return {"records": len(records), "found": found, "resolved": resolved}

    async def reconcile(self, conn: AsyncConnection, department: Department, household_ids: Sequence[str] | None,
                        actor: Actor) -> tuple[int, int]:
        """Compare the department's records with the measures recorded as implemented (all households, or the
        given ones), and record each mismatch found or resolved."""
        events, expected, found, resolved = await self._reconcile(conn, department, household_ids)
        await self.store.append(conn, events, expected, self.metadata(actor))
        return found, resolved

    async def _reconcile(self, conn: AsyncConnection, department: Department, household_ids: Sequence[str] | None,
                         ) -> tuple[list[NewEvent], dict[StreamRef, int], int, int]:
        """The comparison of `reconcile`: the mismatch rows written, the events for the caller to append (with
        the versions they expect) and how many were found and resolved. Nothing to compare before a department
        reports."""
        d = department.value
        reported = await conn.execute(text("SELECT 1 FROM support.delivery_records WHERE department = :d LIMIT 1"),
                                      {"d": d})
        if reported.first() is None:
            return [], {}, 0, 0
        scope = {"d": d, "all": household_ids is None, "ids": list(household_ids or [])}
        where = "department = :d AND (:all OR household_id = ANY(:ids))"
        delivered = {(r[0], MeasureKind(r[1])) for r in await conn.execute(
            text(f"SELECT household_id, kind FROM support.delivery_records WHERE {where}"), scope)}
        recorded = {(r[0], MeasureKind(r[1])) for r in await conn.execute(
            text(f"SELECT household_id, kind FROM support.measures WHERE {where} AND status <> 'planned'"), scope)}
        open_rows = await conn.execute(
            text(f"SELECT mismatch_id, household_id, kind, mismatch FROM support.mismatches WHERE {where} AND open"),
            scope)
        open_ = {r[0]: delivery.Mismatch(r[0], r[1], department, MeasureKind(r[2]), r[3]) for r in open_rows}
        found, resolved = delivery.reconcile(department, delivered, recorded, open_)
        if not found and not resolved:
            return [], {}, 0, 0
        events, expected = await self._record_mismatches(conn, found, resolved)
        return events, expected, len(found), len(resolved)

    async def _record_mismatches(self, conn: AsyncConnection, found: Sequence[delivery.Mismatch],
                                 resolved: Sequence[delivery.Mismatch]) -> tuple[list[NewEvent], dict[StreamRef, int]]:
        """Write the mismatches' rows (in id order, row locks before the append lock) and return their events."""
        ids = [m.mismatch_id for m in (*found, *resolved)]
        versions = {r[0]: r[1] for r in await conn.execute(
            text("SELECT mismatch_id, version FROM support.mismatches WHERE mismatch_id = ANY(:ids)"), {"ids": ids})}
        households = sorted({m.household_id for m in (*found, *resolved)})
        places = await load_facts(conn, households)
        plan_places = {r[0]: Place(r[1], r[2]) for r in await conn.execute(
            text("SELECT household_id, village_code, township_code FROM support.plans WHERE household_id = ANY(:h)"),
            {"h": households}) if r[1]}
        new_events: list[NewEvent] = []
        expected: dict[StreamRef, int] = {}
        rows: list[dict[str, Any]] = []
        for m, is_found in [*((m, True) for m in found), *((m, False) for m in resolved)]:
            place = plan_places.get(m.household_id) or places.get(m.household_id, (None, None))[1]
            village, township = (place.village_code, place.township_code) if place else ("", UNKNOWN_TOWNSHIP)
            if is_found:
                detail = ("部门有发放记录，帮扶计划未登记实施" if m.mismatch == delivery.NOT_RECORDED
                          else "帮扶计划已登记实施，部门无发放记录")
                payload: EventPayload = DeliveryMismatchFound(
                    household_id=m.household_id, mismatch_id=m.mismatch_id, mismatch=m.mismatch,
                    department=m.department, kind=m.kind, village_code=village, detail=detail)
            else:
                detail = "已核对一致"
                payload = DeliveryMismatchResolved(
                    household_id=m.household_id, mismatch_id=m.mismatch_id, mismatch=m.mismatch,
                    department=m.department, kind=m.kind, resolution=detail)
            stream = mismatch_stream(m.mismatch_id)
            version = versions.get(m.mismatch_id, 0)
            new_events.append(NewEvent(stream, township or UNKNOWN_TOWNSHIP, payload))
            expected[stream] = version
            rows.append({"id": m.mismatch_id, "hh": m.household_id, "village": village,
                         "township": township or UNKNOWN_TOWNSHIP, "d": m.department.value, "kind": m.kind.value,
                         "mismatch": m.mismatch, "open": is_found, "detail": detail,
                         "resolution": None if is_found else detail, "v": version + 1})
        rows.sort(key=lambda r: r["id"])
        await conn.execute(text("""
            INSERT INTO support.mismatches (mismatch_id, household_id, village_code, township_code, department, kind,
                                            mismatch, open, detail, resolution, version)
            VALUES (:id, :hh, :village, :township, :d, :kind, :mismatch, :open, :detail, :resolution, :v)
            ON CONFLICT (mismatch_id) DO UPDATE SET open = EXCLUDED.open, detail = EXCLUDED.detail,
                resolution = EXCLUDED.resolution, version = EXCLUDED.version, village_code = EXCLUDED.village_code,
                township_code = EXCLUDED.township_code, updated_at = now()"""), rows)
        return new_events, expected
