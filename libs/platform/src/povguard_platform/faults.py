"""Fault injection for crash tests: POVGUARD_FAULT=<point>[:<nth>] makes the process die at that point, like a
kill -9 would (no cleanup, no flush), so tests can prove that a crash loses no event and applies none twice."""

from __future__ import annotations

import os
from collections import Counter

_hits: Counter[str] = Counter()


def crash_point(point: str) -> None:
    spec = os.environ.get("POVGUARD_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] += 1
    if _hits[point] >= int(nth or 1):
        os._exit(137)
