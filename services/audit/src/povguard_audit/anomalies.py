"""Anomaly findings, checked as each entry is recorded; each becomes an `AnomalyFound` event with its evidence.
Thresholds are configuration (AuditSettings); dates of the campaign come from its policy file.

- backdating: recorded long after the event's own time;
- two_review_levels: one person acting at two levels (村 / 乡镇 / 县) of one case;
- edit_burst: one person recording very many entries in a short window;
- after_data_lock: a change dated (or, without a business date, recorded) after the campaign's data lock — an
  administrator's override (override_reason) is reported too, with the reason as evidence;
- paper_income (数字式增收): a risk elimination right after income was raised from below to just above the line;
- quick_elimination: 风险已消除 less than two months after the county identified the household;
- identification_limit (识别时间不能超过15天): a review action dated past its case's limit, the lead date (from the
  case's own CaseOpened / ProposalUpdated in the ledger) plus the policy's days; the reason given is evidence, and a
  missing reason (a store written around the review service) is said so.
The rules read the contract events' fields from the recorded event data (what the ledger stores), not through the
other services' code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints
from povguard_audit.entry import Entry, ts
from povguard_audit.events import AnomalyFound
from povguard_audit.metrics import ANOMALIES
from povguard_audit.settings import AuditSettings
from povguard_platform.envelope import RecordedEvent
from povguard_platform.policy import Policy, load_policy
from povguard_platform.settings import get_settings

# The levels of the review procedure (村 → 乡镇 → 县): one person must not act at two levels of one case.
REVIEW_LEVELS = {"AppraisalHeld": "village", "VillageDecided": "village", "TownshipReviewed": "township",
                 "CountyDecided": "county"}
# The services whose changes the data lock freezes.
LOCKED_SOURCES = frozenset({"intake", "assessment", "review", "support"})
# The event's own business date, where the contract has one (first found wins); else its recorded time counts.
BUSINESS_DATES = ("acted_on", "decided_on", "implemented_on")
RISK_ELIMINATED = "风险已消除"
RISK_NOT_ELIMINATED = "风险未消除"
PROPOSED_ELIMINATION = "拟风险消除"
NEWLY_IDENTIFIED = "新识别监测对象"
# review events that carry a case's lead date, and the one action the limit does not hold (a villager's objection)
LEAD_EVENTS = ["CaseOpened", "ProposalUpdated"]
NOT_LIMITED = frozenset({"ObjectionRaised", *LEAD_EVENTS})


@lru_cache(maxsize=16)
def _policy(campaign: str) -> Policy | None:
    try:
        return load_policy(campaign)
    except (OSError, ValueError):
        return None


def policy_of(event: RecordedEvent) -> tuple[str, Policy] | None:
    """The campaign the event was decided under (its recorded policy `id@version`), else the configured one."""
    campaign = event.policy.split("@", 1)[0] if event.policy else get_settings().campaign
    policy = _policy(campaign)
    if policy is None and campaign != get_settings().campaign:
        campaign = get_settings().campaign
        policy = _policy(campaign)
    return None if policy is None else (campaign, policy)


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(moment: datetime, settings: AuditSettings) -> date:
    return moment.astimezone(_zone(settings.timezone)).date()


def business_date(data: dict[str, Any]) -> tuple[str, date] | None:
    """(field, date) of the event's own business date: acted_on, decided_on, implemented_on or form.visit_date."""
    for name in BUSINESS_DATES:
        value = data.get(name)
        if isinstance(value, str):
            return name, date.fromisoformat(value)
    form = data.get("form")
    if isinstance(form, dict) and isinstance(form.get("visit_date"), str):
        return "form.visit_date", date.fromisoformat(form["visit_date"])
    return None


def _data_of(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body).get("data") or {}
    return data


async def _raise(conn: AsyncConnection, settings: AuditSettings, kind: str, key: str, entry: Entry,
                 evidence: dict[str, Any]) -> None:
    row = await conn.execute(
        text("INSERT INTO audit.findings (kind, key, household, actor_user, evidence) "
             "VALUES (:k, :key, :h, :a, CAST(:e AS jsonb)) ON CONFLICT (kind, key) DO NOTHING RETURNING id"),
        {"k": kind, "key": key, "h": entry.household, "a": entry.actor_user, "e": json.dumps(evidence)})
    if row.first() is None:
        return  # already found (one finding per kind and key)
    ANOMALIES.labels(kind).inc()
    await checkpoints.emit(conn, settings, AnomalyFound(kind=kind, household_id=entry.household,
                                                        actor=entry.actor_user, evidence=evidence))


