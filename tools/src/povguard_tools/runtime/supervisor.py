"""`povguard up`: real NATS and PostgreSQL (unless NATS_URL / DATABASE_URL point elsewhere), schemas and the
stream, then every service as its own process; ready when every /readyz says so; Ctrl-C stops all in order.

With the embedded PostgreSQL, `up` provisions every service's roles with its superuser (the server trusts local
connections: no passwords) and starts each service with its own runtime role's URL (DATABASE_URL) and its owner's
(MIGRATION_DATABASE_URL). With an external server the operator has provisioned it (`povguard db provision`) and the
environment's URLs are passed on as they are."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres, port_open

DEFAULT_NATS_PORT = 4222
DEFAULT_PG_PORT = 55432  # not 5432: leave a system PostgreSQL alone


@dataclass
class Stack:
    """Everything `up` started, so it can be stopped in reverse order."""

    data_dir: Path
    nats_url: str
    database_url: str | None  # the embedded server's superuser, DATABASE_URL as given, or None: per-service URLs
    urls: dict[str, str] = field(default_factory=dict)
    # each service's runtime and owner URLs when `up` provisioned the roles itself (embedded PostgreSQL)
    database_urls: dict[str, str] = field(default_factory=dict)
    migration_database_urls: dict[str, str] = field(default_factory=dict)
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self.logs:
            f.close()
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()


def start_servers(data_dir: Path, nats_port: int, pg_port: int, env: Mapping[str, str],
                  services: Iterable[str] = ()) -> Stack:
    """Start what the environment does not point at: NATS unless NATS_URL, PostgreSQL unless DATABASE_URL or a
    service's own <SVC>_DATABASE_URL is set."""
    data_dir.mkdir(parents=True, exist_ok=True)
    nats_url, database_url = env.get("NATS_URL"), env.get("DATABASE_URL")
    external_db = bool(database_url) or any(env.get(f"{name.upper()}_DATABASE_URL") for name in services)
    nats = postgres = None
    if not nats_url:
        if port_open(nats_port):
            raise RuntimeError(f"port {nats_port} is taken: is another `povguard up` running? (--nats-port)")
        nats = EmbeddedNats(data_dir / "nats", nats_port)
        nats_url = nats.start()
    if not external_db:
        if port_open(pg_port):
            raise RuntimeError(f"port {pg_port} is taken: is another `povguard up` running? (--pg-port)")
        postgres = EmbeddedPostgres(data_dir / "postgres", pg_port)
        try:
            database_url = postgres.start()
        except Exception:
            if nats:
                nats.stop()
            raise
    return Stack(data_dir, nats_url, database_url, nats=nats, postgres=postgres)


async def prepare(stack: Stack, services: list[str]) -> None:
    """Provision the embedded server's roles, migrate every service's schema (as its owner) and declare the events
    stream before the services start."""
    from povguard_platform.bus import connect, ensure_stream
    from povguard_platform.migrations import migrate
    from povguard_platform.roles import login_urls, provision
    from povguard_platform.serve import service_definitions
    from povguard_platform.settings import Settings

    if stack.postgres is not None and stack.database_url:
        await provision(stack.database_url, services)
        stack.database_urls, stack.migration_database_urls = login_urls(stack.database_url, services)
    settings = Settings(nats_url=stack.nats_url, database_urls=stack.database_urls,
                        migration_database_urls=stack.migration_database_urls)
    if stack.database_url:  # else each service's <SVC>_DATABASE_URL from the environment
        settings = settings.model_copy(update={"database_url": stack.database_url})
    definitions = service_definitions()
    for name in services:
        await migrate(settings.migration_url_for(name), definitions[name].migrations_dir, name)
    nc = await connect(stack.nats_url, "povguard-up")
    await ensure_stream(nc.jetstream(), settings.stream_name, settings.duplicate_window_seconds)
    await nc.drain()


def start_services(stack: Stack, ports: Mapping[str, int], env: Mapping[str, str]) -> None:
    logs = stack.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    for name, port in ports.items():
        child_env = {**env, "NATS_URL": stack.nats_url}
        if url := stack.database_urls.get(name, stack.database_url):
            child_env["DATABASE_URL"] = url
        if name in stack.migration_database_urls:
            child_env["MIGRATION_DATABASE_URL"] = stack.migration_database_urls[name]
        log = (logs / f"{name}.log").open("ab")
        stack.logs.append(log)
        stack.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "povguard_platform.serve", name, "--port", str(port)],
            env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        stack.urls[name] = f"http://127.0.0.1:{port}"


def wait_ready(stack: Stack, timeout: float = 90, on_ready: Callable[[str], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(stack.urls)
    with httpx.Client(timeout=2) as client:
        while pending:
            for name, url in list(pending.items()):
                proc = stack.processes[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"service {name} exited with {proc.returncode}; see "
                                       f"{stack.data_dir / 'logs' / (name + '.log')}")
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        del pending[name]
                        if on_ready:
                            on_ready(name)
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")
            if pending:
                time.sleep(0.2)


def up(data_dir: Path, ports: Mapping[str, int], nats_port: int = DEFAULT_NATS_PORT,
       pg_port: int = DEFAULT_PG_PORT, on_ready: Callable[[str], None] | None = None) -> Stack:
    """Start the whole system and return once every service is ready."""
    env = dict(os.environ)
    stack = start_servers(data_dir, nats_port, pg_port, env, ports)
    try:
        asyncio.run(prepare(stack, list(ports)))
        start_services(stack, ports, env)
        wait_ready(stack, on_ready=on_ready)
    except BaseException:
        stack.stop()
        raise
    return stack


def wait_for_signal(stack: Stack) -> int:
    """Block until Ctrl-C / SIGTERM or a service dies; returns the exit code."""
    stopping = False

    def _handler(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    while not stopping:
        for name, proc in stack.processes.items():
            if proc.poll() is not None:
                print(f"service {name} exited with {proc.returncode}; stopping", file=sys.stderr)
                return 1
        time.sleep(0.3)
    return 0
