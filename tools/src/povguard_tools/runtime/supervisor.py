"""`povguard up`: real NATS and PostgreSQL (unless NATS_URL / DATABASE_URL point elsewhere), schemas and the
stream, then every service as its own process; ready when every /readyz says so; Ctrl-C stops all in order.

While it runs it supervises: a process that dies (a service, nats-server or the postmaster) is logged and started
again with exponential backoff, the others keep running; five crashes of one process within five minutes are
reported as a crash loop (and it is still retried, at the longest backoff). `<data-dir>/status.json` holds each
process, its pid, state and restarts; `povguard status` shows it.

With the embedded PostgreSQL, `up` provisions every service's roles with its superuser (the server trusts local
connections: no passwords) and starts each service with its own runtime role's URL (DATABASE_URL) and its owner's
(MIGRATION_DATABASE_URL). With an external server the operator has provisioned it (`povguard db provision`) and the
environment's URLs are passed on as they are."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres, port_open

DEFAULT_NATS_PORT = 4222
DEFAULT_PG_PORT = 55432  # not 5432: leave a system PostgreSQL alone


BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds before a restart: doubled per recent crash, capped
CRASH_WINDOW, CRASH_LOOP = 300.0, 5  # this many crashes within the window is a crash loop
STEADY = 60.0  # a process up this long has recovered: its backoff starts again from the first step


@dataclass
class Watched:
    """One supervised process: its crashes and when it is due to start again."""

    name: str
    restarts: int = 0
    state: str = "running"  # running | restarting | crash-loop
    last_exit: int | None = None
    started_at: float = field(default_factory=time.time)
    due: float = 0.0
    crashes: deque[float] = field(default_factory=deque)

    def crashed(self, code: int | None, now: float) -> str:
        """Record a crash and schedule the restart; returns what to report."""
        self.last_exit = code
        if now - self.started_at > STEADY:
            self.crashes.clear()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > CRASH_WINDOW:
            self.crashes.popleft()
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (len(self.crashes) - 1))
        self.due = now + delay
        looping = len(self.crashes) >= CRASH_LOOP
        self.state = "crash-loop" if looping else "restarting"
        loop = (f"; CRASH LOOP: {len(self.crashes)} crashes in {int(CRASH_WINDOW)} s, see its log"
                if looping else "")
        return f"{self.name} exited with {code}; restart #{self.restarts + 1} in {delay:.1f} s{loop}"


@dataclass
class Stack:
    """Everything `up` started, so it can be supervised and stopped in reverse order."""

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
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    watched: dict[str, Watched] = field(default_factory=dict)

    def spawn(self, name: str) -> None:
        """Start (or start again) one service's process, its output appended to its log."""
        log = (self.data_dir / "logs" / f"{name}.log").open("ab")
        self.logs.append(log)
        child_env = {**self.env, "NATS_URL": self.nats_url,
                     # where the others answer (the reporting service's 运行 page reads them)
                     **{f"{other.upper()}_URL": f"http://127.0.0.1:{port}" for other, port in self.ports.items()}}
        if url := self.database_urls.get(name, self.database_url):  # its own runtime role's URL
            child_env["DATABASE_URL"] = url
        if name in self.migration_database_urls:  # its schema owner's, for the migrations at start
            child_env["MIGRATION_DATABASE_URL"] = self.migration_database_urls[name]
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "povguard_platform.serve", name, "--port", str(self.ports[name])],
            env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.urls[name] = f"http://127.0.0.1:{self.ports[name]}"

    def proc(self, name: str) -> subprocess.Popen[bytes] | None:
        if name == "nats":
            return self.nats.proc if self.nats else None
        if name == "postgres":
            return self.postgres.proc if self.postgres else None
        return self.processes.get(name)

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
    await ensure_stream(nc.jetstream(), settings.stream_name, settings.duplicate_window_seconds,
                        settings.stream_replicas)
    await nc.drain()


def start_services(stack: Stack, ports: Mapping[str, int], env: Mapping[str, str]) -> None:
    (stack.data_dir / "logs").mkdir(exist_ok=True)
    stack.ports, stack.env = dict(ports), dict(env)
    for name in ports:
        stack.spawn(name)
    for name in [*(["nats"] if stack.nats else []), *(["postgres"] if stack.postgres else []), *ports]:
        stack.watched[name] = Watched(name)


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
    env.setdefault("AUDIT_DATA_DIR", str(data_dir / "audit"))  # the development signing key, beside the data
    stack = start_servers(data_dir, nats_port, pg_port, env, ports)
    try:
        asyncio.run(prepare(stack, list(ports)))
        start_services(stack, ports, env)
        wait_ready(stack, on_ready=on_ready)
        write_status(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _restart(stack: Stack, name: str) -> None:
    if name == "nats" and stack.nats:
        stack.nats.stop()  # closes the old log handle; the store on disk is kept
        stack.nats.start()
    elif name == "postgres" and stack.postgres:
        stack.postgres.stop()
        stack.postgres.start()
    else:
        stack.spawn(name)


def supervise_once(stack: Stack, report: Callable[[str], None]) -> bool:
    """One round: note what died, start what is due. Returns True when anything changed."""
    changed = False
    for name, w in stack.watched.items():
        proc, now = stack.proc(name), time.time()
        if w.state == "running" and proc is not None and proc.poll() is not None:
            report(w.crashed(proc.returncode, now))
            changed = True
        elif w.state != "running" and now >= w.due:
            w.restarts += 1
            try:
                _restart(stack, name)
            except Exception as exc:  # a failed start is one more crash, retried with a longer backoff
                report(w.crashed(None, time.time()) + f" (start failed: {exc})")
            else:
                w.state, w.started_at = "running", time.time()
                started = stack.proc(name)
                report(f"{name} restarted (pid {started.pid if started else '?'})")
            changed = True
    return changed


def write_status(stack: Stack) -> None:
    """`<data-dir>/status.json`: what `povguard status` shows (written atomically)."""
    status = {"updated": time.time(), "urls": stack.urls, "nats_url": stack.nats_url,
              "processes": [{"name": w.name, "pid": (p.pid if (p := stack.proc(w.name)) else None),
                             "state": w.state, "restarts": w.restarts, "last_exit": w.last_exit,
                             "since": w.started_at} for w in stack.watched.values()]}
    tmp = stack.data_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=1))
    tmp.replace(stack.data_dir / "status.json")


def wait_for_signal(stack: Stack, report: Callable[[str], None] | None = None) -> int:
    """Supervise until Ctrl-C / SIGTERM; returns the exit code."""
    stopping = False

    def _handler(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    log = (stack.data_dir / "logs" / "supervisor.log").open("a", encoding="utf-8")

    def note(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}"
        print(stamped, file=log, flush=True)
        (report or (lambda text: print(text, file=sys.stderr, flush=True)))(stamped)

    write_status(stack)
    last_write = time.monotonic()
    try:
        while not stopping:
            if supervise_once(stack, note) or time.monotonic() - last_write > 5:
                write_status(stack)
                last_write = time.monotonic()
            time.sleep(0.3)
    finally:
        log.close()
    return 0
