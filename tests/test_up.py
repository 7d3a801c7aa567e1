"""`povguard up` for real: NATS and PostgreSQL from wheels, schemas and stream, every service as its own process
(connected as its own database role), one ready line, Ctrl-C stops everything, and a second `up` on the same data
dir continues with the data."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import nats
from system_helpers import SERVICES, start_up, stop, wait_line

from povguard_tools.runtime.servers import free_port, port_open


async def stream_messages(url: str) -> int:
    """Messages intake published (the audit service publishes events of its own, such as signed checkpoints)."""
    nc = await nats.connect(url)
    info = await nc.jetstream().stream_info("POVGUARD_EVENTS", subjects_filter="ev.intake.>")
    await nc.close()
    return sum((info.state.subjects or {}).values())


def test_up_runs_everything_and_a_second_up_continues_with_the_data(tmp_path: Path) -> None:
    ports = {name: free_port() for name in [*SERVICES, "nats", "pg"]}
    pg = f"postgresql://postgres@127.0.0.1:{ports['pg']}/povguard"
    proc = start_up(tmp_path, ports)
    try:
        line = wait_line(proc)
        for name in SERVICES:
            url = f"http://127.0.0.1:{ports[name]}"
            assert url in line
            assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "service": name}
            assert httpx.get(f"{url}/readyz").status_code == 200
            assert "povguard_http_requests_total" in httpx.get(f"{url}/metrics").text
            assert httpx.get(f"{url}/openapi.json").json()["info"]["title"].startswith(f"povguard {name}")
            assert httpx.get(f"{url}/docs").status_code == 200
            events = httpx.get(f"{url}/asyncapi.json").json()
            assert events["asyncapi"] == "3.0.0" and events["channels"]

        async def write_event() -> None:  # an operator's row in intake's store: the relay must publish it
            conn = await asyncpg.connect(pg)
            await conn.execute(
                "INSERT INTO intake.events (id, stream_type, stream_id, version, type, township, actor, data) "
                "VALUES (gen_random_uuid(), 'household', 'h1', 1, 'Probe', '533123101', "
                "'{\"user\": \"t\", \"role\": \"admin\", \"org\": \"533123\"}', '{}'); NOTIFY intake_events")
            await conn.close()

        asyncio.run(write_event())

        async def logins() -> set[str]:  # who the services are connected as: each its own role, none a superuser
            conn = await asyncpg.connect(pg)
            rows = await conn.fetch("SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r "
                                    "ON r.rolname = a.usename WHERE a.datname = 'povguard' "
                                    "AND a.pid <> pg_backend_pid()")
            await conn.close()
            assert not any(r["rolsuper"] for r in rows), rows
            return {r["usename"] for r in rows}

        assert asyncio.run(logins()) == {f"povguard_{name}" for name in SERVICES}
        deadline = time.monotonic() + 20
        while asyncio.run(stream_messages(f"nats://127.0.0.1:{ports['nats']}")) < 1:
            assert time.monotonic() < deadline, "relay did not publish"
            time.sleep(0.2)
    finally:
        code = stop(proc)
    assert code == 0
    assert not any(port_open(p) for p in ports.values())  # every process gone

    proc = start_up(tmp_path, ports)
    try:
        wait_line(proc)

        async def check() -> tuple[int, int]:
            conn = await asyncpg.connect(pg)
            events = await conn.fetchval("SELECT count(*) FROM intake.events")
            await conn.close()
            return events, await stream_messages(f"nats://127.0.0.1:{ports['nats']}")

        time.sleep(1.5)  # give a (wrong) republish the chance to show
        assert asyncio.run(check()) == (1, 1)  # data kept; nothing published twice
    finally:
        assert stop(proc) == 0