async def check_entry(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent) -> None:
    await check_entries(conn, settings, [entry], [event])


async def check_entries(conn: AsyncConnection, settings: AuditSettings, entries: Sequence[Entry],
                        events: Sequence[RecordedEvent]) -> None:
    """A batch: each entry's own rules, then the burst rule once per actor (one query, not one per entry). The
    lead dates the identification limit needs are read once for the batch's households, not once per action."""
    leads = await Leads.load(conn, [entry.household for entry, event in zip(entries, events, strict=True)
                                    if entry.household is not None and _limited(event)])
    for entry, event in zip(entries, events, strict=True):
        await check_own(conn, settings, entry, event, leads)
    await check_bursts(conn, settings, entries)


def _limited(event: RecordedEvent) -> bool:
    """A review action the identification limit applies to."""
    return event.source == "review" and event.type not in NOT_LIMITED


@dataclass
class Leads:
    """The lead dates cases were given (CaseOpened, ProposalUpdated) per household, from the ledger, in entry
    order: (entry index, case id, lead date)."""

    by_household: dict[str, list[tuple[int, Any, Any]]]

    @classmethod
    async def load(cls, conn: AsyncConnection, households: Sequence[str]) -> Leads:
        by_household: dict[str, list[tuple[int, Any, Any]]] = {}
        if households:
            rows = await conn.execute(
                text("SELECT l.household, l.idx, p.body FROM audit.ledger l JOIN audit.payloads p USING (idx) "
                     "WHERE l.household = ANY(:h) AND l.action = ANY(:a) AND p.body IS NOT NULL ORDER BY l.idx"),
                {"h": sorted(set(households)), "a": LEAD_EVENTS})
            for household, idx, body in rows:
                data = _data_of(bytes(body))
                by_household.setdefault(household, []).append((int(idx), data.get("case_id"), data.get("lead_date")))
        return cls(by_household)

    def latest(self, household: str, case_id: str, before: int) -> str | None:
        """The latest lead date the case was given by an entry before `before`."""
        leads = [lead for idx, case, lead in self.by_household.get(household, ())
                 if idx < before and case == case_id and isinstance(lead, str)]
        return leads[-1] if leads else None


