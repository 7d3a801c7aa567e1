"""`povguard up` rides through crashes: kill -9 of a service, of nats-server or of the postmaster is noticed, logged
and restarted by the supervisor while the rest keeps running, and `povguard status` shows each process with its
restarts. Real processes, real kills."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from system_helpers import SERVICES, kill_and_recover, status


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
