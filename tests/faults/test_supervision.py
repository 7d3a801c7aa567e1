"""`povguard up` rides through crashes: kill -9 of a service, of nats-server or of the postmaster is noticed, logged
and restarted by the supervisor while the rest keeps running, and `povguard status` shows each process with its
restarts. Real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from system_helpers import SERVICES, start_up, stop, wait_line

from povguard_tools.runtime.servers import free_port


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    data_dir = tmp_path_factory.mktemp("supervised")
    ports = {name: free_port() for name in [*SERVICES, "nats", "pg"]}
    proc = start_up(data_dir, ports)
    try:
        wait_line(proc)
        yield data_dir, ports
    finally:
        assert stop(proc) == 0


def status(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads((data_dir / "status.json").read_text())["processes"]}


def all_ready(ports: dict[str, int]) -> bool:
    try:
        return all(httpx.get(f"http://127.0.0.1:{ports[s]}/readyz", timeout=2).status_code == 200 for s in SERVICES)
    except httpx.HTTPError:
        return False


def wait_for(check: Any, within: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"{what} not within {within} s"
        time.sleep(0.2)
    return time.monotonic() - started


def kill_and_recover(data_dir: Path, ports: dict[str, int], name: str) -> float:
    """kill -9 `name`; wait until the supervisor has started it again and every service is ready. Returns the
    seconds back to ready."""
    before = status(data_dir)
    os.kill(before[name]["pid"], signal.SIGKILL)
    seconds = wait_for(lambda: (s := status(data_dir)[name])["restarts"] == before[name]["restarts"] + 1
                       and s["state"] == "running" and s["pid"] != before[name]["pid"], 60, f"{name} restarted")
    seconds += wait_for(lambda: all_ready(ports), 60, "every service ready again")
    after = status(data_dir)
    assert after[name]["last_exit"] == -signal.SIGKILL
    # nothing else was restarted: the others kept their processes
    assert {n: p["pid"] for n, p in after.items() if n != name} == \
        {n: p["pid"] for n, p in before.items() if n != name}
    return seconds


def test_a_killed_service_is_restarted_and_the_rest_keeps_running(system: tuple[Path, dict[str, int]]) -> None:
    data_dir, ports = system
    assert set(status(data_dir)) == {"nats", "postgres", *SERVICES}
    kill_and_recover(data_dir, ports, "review")
    log = (data_dir / "logs" / "supervisor.log").read_text()
    assert "review exited with -9; restart #1" in log and "review restarted" in log


def test_nats_and_postgres_are_restarted_too(system: tuple[Path, dict[str, int]]) -> None:
    data_dir, ports = system
    kill_and_recover(data_dir, ports, "nats")
    kill_and_recover(data_dir, ports, "postgres")


def test_povguard_status_shows_each_process_and_its_restarts(system: tuple[Path, dict[str, int]]) -> None:
    data_dir, _ = system
    out = subprocess.run([sys.executable, "-m", "povguard_tools.cli", "status", "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") > 5}
    assert {"nats", "postgres", *SERVICES} <= set(rows)
    assert all("running" in rows[n] and "yes" in rows[n] for n in SERVICES)
    restarts = {n: int(rows[n].split("│")[4].strip()) for n in rows}
    assert restarts["review"] >= 1 and restarts["intake"] == 0
