"""An import is a durable job: kill -9 of the intake service in the middle of one, or PostgreSQL stopping under it,
and it resumes where it stopped and ends `done`, every household registered exactly once; `povguard import` waits
through the restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from system_helpers import all_ready, status, wait_for

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings
from povguard_tools.synthetic import generate_to

HOUSEHOLDS = 1600  # four chunks of 500


def _headers() -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user="县局", role=Role.COUNTY_BUREAU, org="533123"),
                                                    Settings())}


def _import_status(intake: str, import_id: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{intake}/v1/imports/{import_id}", params={"limit": 0}, headers=_headers(), timeout=5)
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None


async def _registered(pg: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(pg)
    try:
        households = await conn.fetchval("SELECT count(*) FROM intake.households")
        events = await conn.fetchval("SELECT count(*) FROM intake.events WHERE type = 'HouseholdRegistered'")
        streams = await conn.fetchval("SELECT count(DISTINCT stream_id) FROM intake.events "
                                      "WHERE type = 'HouseholdRegistered'")
        return households, events, streams
    finally:
        await conn.close()


def _upload(intake: str, registry: Path) -> str:
    with registry.open("rb") as f:
        r = httpx.post(f"{intake}/v1/imports", files={"file": (registry.name, f)}, headers=_headers(), timeout=120)
    assert r.status_code == 202, r.text
    return str(r.json()["import_id"])


def _interrupt_after_first_chunk(intake: str, import_id: str, interrupt: Any) -> None:
    wait_for(lambda: ((s := _import_status(intake, import_id)) is not None and s["processed"] >= 500), 120,
             "the first chunk")
    interrupt()


def _finish(intake: str, import_id: str) -> dict[str, Any]:
    wait_for(lambda: (s := _import_status(intake, import_id)) is not None and s["status"] != "running", 180,
             "the import to finish")
    report = _import_status(intake, import_id)
    assert report is not None
    return report


@pytest.mark.timeout(600)
def test_an_import_resumes_after_its_service_is_killed_and_after_a_database_stop(
        system: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    data_dir, ports = system
    intake = f"http://127.0.0.1:{ports['intake']}"
    pg = f"postgresql://postgres@127.0.0.1:{ports['pg']}/povguard"
    county = generate_to(tmp_path / "county", HOUSEHOLDS, 11)
    registry = tmp_path / "county" / "registry.xlsx"

    # 1. kill -9 of intake after the first chunk committed
    import_id = _upload(intake, registry)
    _interrupt_after_first_chunk(intake, import_id, lambda: os.kill(status(data_dir)["intake"]["pid"],
                                                                    signal.SIGKILL))
    report = _finish(intake, import_id)
    assert report["status"] == "done", report
    assert report["households"] == len(county.households) == report["processed"]
    assert report["imported"] + report["refused"] == report["households"]
    households, events, streams = asyncio.run(_registered(pg))
    assert households == events == streams == report["imported"]  # each household registered exactly once

    # 2. the same file again changes nothing, across a PostgreSQL stop in the middle of it
    again = _upload(intake, registry)

    def stop_postgres() -> None:
        pid = status(data_dir)["postgres"]["pid"]
        os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown

    _interrupt_after_first_chunk(intake, again, stop_postgres)
    wait_for(lambda: all_ready(ports), 120, "every service ready again")
    report = _finish(intake, again)
    assert report["status"] == "done", report
    assert report["imported"] == 0 and report["unchanged"] == households
    assert asyncio.run(_registered(pg)) == (households, events, streams)


@pytest.mark.timeout(300)
def test_the_import_command_waits_with_a_deadline(system: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    _, ports = system
    generate_to(tmp_path / "county", 600, 12)
    env = {**os.environ, "POVGUARD_INTAKE_URL": f"http://127.0.0.1:{ports['intake']}"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "povguard_tools.cli", "import", str(tmp_path / "county" /
                          "registry.xlsx"), "--wait", "0.01"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "秒内没有结束" in out.stderr and "/v1/imports/" in out.stderr
    assert time.monotonic() - started < 60
