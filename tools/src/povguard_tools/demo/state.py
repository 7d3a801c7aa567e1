"""The campaign's shared state and how its stages wait: who the county actors are, what earlier stages found, the
collectors' sync and settling until every relay and consumer is quiet."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from povguard_platform.actor import Role
from povguard_tools.demo.client import Api, DemoError, Who, gather_bounded, wait_until
from povguard_tools.synthetic import County, SyntheticHousehold

COUNTY_CODE = "533123"


@dataclass
class Campaign:
    api: Api
    county: County
    console: Console
    registry_file: Any  # the generated registry (Path)
    household_ids: dict[str, str] = field(default_factory=dict)  # 户编号 → household id
    visit_ids: dict[str, str] = field(default_factory=dict)  # household id → its latest visit (form 2-1)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # household id → the county's decision
    figures: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    waits: list[tuple[str, float, list[str]]] = field(default_factory=list)  # each settle: seconds, what held it

    def task(self, description: str, total: int | None) -> TaskID:
        assert self.progress is not None
        return self.progress.add_task(description, total=total)

    def advance(self, task: TaskID, by: int = 1) -> None:
        assert self.progress is not None
        self.progress.advance(task, by)

    def clerk(self, household: SyntheticHousehold) -> Who:
        return Who(Role.VILLAGE_CLERK, household.place.village_code, f"数据员-{household.place.village}")

    def collector(self, household: SyntheticHousehold) -> Who:
        return Who(Role.COLLECTOR, household.place.village_code, household.visit.collector)


COUNTY_BUREAU = Who(Role.COUNTY_BUREAU, COUNTY_CODE, "县乡村振兴局-数据组")
INSPECTOR = Who(Role.INSPECTOR, COUNTY_CODE, "县纪委监委-检查组")


async def sync_forms(c: Campaign, label: str, uploads: dict[Who, list[dict[str, Any]]]) -> None:
    """Each collector's tablet syncs its forms (or corrections) in uploads of SYNC_SIZE; the latest visit of each
    household is kept for later corrections."""
    task = c.task(label, sum(map(len, uploads.values())))

    async def sync(chunk: tuple[Who, list[dict[str, Any]]]) -> None:
        who, items = chunk
        answer = (await c.api.call("intake", "POST", "/v1/batches/visits", who, json={"items": items})).json()
        if answer["failed"]:
            raise DemoError(f"{who.user}: forms refused: {answer['failed'][:3]}")
        c.visit_ids.update({done["household_id"]: done["visit_id"] for done in answer["data"]})
        c.advance(task, len(items))

    await gather_bounded([(who, items[i:i + SYNC_SIZE]) for who, items in uploads.items()
                          for i in range(0, len(items), SYNC_SIZE)], sync)


SYNC_SIZE = 100  # forms per upload from a collector's tablet


# what is still to do (must be 0) and what moves while anything happens (must stand still)
_LAG = re.compile(r'^(povguard_(?:consumer_lag_messages|relay_lag_events)\{[^}]*\}) ([0-9.e+]+)$', re.M)
_MOVING = re.compile(r'^(povguard_(?:events_appended|relay_published|consumer_applied|consumer_duplicates)_total'
                     r'\{[^}]*\}) ([0-9.e+]+)$', re.M)


@dataclass(frozen=True)
class Snapshot:
    pending: dict[str, float]  # service/gauge → value, only those not zero
    moving: dict[str, float]  # service/counter → value


async def snapshot(c: Campaign) -> Snapshot:
    """Every service's relay and consumer gauges and its append/publish/apply counters (its Prometheus page, as an
    operator would look), read from all services at once."""
    async def one(name: str) -> tuple[str, str | None]:
        try:
            return name, (await c.api.clients[name].get("/metrics")).text
        except httpx.TransportError:  # a busy service dropped the connection: unknown is not quiet; read again
            return name, None

    read = await asyncio.gather(*(one(name) for name in c.api.clients))
    pages = [(name, text) for name, text in read if text is not None]
    pending = {f"{name}/{k}": float(v) for name, text in pages for k, v in _LAG.findall(text) if float(v)}
    pending |= {f"{name}/metrics unread": 1.0 for name, text in read if text is None}
    moving = {f"{name}/{k}": float(v) for name, text in pages for k, v in _MOVING.findall(text)}
    return Snapshot(pending, moving)


# seconds without anything pending or moving. The consumers' lag gauges follow each batch (a fetched batch counts
# until acknowledged) and the relays' rise on each append's NOTIFY, so this only has to outlast the hand-overs
# between them: a commit's NOTIFY reaching its relay, a publish reaching the consumer that waits for it.
QUIET_FOR = 0.4
SETTLE_POLL = 0.1  # seconds between readings (each reads six /metrics pages)


async def settle(c: Campaign, what: str, within: float = 900) -> None:
    """Wait until the system is quiet: nothing pending in every reading over QUIET_FOR seconds (the gauges move
    with each batch, not on a timer) and no event appended, published or applied between the first and the last of
    them (an event in flight between a consumer's commit and the relay moves a counter). The quiet spell starts at
    the first reading with nothing pending, so a wait ends QUIET_FOR after the lag is gone. Slow waits name what
    held them."""
    loop = asyncio.get_running_loop()
    started, held = loop.time(), Counter[str]()
    quiet_since: tuple[float, Snapshot] | None = None  # the first reading of the current quiet spell, when read

    async def quiet() -> bool:
        nonlocal quiet_since
        taken = loop.time()
        reading = await snapshot(c)
        held.update(reading.pending.keys())
        if reading.pending:
            quiet_since = None
            return False
        if quiet_since is None or reading.moving != quiet_since[1].moving:
            quiet_since = (loop.time(), reading)  # something moved: the spell starts again, once this was read
            return False
        return taken - quiet_since[0] >= QUIET_FOR

    await wait_until(quiet, within, what, interval=SETTLE_POLL)
    waited = loop.time() - started
    c.waits.append((what, round(waited, 1), [k for k, _ in held.most_common(3)]))


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)
