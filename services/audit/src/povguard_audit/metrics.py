"""Prometheus metrics of the audit service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LEDGER_ENTRIES = Counter("povguard_audit_entries_total", "Ledger entries appended")
LEDGER_SIZE = Gauge("povguard_audit_tree_size", "Ledger size (entries) seen by this process")
CHECKPOINTS = Counter("povguard_audit_checkpoints_total", "Checkpoints signed")
INTEGRITY_FAILURES = Counter(
    "povguard_audit_integrity_failures_total",
    "Integrity failures: a re-check that found a mismatch, or a checkpoint refused for inconsistency", ["kind"])
RECHECK_OK = Gauge("povguard_audit_recheck_ok", "1 when the last full re-check matched everything signed, else 0")
ANOMALIES = Counter("povguard_audit_anomalies_total", "Anomaly findings raised", ["kind"])
