"""HTTP_WORKERS: `povguard-serve` as processes on one port, against real PostgreSQL and NATS. The first runs the
relay and consumers; the others serve HTTP only from the same listening socket, are started again when one dies,
and end with the first, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings
from povguard_tools.runtime.servers import free_port

BIN = Path(sys.executable).parent


def until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not {what} within {seconds} s"
        time.sleep(0.2)


def workers(first: psutil.Process) -> list[psutil.Process]:
    """The first process's living workers (one killed is a zombie until the first reaps it)."""
    found = []
    for child in first.children():
        try:
            if "--worker-of" in child.cmdline():
                found.append(child)
        except psutil.ZombieProcess:
            pass
    return found


@pytest.fixture
def intake(settings: Settings, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k not in ("NATS_URL", "PORT")}
    env = {**keep, "ENVIRONMENT": "test", "HOST": "127.0.0.1", "PORT": str(port), "NATS_URL": settings.nats_url,
           "HTTP_WORKERS": "3", "INTAKE_DATABASE_URL": settings.database_url_for("intake"),
           "INTAKE_MIGRATION_DATABASE_URL": settings.migration_url_for("intake")}
    log = tmp_path / "intake.log"
    first = subprocess.Popen([BIN / "povguard-serve", "intake"], env=env, stdout=subprocess.DEVNULL,
                             stderr=log.open("w"))
    try:
        yield first, f"http://127.0.0.1:{port}"
    finally:
        if first.poll() is None:
            first.terminate()
            first.wait(30)


def test_workers_share_the_port_serve_http_only_and_end_with_the_first(
        intake: tuple[subprocess.Popen[bytes], str], settings: Settings) -> None:
    first, url = intake
    process = psutil.Process(first.pid)
    headers = {"Authorization": "Bearer " + issue_token(Actor(user="t", role=Role.COUNTY_BUREAU, org="533123"),
                                                        settings)}

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200 and len(workers(process)) == 2
        except httpx.HTTPError:
            return False

    until(ready, "ready with two workers")
    started = workers(process)
    for worker in started:  # HTTP only: the relay and consumers run once, in the first process
        assert worker.environ()["RUN_BACKGROUND"] == "false"
    assert "RUN_BACKGROUND" not in process.environ()

    # the first process paused: the workers alone answer from the shared socket (once they have started)
    def served_by_workers() -> bool:
        try:
            return httpx.get(f"{url}/v1/households", params={"org": "533123"}, headers=headers,
                             timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    first.send_signal(signal.SIGSTOP)
    try:
        until(served_by_workers, "answered by the workers")
        for _ in range(10):
            assert served_by_workers()
    finally:
        first.send_signal(signal.SIGCONT)

    # a worker that dies is started again
    started[0].kill()
    until(lambda: len(workers(process)) == 2 and started[0].pid not in {w.pid for w in workers(process)},
          "a dead worker replaced", 30)

    # the first process killed outright: its workers see the pipe close and stop
    remaining = workers(process)
    first.kill()
    first.wait(10)
    _, alive = psutil.wait_procs(remaining, timeout=30)
    assert not alive, f"workers outlived the first process: {[p.pid for p in alive]}"
