"""Delivery checks: a department's own records of what it delivered against the measures recorded as implemented.
未录入 = delivered but not recorded as implemented in the plan; 未享受录入 = recorded as implemented but not in the
department's records. Pure: the caller gives both sides for one department and the open mismatches."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from povguard_contracts.vocab import Department, MeasureKind

NOT_RECORDED = "未录入"
NOT_RECEIVED = "未享受录入"
_NAMESPACE = uuid.UUID("6f1d2a52-5a43-4c55-9b7e-0d6c2f7c1a06")

Key = tuple[str, MeasureKind]  # (household_id, kind)


def mismatch_id(household_id: str, department: Department, kind: MeasureKind, mismatch: str) -> str:
    """Stable per (household, department, kind, mismatch): found again after resolution → same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{household_id}|{department.value}|{kind.value}|{mismatch}"))


@dataclass(frozen=True)
class Mismatch:
    mismatch_id: str
    household_id: str
    department: Department
    kind: MeasureKind
    mismatch: str


def reconcile(department: Department, delivered: Iterable[Key], recorded: Iterable[Key],
              open_mismatches: Mapping[str, Mismatch]) -> tuple[list[Mismatch], list[Mismatch]]:
    """(found, resolved) for one department over the households considered: what should be open now, against
    what is open."""
    delivered_set, recorded_set = set(delivered), set(recorded)
    should: dict[str, Mismatch] = {}
    for kind_of, keys in ((NOT_RECORDED, delivered_set - recorded_set), (NOT_RECEIVED, recorded_set - delivered_set)):
        for household_id, kind in keys:
            m = Mismatch(mismatch_id(household_id, department, kind, kind_of), household_id, department, kind,
                         kind_of)
            should[m.mismatch_id] = m
    found = sorted((m for i, m in should.items() if i not in open_mismatches), key=lambda m: m.mismatch_id)
    resolved = sorted((m for i, m in open_mismatches.items() if i not in should), key=lambda m: m.mismatch_id)
    return found, resolved
