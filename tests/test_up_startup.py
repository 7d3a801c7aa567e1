"""How `povguard up` starts: the service processes import while PostgreSQL starts, wait at a gate until their
roles and the stream exist, then each migrates its own schema, all at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import up

SERVICES = ["intake", "assessment", "review", "support", "audit", "reporting"]


def test_the_services_start_during_postgres_start_and_migrate_their_own_schemas(tmp_path: Path) -> None:
    stack = up(tmp_path, {name: free_port() for name in SERVICES}, nats_port=free_port(), pg_port=free_port())
    try:
        assert stack.postgres is not None and stack.postgres.proc is not None
        postmaster = psutil.Process(stack.postgres.proc.pid).create_time()
        for name, proc in stack.processes.items():
            assert psutil.Process(proc.pid).create_time() <= postmaster, f"{name} spawned after PostgreSQL"
            assert httpx.get(f"{stack.urls[name]}/readyz").status_code == 200
            log = (tmp_path / "logs" / f"{name}.log").read_text()
            assert "Running upgrade" in log, f"{name} did not migrate its own schema"
        assert {"postgres", "nats", "roles", "stream", "services", "total"} <= set(stack.timings)
    finally:
        stack.stop()


def test_a_gated_service_exits_when_up_gives_up_before_saying_go() -> None:
    gate, closed = os.pipe()
    os.close(closed)  # `up` failed (or died) before the database was ready: the gate closes unwritten
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENVIRONMENT": "development"}
    port = free_port()
    try:
        started = subprocess.run([sys.executable, "-m", "povguard_platform.serve", "intake", "--port", str(port),
                                  "--start-fd", str(gate)], env=env, pass_fds=(gate,), capture_output=True,
                                 text=True, timeout=120)
    finally:
        os.close(gate)
    assert started.returncode == 1, started.stderr
    assert "stopped before the database was ready" in started.stderr
