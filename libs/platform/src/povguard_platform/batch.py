"""Many commands in one request, the way the field hands work over: a village's appraisal meeting covers many
households, a collector's tablet syncs a day of forms, a department answers a day of comparisons. Each item is its
own command with the same rules as one at a time, run in its own savepoint of one transaction: an item that breaks
a rule is reported with its problem details (fields named `body.items.<i>.…`) and leaves nothing behind; the
others are kept. A bug (any other exception) fails the whole request and nothing is written.

Two ways to run the items: `apply_each` gives each its own savepoint (for commands that write as they go); or
`decide_each` decides every item first over states locked up front by `lock_states` (pure, nothing written yet),
and the service writes all that was decided in one read-model update and one append, far fewer round trips,
reporting the refused ones through `failure`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.numbers import STORED
from povguard_contracts.payload import EventPayload
from povguard_platform.envelope import NewEvent, StreamRef
from povguard_platform.problems import Problem, problem_of
from povguard_platform.schema import ident

T = TypeVar("T")
R = TypeVar("R")

MAX_ITEMS = 500


class ItemFailure(BaseModel):
    index: int = Field(description="position of the item in the request")
    id: str = Field(description="the item's case or household id")
    problem: Problem


class BatchResult(BaseModel, Generic[R]):
    recorded: int = Field(description="items applied")
    failed: list[ItemFailure] = Field(description="items refused, each with why; nothing of them was written")
    data: list[R] = Field(description="what each applied item produced, in request order")


async def apply_each(conn: AsyncConnection, items: Sequence[T], key: Callable[[T], str],
                     apply: Callable[[T], Awaitable[R]], field: str = "items") -> BatchResult[R]:
    """Apply every item in its own savepoint; collect the known failures as problem details."""
    done: list[R] = []
    failed: list[ItemFailure] = []
    for index, item in enumerate(items):
        try:
            async with conn.begin_nested():
                done.append(await apply(item))
        except Exception as exc:
            failed.append(failure(index, key(item), exc, field))
    return BatchResult[R](recorded=len(done), failed=failed, data=done)


def failure(index: int, key: str, exc: BaseException, field: str = "items") -> ItemFailure:
    """The item's failure as problem details; re-raises anything that is not a known domain or platform error."""
    problem = problem_of(exc, f"body.{field}.{index}")
    if problem is None:
        raise exc
    return ItemFailure(index=index, id=key, problem=problem)


def refused(exc: BaseException) -> bool:
    """A command refused by a rule (a known domain or platform error), as opposed to a bug."""
    return problem_of(exc) is not None


class Versioned(Protocol):
    """An aggregate's state with its stream version: all `decide_each` needs."""

    @property
    def version(self) -> int: ...


class Aggregate(Versioned, Protocol):
    """An aggregate's state as a read model keeps it: a pydantic model with its stream version."""

    @classmethod
    def model_validate_json(cls, json_data: str | bytes, *, context: Any = None) -> Aggregate: ...


A = TypeVar("A", bound=Aggregate)
V = TypeVar("V", bound=Versioned)
H = TypeVar("H")  # what a StateCache holds


