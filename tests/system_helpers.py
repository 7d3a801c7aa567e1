"""Start and stop `povguard up` as a user does, for the cross-service tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SERVICES = ["intake", "assessment", "review", "support", "audit", "reporting"]


def start_up(data_dir: Path, ports: dict[str, int], extra: Sequence[str] = ()) -> subprocess.Popen[str]:
    """`extra`: more options of `up`, e.g. ("--nats-nodes", "3", "--replicas", "2")."""
    args = [sys.executable, "-m", "povguard_tools.cli", "up", "--data-dir", str(data_dir),
            "--nats-port", str(ports["nats"]), "--pg-port", str(ports["pg"]), *extra]
    args += [a for name in SERVICES for a in (f"--{name}-port", str(ports[name]))]
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "up.stderr").open("ab") as errors:  # why an `up` failed, for the failing test to show
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True, env=env,
                                start_new_session=True)


def wait_line(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("povguard is up"):
            return line
        if not line and proc.poll() is not None:
            raise AssertionError(f"povguard up exited with {proc.returncode}")
    raise AssertionError("povguard up did not become ready")


def stop(proc: subprocess.Popen[str]) -> int:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    return proc.wait(60)


async def conservation(database_url: str, nats_url: str) -> dict[str, object]:
    """Every event of every store is in the stream once, in the inbox of every consumer that handles its type
    once (or dead-lettered), and in the audit ledger once. Returns the differences (empty when all holds)."""
    import asyncpg
    import nats

    from povguard_platform.serve import service_definitions

    definitions = service_definitions()
    conn = await asyncpg.connect(database_url)
    nc = await nats.connect(nats_url)
    try:
        by_type = {s: {r[0]: int(r[1]) for r in await conn.fetch(f"SELECT type, count(*) FROM {s}.events "
                                                                 "GROUP BY type")} for s in definitions}
        events = {s: sum(counts.values()) for s, counts in by_type.items()}
        js = nc.jetstream()
        stream = {}
        for s in definitions:
            info = await js.stream_info("POVGUARD_EVENTS", subjects_filter=f"ev.{s}.>")
            stream[s] = sum((info.state.subjects or {}).values())
        problems: dict[str, object] = {}
        if stream != events:
            problems["stream"] = {"events": events, "messages": stream}
        for name, definition in definitions.items():
            for spec in definition.consumers:
                applied = int(await conn.fetchval(f"SELECT count(*) FROM {name}.inbox WHERE consumer = $1", spec.name))
                dead = int(await conn.fetchval(f"SELECT count(*) FROM {name}.dead_letters WHERE consumer = $1 "
                                               "AND resolved_at IS NULL", spec.name))
                # type-filtered delivery: a consumer gets the events of the types it handles (all, with a fallback)
                expected = sum(n for src in spec.sources for t, n in by_type[src].items() if spec.handles(t))
                if applied != expected or dead:
                    problems[spec.name] = {"expected": expected, "applied": applied, "dead_letters": dead}
        ledger = int(await conn.fetchval("SELECT count(*) FROM audit.ledger"))
        sources = sum(n for s, n in events.items() if s != "audit")
        if ledger != sources:
            problems["ledger"] = {"entries": ledger, "source_events": sources}
        return problems
    finally:
        await conn.close()
        await nc.close()


@contextmanager
def running_up(data_dir: Path, extra: Sequence[str] = ()) -> Iterator[dict[str, int]]:
    """`povguard up` on free ports for the duration; yields the ports (services, nats, pg). With `--nats-nodes N`
    in `extra` the nodes listen on ports["nats"] and the N - 1 ports above it."""
    from povguard_tools.runtime.servers import free_port

    ports = {name: free_port() for name in [*SERVICES, "nats", "pg"]}
    proc = start_up(data_dir, ports, extra)
    try:
        wait_line(proc)
        yield ports
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