async def check_bursts(conn: AsyncConnection, settings: AuditSettings, entries: Sequence[Entry]) -> None:
    """edit_burst: at some entry, the actor's entries within the window before it (up to and including it) reach
    the threshold. The entries recorded before this batch are read once per actor."""
    window, cap = timedelta(minutes=settings.burst_minutes), settings.burst_edits
    by_actor: dict[str, list[Entry]] = {}
    for entry in entries:
        by_actor.setdefault(entry.actor_user, []).append(entry)
    for actor, mine in by_actor.items():
        mine.sort(key=lambda e: e.index)
        earlier = await conn.execute(
            text("SELECT recorded_at FROM audit.ledger WHERE actor_user = :u AND recorded_at >= :s AND idx < :first "
                 "ORDER BY recorded_at DESC LIMIT :lim"),  # a range of (actor_user, recorded_at), not the history
            {"u": actor, "s": mine[0].recorded_at - window, "first": mine[0].index, "lim": cap})
        times = sorted(r[0] for r in earlier)
        raised: set[int] = set()
        for entry in mine:
            times.append(entry.recorded_at)
            n = min(cap, sum(1 for t in times if t >= entry.recorded_at - window))
            bucket = int(entry.recorded_at.timestamp() // (settings.burst_minutes * 60))
            if n >= cap and bucket not in raised:
                raised.add(bucket)
                await _raise(conn, settings, "edit_burst", f"{actor}:{bucket}", entry, {
                    "actor": actor, "entries_in_window": int(n), "window_minutes": settings.burst_minutes,
                    "threshold": cap, "last_entry": entry.index})
            del times[:max(0, len(times) - cap)]  # only the latest `cap` can matter


async def check_own(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent,
                    leads: Leads) -> None:
    """The rules that look at one entry (and what came before it in its own stream); `leads` holds the lead dates
    of the entry's household (Leads.load)."""
    lag = entry.recorded_at - entry.event_time
    if lag > timedelta(hours=settings.backdating_hours):
        await _raise(conn, settings, "backdating", str(entry.event_id), entry, {
            "entry": entry.index, "event_time": ts(entry.event_time), "recorded_at": ts(entry.recorded_at),
            "hours": round(lag.total_seconds() / 3600, 1), "threshold_hours": settings.backdating_hours})

    level = REVIEW_LEVELS.get(entry.action)
    if level is not None:
        rows = await conn.execute(
            text("SELECT idx, action FROM audit.ledger WHERE stream_type = :t AND stream_id = :i "
                 "AND actor_user = :u AND action = ANY(:acts) AND idx < :n ORDER BY idx"),
            {"t": entry.stream_type, "i": entry.stream_id, "u": entry.actor_user, "n": entry.index,
             "acts": [a for a, lv in REVIEW_LEVELS.items() if lv != level]})
        earlier = rows.all()
        if earlier:
            await _raise(conn, settings, "two_review_levels", f"{entry.stream_id}:{entry.actor_user}", entry, {
                "case": entry.stream_id, "actor": entry.actor_user,
                "entries": [int(r[0]) for r in earlier] + [entry.index],
                "levels": sorted({REVIEW_LEVELS[r[1]] for r in earlier} | {level})})

    found = policy_of(event) if event.source in LOCKED_SOURCES else None
    if found is not None:
        campaign, policy = found
        await _after_lock(conn, settings, entry, event, campaign, policy)
        if _limited(event):
            await _identification_limit(conn, settings, entry, event, campaign, policy, leads)
        if event.type in ("CountyDecided", "OutcomeProposed") and entry.household is not None:
            await _paper_income(conn, settings, entry, event, policy)
            await _quick_elimination(conn, settings, entry, event)



async def _after_lock(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent,
                      campaign: str, policy: Policy) -> None:
    """Campaign work dated after the data lock (the lock holds to the end of its day). Only events with a business
    date count: monitoring goes on all year, so an undated change recorded after the campaign (a registration, a
    flag) is ordinary work, not a breach of the campaign's lock; a back-dated one is the backdating rule's."""
    lock = policy.calendar.data_lock
    dated = business_date(event.data)
    if dated is None:
        return
    basis, when = dated
    if when <= lock:
        return
    evidence: dict[str, Any] = {
        "entry": entry.index, "event_type": event.type, "event_id": str(event.id), "campaign": campaign,
        "data_lock": lock.isoformat(), "basis": basis, "date": when.isoformat(), "event_time": ts(event.time),
        "days_after_lock": (when - lock).days}
    reason = event.data.get("override_reason")
    if reason:
        evidence["override_reason"] = reason  # an administrator's override is still a change after the lock
    await _raise(conn, settings, "after_data_lock", str(event.id), entry, evidence)


async def _identification_limit(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent,
                                campaign: str, policy: Policy, leads: Leads) -> None:
    """A case's action dated after lead date + identification_max_days (the limit's last day is still within it)."""
    dated, case_id = business_date(event.data), event.data.get("case_id")
    if dated is None or entry.household is None or not case_id:
        return
    lead = leads.latest(entry.household, case_id, entry.index)  # the latest the case was given
    if lead is None:
        return
    basis, when = dated
    days = policy.calendar.identification_max_days
    limit = date.fromisoformat(lead) + timedelta(days=days)
    if when <= limit:
        return
    reason = event.data.get("override_reason")
    await _raise(conn, settings, "identification_limit", str(event.id), entry, {
        "entry": entry.index, "event_type": event.type, "event_id": str(event.id), "case": case_id,
        "campaign": campaign, "lead_date": lead, "max_days": days, "limit": limit.isoformat(), "basis": basis,
        "date": when.isoformat(), "days_past": (when - limit).days, "override_reason": reason,
        "reason_given": bool(reason and str(reason).strip())})


async def _history(conn: AsyncConnection, household: str, actions: list[str], before: int
                   ) -> list[tuple[int, datetime, str, dict[str, Any]]]:
    """The household's earlier entries of these types, oldest first, with their stored event data (entries whose
    payload was redacted are skipped)."""
    rows = await conn.execute(
        text("SELECT l.idx, l.event_time, l.action, p.body FROM audit.ledger l JOIN audit.payloads p USING (idx) "
             "WHERE l.household = :h AND l.action = ANY(:a) AND l.idx < :n AND p.body IS NOT NULL ORDER BY l.idx"),
        {"h": household, "a": actions, "n": before})
    return [(int(r[0]), r[1], r[2], _data_of(bytes(r[3]))) for r in rows]


def _decision_date(event: RecordedEvent, settings: AuditSettings) -> date:
    value = event.data.get("decided_on")
    return date.fromisoformat(value) if isinstance(value, str) else local_date(event.time, settings)


def _eliminates(event: RecordedEvent) -> bool:
    if event.type == "CountyDecided":
        return bool(event.data.get("status") == RISK_ELIMINATED)
    return bool(event.data.get("outcome") == PROPOSED_ELIMINATION)


async def _paper_income(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent,
                        policy: Policy) -> None:
    """数字式增收: the latest 人均纯收入 just above the line (≤ line x (1 + margin)), the one before it below the
    line, and the raise (the assessment, or the visit correction behind it) shortly before the elimination."""
    if not _eliminates(event) or entry.household is None:
        return
    history = await _history(conn, entry.household, ["IncomeAssessed", "VisitCorrected"], entry.index)
    incomes = [h for h in history if h[2] == "IncomeAssessed"]
    if len(incomes) < 2:
        return
    line = policy.income.monitoring_line
    (prev_idx, _, _, prev), (last_idx, last_time, _, last) = incomes[-2], incomes[-1]
    # amounts as Decimals (a JSON number as it prints), so that "just above the line" is exact
    before, after = Decimal(str(prev.get("per_capita", 0))), Decimal(str(last.get("per_capita", 0)))
    if not (before < line <= after <= line * (1 + Decimal(str(settings.paper_income_margin)))):
        return
    correction = next((h for h in reversed(history) if h[2] == "VisitCorrected"
                       and h[3].get("visit_id") == last.get("visit_id")), None)
    raised_at = correction[1] if correction is not None else last_time
    decided = _decision_date(event, settings)
    days = (decided - local_date(raised_at, settings)).days
    if not 0 <= days <= settings.paper_income_window_days:
        return
    evidence: dict[str, Any] = {
        "entry": entry.index, "decision": event.type, "decided_on": decided.isoformat(),
        "monitoring_line": float(line), "margin": settings.paper_income_margin,
        "window_days": settings.paper_income_window_days,
        "per_capita_before": float(before), "per_capita_after": float(after), "income_entries": [prev_idx, last_idx],
        "raised_at": ts(raised_at), "days_before_decision": days}
    if correction is not None:
        evidence["visit_correction"] = {"entry": correction[0], "visit_id": correction[3].get("visit_id"),
                                        "corrects": correction[3].get("corrects"),
                                        "reason": correction[3].get("reason")}
    await _raise(conn, settings, "paper_income", str(event.id), entry, evidence)


async def _quick_elimination(conn: AsyncConnection, settings: AuditSettings, entry: Entry,
                             event: RecordedEvent) -> None:
    """风险已消除 by the county less than `quick_elimination_days` after the county identified the household."""
    if event.type != "CountyDecided" or event.data.get("status") != RISK_ELIMINATED or entry.household is None:
        return
    decisions = await _history(conn, entry.household, ["CountyDecided"], entry.index)
    if not decisions:
        return
    idx, _, _, prev = decisions[-1]
    if prev.get("outcome") != NEWLY_IDENTIFIED or prev.get("status") != RISK_NOT_ELIMINATED:
        return
    identified, eliminated = date.fromisoformat(prev["decided_on"]), _decision_date(event, settings)
    days = (eliminated - identified).days
    if days >= settings.quick_elimination_days:
        return
    await _raise(conn, settings, "quick_elimination", str(event.id), entry, {
        "entry": entry.index, "identified_entry": idx, "identified_case": prev.get("case_id"),
        "eliminated_case": event.data.get("case_id"), "identified_on": identified.isoformat(),
        "eliminated_on": eliminated.isoformat(), "days": days, "threshold_days": settings.quick_elimination_days})
