"""Prometheus metrics of the audit service. The ledger's size, the last checkpoint and the witnesses' last
cosignatures are read from the database at each scrape (`collect`), so every replica reports the same truth."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from sqlalchemy import text

from povguard_audit import ledger
from povguard_platform.service import ServiceRuntime

LEDGER_ENTRIES = Counter("povguard_audit_entries_total", "Ledger entries appended")
LEDGER_SIZE = Gauge("povguard_audit_tree_size", "Ledger size (entries)")
CHECKPOINTS = Counter("povguard_audit_checkpoints_total", "Checkpoints signed")
INTEGRITY_FAILURES = Counter(
    "povguard_audit_integrity_failures_total",
    "Integrity failures: a re-check that found a mismatch, or a checkpoint refused for inconsistency", ["kind"])
RECHECK_OK = Gauge("povguard_audit_recheck_ok", "1 when the last full re-check matched everything signed, else 0")
ANOMALIES = Counter("povguard_audit_anomalies_total", "Anomaly findings raised", ["kind"])
# For the alerts "no signed checkpoint" and "a witness silent" (deploy/prometheus/alerts.yml).
LAST_CHECKPOINT_TIME = Gauge("povguard_audit_last_checkpoint_timestamp_seconds",
                             "When the latest checkpoint was signed (Unix time; 0 before the first)")
LAST_CHECKPOINT_SIZE = Gauge("povguard_audit_last_checkpoint_tree_size", "Tree size the latest checkpoint covers")
WITNESS_LAST_COSIGNATURE = Gauge(
    "povguard_audit_witness_last_cosignature_timestamp_seconds",
    "When a registered witness's latest cosignature arrived (Unix time; its registration if none yet)", ["witness"])


async def collect(runtime: ServiceRuntime) -> None:
    async with runtime.engine.connect() as conn:
        LEDGER_SIZE.set(await ledger.size(conn))
        latest = (await conn.execute(text(
            "SELECT extract(epoch FROM signed_at), tree_size FROM audit.checkpoints "
            "ORDER BY tree_size DESC, id DESC LIMIT 1"))).first()
        LAST_CHECKPOINT_TIME.set(float(latest[0]) if latest else 0)
        LAST_CHECKPOINT_SIZE.set(int(latest[1]) if latest else 0)
        for name, at in (await conn.execute(text(
                "SELECT w.name, extract(epoch FROM coalesce(max(c.received_at), w.added_at)) FROM audit.witnesses w "
                "LEFT JOIN audit.cosignatures c ON c.witness = w.name GROUP BY w.name, w.added_at"))).all():
            WITNESS_LAST_COSIGNATURE.labels(name).set(float(at))
