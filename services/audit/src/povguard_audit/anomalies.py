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
from bisect import bisect_left, insort
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


@dataclass(frozen=True)
class Finding:
    kind: str
    key: str  # one finding per kind and key
    entry: Entry
    evidence: dict[str, Any]


_INSERT_FINDINGS = text(
    """INSERT INTO audit.findings (kind, key, household, actor_user, evidence)
       SELECT u.k, u.key, u.h, u.a, CAST(u.e AS jsonb)
       FROM unnest(CAST(:k AS text[]), CAST(:key AS text[]), CAST(:h AS text[]), CAST(:a AS text[]),
                   CAST(:e AS text[])) WITH ORDINALITY AS u(k, key, h, a, e, n)
       ORDER BY u.n
       ON CONFLICT (kind, key) DO NOTHING RETURNING kind, key""")


async def _raise_all(conn: AsyncConnection, settings: AuditSettings, found: Sequence[Finding]) -> None:
    """Record the findings not found before (one insert) and emit an AnomalyFound event for each new one, in the
    order they were found (one append)."""
    first: dict[tuple[str, str], Finding] = {}
    for f in found:
        first.setdefault((f.kind, f.key), f)  # a key found twice in one batch: the first, as one at a time did
    if not first:
        return
    todo = list(first.values())
    rows = await conn.execute(_INSERT_FINDINGS, {
        "k": [f.kind for f in todo], "key": [f.key for f in todo], "h": [f.entry.household for f in todo],
        "a": [f.entry.actor_user for f in todo], "e": [json.dumps(f.evidence) for f in todo]})
    new = {(r[0], r[1]) for r in rows}  # the rest were already found (one finding per kind and key)
    fresh = [f for f in todo if (f.kind, f.key) in new]
    for f in fresh:
        ANOMALIES.labels(f.kind).inc()
    await checkpoints.emit_all(conn, settings, [
        AnomalyFound(kind=f.kind, household_id=f.entry.household, actor=f.entry.actor_user, evidence=f.evidence)
        for f in fresh])


async def check_entry(conn: AsyncConnection, settings: AuditSettings, entry: Entry, event: RecordedEvent) -> None:
    await check_entries(conn, settings, [entry], [event])


async def check_entries(conn: AsyncConnection, settings: AuditSettings, entries: Sequence[Entry],
                        events: Sequence[RecordedEvent]) -> None:
    """A batch: each entry's own rules, then the burst rule once per actor. What the rules read from the ledger is
    read once for the batch (lead dates, earlier review levels, household histories, actors' recent entries), and
    the findings are recorded and emitted together."""
    pairs = list(zip(entries, events, strict=True))
    leads = await Leads.load(conn, [entry.household for entry, event in pairs
                                    if entry.household is not None and _limited(event)])
    levels = await Levels.load(conn, [entry for entry, _ in pairs if entry.action in REVIEW_LEVELS])
    history = await History.load(conn, [entry.household for entry, event in pairs
                                        if entry.household is not None and _decides(event) and _eliminates(event)])
    found: list[Finding] = []
    for entry, event in pairs:
        check_own(settings, entry, event, leads, levels, history, found)
    await check_bursts(conn, settings, entries, found)
    await _raise_all(conn, settings, found)


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


@dataclass
class Levels:
    """The review-level actions (村 / 乡镇 / 县) in the ledger by case stream and actor, in entry order:
    (entry index, action)."""

    by_case_actor: dict[tuple[str, str, str], list[tuple[int, str]]]

    @classmethod
    async def load(cls, conn: AsyncConnection, entries: Sequence[Entry]) -> Levels:
        """Of the cases and actors of these entries, up to the last of them (the batch's own included)."""
        by: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        wanted = sorted({(e.stream_type, e.stream_id, e.actor_user) for e in entries})
        if wanted:
            rows = await conn.execute(_LEVELS, {
                "t": [w[0] for w in wanted], "i": [w[1] for w in wanted], "u": [w[2] for w in wanted],
                "acts": list(REVIEW_LEVELS), "n": max(e.index for e in entries)})
            for t, i, u, idx, action in rows:
                by.setdefault((t, i, u), []).append((int(idx), action))
        return cls(by)

    def other_levels(self, entry: Entry, level: str) -> list[tuple[int, str]]:
        """The actor's earlier actions on the entry's case at another level than `level`."""
        return [(idx, action) for idx, action in self.by_case_actor.get(
            (entry.stream_type, entry.stream_id, entry.actor_user), ()) if idx < entry.index
            and REVIEW_LEVELS[action] != level]


