"""Weighted choices with cumulative weights computed once (random.choices recomputes them on every call)."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Table(Generic[T]):
    def __init__(self, rows: Sequence[tuple[T, float]]) -> None:
        if not rows or any(w < 0 for _, w in rows):
            raise ValueError("a table needs rows with non-negative weights")
        self.values = [v for v, _ in rows]
        self.cumulative = list(itertools.accumulate(float(w) for _, w in rows))
        self.total = self.cumulative[-1]
        if self.total <= 0:
            raise ValueError("a table needs a positive total weight")

    def draw(self, rng: random.Random) -> T:
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def weighted(values: Sequence[T], weights: Sequence[float]) -> Table[T]:
    return Table(list(zip(values, weights, strict=True)))
