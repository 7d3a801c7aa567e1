"""The campaign's shared state and how its stages wait: who the county actors are, what earlier stages found, the
collectors' sync and settling until every relay and consumer is quiet."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

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
                          for i in range(0, len(items), SYNC_SIZE)], sync, limit=4)


SYNC_SIZE = 100  # forms per upload from a collector's tablet


_LAG = re.compile(r'^povguard_(?:consumer_lag_messages|relay_lag_events)\{[^}]*\} ([0-9.e+]+)$', re.M)


async def quiet(c: Campaign) -> bool:
    """Every relay has published everything and every consumer has nothing pending (their Prometheus gauges, as an
    operator would look)."""
    for client in c.api.clients.values():
        metrics = (await client.get("/metrics")).text
        if any(float(v) for v in _LAG.findall(metrics)):
            return False
    return True


async def settle(c: Campaign, what: str, within: float = 900) -> None:
    """Wait until the system is quiet three times in a row over about three seconds: an event travels relay →
    consumer → append → relay, and the consumers' gauges refresh every second."""
    async def steadily() -> bool:
        for _ in range(3):
            if not await quiet(c):
                return False
            await asyncio.sleep(1.1)
        return await quiet(c)

    await wait_until(steadily, within, what)


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)