_LEVELS = text(
    """SELECT l.stream_type, l.stream_id, l.actor_user, l.idx, l.action FROM audit.ledger l
       JOIN unnest(CAST(:t AS text[]), CAST(:i AS text[]), CAST(:u AS text[])) AS w(t, i, u)
         ON l.stream_id = w.i AND l.stream_type = w.t AND l.actor_user = w.u
       WHERE l.action = ANY(CAST(:acts AS text[])) AND l.idx < :n ORDER BY l.idx""")
HISTORY_ACTIONS = ["IncomeAssessed", "VisitCorrected", "CountyDecided"]


@dataclass
class History:
    """The households' entries the elimination rules read (incomes, visit corrections, county decisions), with their
    stored event data, in entry order (redacted payloads skipped)."""

    by_household: dict[str, list[tuple[int, datetime, str, dict[str, Any]]]]

    @classmethod
    async def load(cls, conn: AsyncConnection, households: Sequence[str]) -> History:
        by: dict[str, list[tuple[int, datetime, str, dict[str, Any]]]] = {}
        if households:
            rows = await conn.execute(_HISTORY, {"h": sorted(set(households)), "a": HISTORY_ACTIONS})
            for household, idx, time, action, body in rows:
                by.setdefault(household, []).append((int(idx), time, action, _data_of(bytes(body))))
        return cls(by)

    def before(self, household: str, actions: Sequence[str], index: int
               ) -> list[tuple[int, datetime, str, dict[str, Any]]]:
        """The household's entries of these types before entry `index`, oldest first."""
        return [h for h in self.by_household.get(household, ()) if h[0] < index and h[2] in actions]


_HISTORY = text(
    """SELECT l.household, l.idx, l.event_time, l.action, p.body FROM audit.ledger l JOIN audit.payloads p USING (idx)
       WHERE l.household = ANY(CAST(:h AS text[])) AND l.action = ANY(CAST(:a AS text[])) AND p.body IS NOT NULL
       ORDER BY l.idx""")


_EARLIER = text(
    """SELECT w.u, e.recorded_at
       FROM unnest(CAST(:u AS text[]), CAST(:s AS timestamptz[]), CAST(:f AS bigint[])) AS w(u, s, f)
       CROSS JOIN LATERAL (SELECT recorded_at FROM audit.ledger
                           WHERE actor_user = w.u AND recorded_at >= w.s AND idx < w.f
                           ORDER BY recorded_at DESC LIMIT :lim) e""")  # a range of (actor_user, recorded_at) each


