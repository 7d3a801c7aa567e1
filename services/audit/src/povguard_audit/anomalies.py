"""Anomaly findings, checked as each entry is recorded; each becomes an `AnomalyFound` event with its evidence.
Thresholds are configuration (AuditSettings). Rules that need the other services' event shapes (changes after the
data lock, 数字式增收, elimination within two months of identification) wait for those services."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints
from povguard_audit.entry import Entry, ts
from povguard_audit.events import AnomalyFound
from povguard_audit.metrics import ANOMALIES
from povguard_audit.settings import AuditSettings
from povguard_platform.envelope import RecordedEvent

# The levels of the review procedure (村 → 乡镇 → 县): one person must not act at two levels of one case.
REVIEW_LEVELS = {"AppraisalHeld": "village", "TownshipReviewed": "township", "CountyDecided": "county"}


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

    since = entry.recorded_at - timedelta(minutes=settings.burst_minutes)
    n = (await conn.execute(
        text("SELECT count(*) FROM (SELECT 1 FROM audit.ledger WHERE actor_user = :u AND recorded_at >= :s "
             "AND idx <= :n LIMIT :lim) x"),
        {"u": entry.actor_user, "s": since, "n": entry.index, "lim": settings.burst_edits})).scalar_one()
    if n >= settings.burst_edits:
        window = int(entry.recorded_at.timestamp() // (settings.burst_minutes * 60))
        await _raise(conn, settings, "edit_burst", f"{entry.actor_user}:{window}", entry, {
            "actor": entry.actor_user, "entries_in_window": int(n), "window_minutes": settings.burst_minutes,
            "threshold": settings.burst_edits, "last_entry": entry.index})
