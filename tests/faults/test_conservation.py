"""Under load (an import, then the department warnings and the collectors' visit forms syncing), kill -9 every
consuming service in turn and nats-server; when the system is quiet again, nothing is lost and nothing applied twice:
every event of every store is in the stream once, in every following consumer's inbox once, and in the audit ledger
once; no dead letters."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from system_helpers import SERVICES, conservation, kill_and_recover, status

from povguard_platform.settings import Settings
from povguard_tools.demo.client import Api
from povguard_tools.demo.collection import stage_import, stage_visits, stage_warnings
from povguard_tools.demo.state import Campaign
from povguard_tools.synthetic import generate_to


@pytest.mark.timeout(600)
def test_kills_under_load_lose_nothing_and_apply_nothing_twice(system: tuple[Path, dict[str, int]],
                                                              tmp_path: Path) -> None:
    data_dir, ports = system
    county = generate_to(tmp_path / "county", 150, 7)
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in SERVICES}
    imported = threading.Event()
    failure: list[BaseException] = []

    async def load() -> None:
        async with Api(urls, Settings()) as api:
            c = Campaign(api, county, Console(quiet=True), tmp_path / "county" / "registry.xlsx")
            with_progress(c)
            await stage_import(c)
            imported.set()
            await stage_warnings(c)
            await stage_visits(c)

    def run() -> None:
        try:
            asyncio.run(load())
        except BaseException as exc:  # reported by the test below
            failure.append(exc)
            imported.set()

    worker = threading.Thread(target=run)
    worker.start()
    assert imported.wait(120)
    recovery = {name: kill_and_recover(data_dir, ports, name)
                for name in ("assessment", "review", "support", "audit", "nats")}
    worker.join(300)
    assert not failure, failure
    assert all(status(data_dir)[s]["state"] == "running" for s in SERVICES)

    nats_url = f"nats://127.0.0.1:{ports['nats']}"
    pg_url = f"postgresql://postgres@127.0.0.1:{ports['pg']}/povguard"
    deadline = time.monotonic() + 120
    while (diff := asyncio.run(conservation(pg_url, nats_url))) and time.monotonic() < deadline:
        time.sleep(1)
    assert diff == {}, diff
    assert max(recovery.values()) < 60, recovery


def with_progress(c: Campaign) -> None:
    """The stages report progress; a quiet console takes it."""
    from povguard_tools.demo.state import progress_bar

    c.progress = progress_bar(c.console)
    c.progress.start()