async def check_bursts(conn: AsyncConnection, settings: AuditSettings, entries: Sequence[Entry],
                       found: list[Finding]) -> None:
    """edit_burst: at some entry, the actor's entries within the window before it (up to and including it) reach
    the threshold. The entries recorded before this batch are read for all actors in one query."""
    window, cap = timedelta(minutes=settings.burst_minutes), settings.burst_edits
    by_actor: dict[str, list[Entry]] = {}
    for entry in entries:
        by_actor.setdefault(entry.actor_user, []).append(entry)
    for mine in by_actor.values():
        mine.sort(key=lambda e: e.index)
    actors = list(by_actor)
    earlier: dict[str, list[datetime]] = {}
    if actors:
        rows = await conn.execute(_EARLIER, {
            "u": actors, "s": [by_actor[a][0].recorded_at - window for a in actors],
            "f": [by_actor[a][0].index for a in actors], "lim": cap})
        for actor, recorded_at in rows:
            earlier.setdefault(actor, []).append(recorded_at)
    for actor, mine in by_actor.items():
        times = sorted(earlier.get(actor, ()))
        raised: set[int] = set()
        for entry in mine:
            insort(times, entry.recorded_at)  # kept sorted: the count in the window is one bisection
            n = min(cap, len(times) - bisect_left(times, entry.recorded_at - window))
            bucket = int(entry.recorded_at.timestamp() // (settings.burst_minutes * 60))
            if n >= cap and bucket not in raised:
                raised.add(bucket)
                found.append(Finding("edit_burst", f"{actor}:{bucket}", entry, {
                    "actor": actor, "entries_in_window": int(n), "window_minutes": settings.burst_minutes,
                    "threshold": cap, "last_entry": entry.index}))
            del times[:max(0, len(times) - cap)]  # only the latest `cap` can matter


def _decides(event: RecordedEvent) -> bool:
    """An event the elimination rules (数字式增收, quick elimination) look at."""
    return event.source in LOCKED_SOURCES and event.type in ("CountyDecided", "OutcomeProposed")


def check_own(settings: AuditSettings, entry: Entry, event: RecordedEvent, leads: Leads, levels: Levels,
              history: History, found: list[Finding]) -> None:
    """The rules that look at one entry (and what came before it in its own stream), from what check_entries read
    for the batch; each finding is added to `found`."""
    lag = entry.recorded_at - entry.event_time
    if lag > timedelta(hours=settings.backdating_hours):
        found.append(Finding("backdating", str(entry.event_id), entry, {
            "entry": entry.index, "event_time": ts(entry.event_time), "recorded_at": ts(entry.recorded_at),
            "hours": round(lag.total_seconds() / 3600, 1), "threshold_hours": settings.backdating_hours}))

    level = REVIEW_LEVELS.get(entry.action)
    if level is not None:
        earlier = levels.other_levels(entry, level)
        if earlier:
            found.append(Finding("two_review_levels", f"{entry.stream_id}:{entry.actor_user}", entry, {
                "case": entry.stream_id, "actor": entry.actor_user,
                "entries": [idx for idx, _ in earlier] + [entry.index],
                "levels": sorted({REVIEW_LEVELS[action] for _, action in earlier} | {level})}))

    policy = policy_of(event) if event.source in LOCKED_SOURCES else None
    if policy is not None:
        campaign, rules = policy
        _after_lock(entry, event, campaign, rules, found)
        if _limited(event):
            _identification_limit(entry, event, campaign, rules, leads, found)
        if _decides(event) and entry.household is not None:
            _paper_income(settings, entry, event, rules, history, found)
            _quick_elimination(settings, entry, event, history, found)


def _after_lock(entry: Entry, event: RecordedEvent, campaign: str, policy: Policy, found: list[Finding]) -> None:
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
    found.append(Finding("after_data_lock", str(event.id), entry, evidence))


def _identification_limit(entry: Entry, event: RecordedEvent, campaign: str, policy: Policy, leads: Leads,
                          found: list[Finding]) -> None:
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
    found.append(Finding("identification_limit", str(event.id), entry, {
        "entry": entry.index, "event_type": event.type, "event_id": str(event.id), "case": case_id,
        "campaign": campaign, "lead_date": lead, "max_days": days, "limit": limit.isoformat(), "basis": basis,
        "date": when.isoformat(), "days_past": (when - limit).days, "override_reason": reason,
        "reason_given": bool(reason and str(reason).strip())}))


def _decision_date(event: RecordedEvent, settings: AuditSettings) -> date:
    value = event.data.get("decided_on")
    return date.fromisoformat(value) if isinstance(value, str) else local_date(event.time, settings)


def _eliminates(event: RecordedEvent) -> bool:
    if event.type == "CountyDecided":
        return bool(event.data.get("status") == RISK_ELIMINATED)
    return bool(event.data.get("outcome") == PROPOSED_ELIMINATION)


def _paper_income(settings: AuditSettings, entry: Entry, event: RecordedEvent, policy: Policy, history: History,
                  found: list[Finding]) -> None:
    """数字式增收: the latest 人均纯收入 just above the line (≤ line x (1 + margin)), the one before it below the
    line, and the raise (the assessment, or the visit correction behind it) shortly before the elimination."""
    if not _eliminates(event) or entry.household is None:
        return
    earlier = history.before(entry.household, ("IncomeAssessed", "VisitCorrected"), entry.index)
    incomes = [h for h in earlier if h[2] == "IncomeAssessed"]
    if len(incomes) < 2:
        return
    line = policy.income.monitoring_line
    (prev_idx, _, _, prev), (last_idx, last_time, _, last) = incomes[-2], incomes[-1]
    # amounts as Decimals (a JSON number as it prints), so that "just above the line" is exact
    before, after = Decimal(str(prev.get("per_capita", 0))), Decimal(str(last.get("per_capita", 0)))
    if not (before < line <= after <= line * (1 + Decimal(str(settings.paper_income_margin)))):
        return
    correction = next((h for h in reversed(earlier) if h[2] == "VisitCorrected"
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
    found.append(Finding("paper_income", str(event.id), entry, evidence))


def _quick_elimination(settings: AuditSettings, entry: Entry, event: RecordedEvent, history: History,
                       found: list[Finding]) -> None:
    """风险已消除 by the county less than `quick_elimination_days` after the county identified the household."""
    if event.type != "CountyDecided" or event.data.get("status") != RISK_ELIMINATED or entry.household is None:
        return
    decisions = history.before(entry.household, ("CountyDecided",), entry.index)
    if not decisions:
        return
    idx, _, _, prev = decisions[-1]
    if prev.get("outcome") != NEWLY_IDENTIFIED or prev.get("status") != RISK_NOT_ELIMINATED:
        return
    identified, eliminated = date.fromisoformat(prev["decided_on"]), _decision_date(event, settings)
    days = (eliminated - identified).days
    if days >= settings.quick_elimination_days:
        return
    found.append(Finding("quick_elimination", str(event.id), entry, {
        "entry": entry.index, "identified_entry": idx, "identified_case": prev.get("case_id"),
        "eliminated_case": event.data.get("case_id"), "identified_on": identified.isoformat(),
        "eliminated_on": eliminated.isoformat(), "days": days, "threshold_days": settings.quick_elimination_days}))