class StateCache(Generic[H]):
    """Aggregate states this process read or wrote, by key and the `xmin` of the read-model row holding them (the
    transaction that wrote that row version; locking a row leaves it, freezing keeps it): a row with that xmin holds
    exactly that state, and a write that rolled back leaves an xmin no one will read. A hit spares reading and
    parsing the state; the states are shared, never to be changed in place. At most `size` states, the least
    recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[str, tuple[str, H]] = OrderedDict()

    def get(self, key: str, xmin: str) -> H | None:
        held = self._states.get(key)
        if held is None or held[0] != xmin:
            return None
        self._states.move_to_end(key)
        return held[1]

    def put(self, key: str, xmin: str, state: H) -> None:
        self._states[key] = (xmin, state)
        self._states.move_to_end(key)
        while len(self._states) > self.size:
            self._states.popitem(last=False)


async def lock_states(conn: AsyncConnection, table: str, key: str, ids: Iterable[str], model: type[A],
                      cache: StateCache[A] | None = None) -> dict[str, A]:
    """The states of `ids` from a read model holding each aggregate's state as JSON (`<key>`, `state`), locked FOR
    UPDATE in key order: every batch locks in one order, before the append lock, so two batches never deadlock.
    With a cache, the rows are locked first and only the states it does not hold are read and parsed."""
    table = ".".join(ident(part) for part in table.split("."))
    wanted = sorted(set(ids))
    if cache is None:
        rows = await conn.execute(text(f"SELECT {ident(key)}, CAST(state AS text) FROM {table} "
                                       f"WHERE {ident(key)} = ANY(:ids) ORDER BY {ident(key)} FOR UPDATE"),
                                  {"ids": wanted})
        # JSON text straight in, read as stored (numbers.STORED: old amounts are not refused by today's bounds)
        return {r[0]: model.model_validate_json(r[1], context=STORED) for r in rows}  # type: ignore[misc]
    locked = await conn.execute(text(f"SELECT {ident(key)}, CAST(xmin AS text) FROM {table} "
                                     f"WHERE {ident(key)} = ANY(:ids) ORDER BY {ident(key)} FOR UPDATE"),
                                {"ids": wanted})
    states: dict[str, A] = {}
    missing: dict[str, str] = {}
    for k, xmin in locked:
        held = cache.get(k, xmin)
        if held is None:
            missing[k] = xmin
        else:
            states[k] = held
    if missing:
        rows = await conn.execute(text(f"SELECT {ident(key)}, CAST(state AS text) FROM {table} "
                                       f"WHERE {ident(key)} = ANY(:ids)"), {"ids": sorted(missing)})
        for k, state in rows:
            states[k] = model.model_validate_json(state, context=STORED)  # type: ignore[assignment]
            cache.put(k, missing[k], states[k])
    return states


@dataclass
class Decisions(Generic[V]):
    """What `decide_each` decided: the done items (index, new state, events), the refused ones (index, error), the
    events to append, and the latest state and loaded version of every aggregate."""

    states: dict[str, V]
    loaded: dict[str, int]
    done: list[tuple[int, V, list[EventPayload]]] = field(default_factory=list)
    failed: list[tuple[int, Exception]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    changed_keys: set[str] = field(default_factory=set)

    @property
    def changed(self) -> list[V]:
        """The states to write to the read model, in key order."""
        return [self.states[k] for k in sorted(self.changed_keys)]

    def expected(self, stream: Callable[[str], StreamRef]) -> dict[StreamRef, int]:
        """The version each changed stream had when loaded: the append's optimistic-concurrency check."""
        return {stream(k): self.loaded[k] for k in sorted(self.changed_keys)}


def decide_each(states: dict[str, V], items: Sequence[tuple[str, T]], stream: Callable[[str], StreamRef],
                decide: Callable[[str, V | None, T], tuple[V, str, Sequence[EventPayload]]]) -> Decisions[V]:
    """Decide every (key, item) against the current state of its aggregate (None if unknown): `decide(key, state,
    item)` returns the
    new state, the township the events belong to and the events, or raises a refusal. A refused item changes
    nothing; a key named twice sees its first item's result. Anything that is not a refusal (a bug) propagates."""
    out = Decisions(states=dict(states), loaded={k: s.version for k, s in states.items()})
    for index, (key, item) in enumerate(items):
        try:
            new, township, events = decide(key, out.states.get(key), item)
        except Exception as exc:
            if not refused(exc):
                raise
            out.failed.append((index, exc))
            continue
        out.states[key] = new
        out.changed_keys.add(key)
        out.events += [NewEvent(stream(key), township, e) for e in events]
        out.done.append((index, new, list(events)))
    return out
