"""`povguard up`: real NATS and PostgreSQL (unless NATS_URL / DATABASE_URL point elsewhere), schemas and the
stream, then every service as its own process; ready when every /readyz says so; Ctrl-C stops all in order.

While it runs it supervises: a process that dies (a service, nats-server or the postmaster) is logged and started
again with exponential backoff, the others keep running; five crashes of one process within five minutes are
reported as a crash loop (and it is still retried, at the longest backoff). `<data-dir>/status.json` holds each
process, its pid, state and restarts; `povguard status` shows it.

With the embedded PostgreSQL, `up` provisions every service's roles with its superuser (the server trusts local
connections: no passwords) and starts each service with its own runtime role's URL (DATABASE_URL) and its owner's
(MIGRATION_DATABASE_URL). With an external server the operator has provisioned it (`povguard db provision`) and the
environment's URLs are passed on as they are.

A local cluster (`--nats-nodes 3 --replicas 2`): three nats-server nodes form a JetStream cluster (the events stream
replicated on all three) and each service runs as two processes behind one port. `up` binds that port once and hands
the listening socket to every replica (as uvicorn's and gunicorn's workers share theirs): the replicas accept from one
queue, so when one dies the connections waiting in it go to the living one, and clients keep one URL per service.
Each replica also listens on a port of its own, for its readiness and `povguard status`. The relay keeps one leader
per service and the consumers one applier at a time (advisory locks, see `povguard_platform.relay`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from povguard_tools.runtime.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    EmbeddedStandby,
    nats_cluster,
    port_open,
)

DEFAULT_NATS_PORT = 4222
DEFAULT_PG_PORT = 55432  # not 5432: leave a system PostgreSQL alone


BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds before a restart: doubled per recent crash, capped
CRASH_WINDOW, CRASH_LOOP = 300.0, 5  # this many crashes within the window is a crash loop
STEADY = 60.0  # a process up this long has recovered: its backoff starts again from the first step
READY_POLL = 0.05  # seconds between /readyz rounds while starting: a refused connection costs next to nothing


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
    nats_nodes: list[EmbeddedNats] = field(default_factory=list)  # one, or a JetStream cluster's nodes
    postgres: EmbeddedPostgres | None = None
    standby: EmbeddedStandby | None = None  # `--read-replica`: lists, reports and exports read it
    database_read_urls: dict[str, str] = field(default_factory=dict)
    replicas: int = 1  # processes per service
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by process name: intake-1, ...
    logs: list[IO[bytes]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    watched: dict[str, Watched] = field(default_factory=dict)
    sockets: dict[str, socket.socket] = field(default_factory=dict)  # each service's shared listening socket
    replica_urls: dict[str, str] = field(default_factory=dict)  # each replica's own URL (replicas > 1)
    gates: dict[str, int] = field(default_factory=dict)  # a starting process's go pipe (write end), by name
    timings: dict[str, float] = field(default_factory=dict)  # seconds each step of `up` took

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[step] = round(time.monotonic() - started, 2)

    @property
    def nats(self) -> EmbeddedNats | None:
        return self.nats_nodes[0] if self.nats_nodes else None

    def node_names(self) -> dict[str, EmbeddedNats]:
        """Process name of each NATS node: `nats` alone, `nats-1` ... in a cluster."""
        if len(self.nats_nodes) == 1:
            return {"nats": self.nats_nodes[0]}
        return {f"nats-{i}": node for i, node in enumerate(self.nats_nodes, start=1)}

    def replica_names(self, service: str) -> list[str]:
        return [service] if self.replicas == 1 else [f"{service}-{i}" for i in range(1, self.replicas + 1)]

    def service_of(self, name: str) -> str:
        return name if self.replicas == 1 else name.rsplit("-", 1)[0]

    def spawn(self, name: str, gated: bool = False) -> None:
        """Start (or start again) one service process (a replica), its output appended to its log. A gated one
        imports and builds its app, then waits for `go` (the database and the stream may not be there yet)."""
        service = self.service_of(name)
        log = (self.data_dir / "logs" / f"{name}.log").open("ab")
        self.logs.append(log)
        child_env = {**self.env, "NATS_URL": self.nats_url,
                     # where the others answer (the reporting service's 运行 page reads them)
                     **{f"{other.upper()}_URL": f"http://127.0.0.1:{port}" for other, port in self.ports.items()}}
        if url := self.database_urls.get(service, self.database_url):  # its own runtime role's URL
            child_env["DATABASE_URL"] = url
        if service in self.migration_database_urls:  # its schema owner's, for the migrations at start
            child_env["MIGRATION_DATABASE_URL"] = self.migration_database_urls[service]
        if service in self.database_read_urls:  # its own role on the streaming replica
            child_env["DATABASE_READ_URL"] = self.database_read_urls[service]
        args = [sys.executable, "-m", "povguard_platform.serve", service]
        shared = self.sockets.get(service)
        if shared is None:
            args += ["--port", str(self.ports[service])]
        else:  # the service's port (shared with its other replicas), and one of its own, bound here on a port the
            # kernel picks: a port found free and bound later by the child could be taken meanwhile
            own = listen_shared(0)
            args += ["--fd", str(shared.fileno()), "--own-fd", str(own.fileno())]
            self.replica_urls[name] = f"http://127.0.0.1:{own.getsockname()[1]}"
        inherited = [shared.fileno(), own.fileno()] if shared else []
        gate = None
        if gated:
            gate, self.gates[name] = os.pipe()
            args += ["--start-fd", str(gate)]
            inherited.append(gate)
        try:
            self.processes[name] = subprocess.Popen(
                args, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=inherited,
            )
        finally:
            if gate is not None:
                os.close(gate)  # the child's end now
            if shared is not None:
                own.close()  # the child's now
        self.urls[service] = f"http://127.0.0.1:{self.ports[service]}"

    def go(self) -> None:
        """Let the gated processes start; a closed gate unwritten (`up` failed) makes them exit."""
        for name, gate in list(self.gates.items()):
            with contextlib.suppress(BrokenPipeError):  # it died meanwhile: wait_ready reports it
                os.write(gate, b"1")
            os.close(gate)
            del self.gates[name]

    def own_url(self, name: str) -> str:
        """Where this one process answers: its own port, or the service's when it runs alone."""
        return self.replica_urls.get(name) or self.urls[self.service_of(name)]

    def proc(self, name: str) -> subprocess.Popen[bytes] | None:
        if node := self.node_names().get(name):
            return node.proc
        if name == "postgres":
            return self.postgres.proc if self.postgres else None
        if name == "postgres-replica":
            return self.standby.proc if self.standby else None
        return self.processes.get(name)

    def stop(self) -> None:
        for gate in self.gates.values():
            os.close(gate)
        self.gates.clear()
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
        for sock in self.sockets.values():
            sock.close()
        for node in self.nats_nodes:
            node.stop()
        if self.standby:
            self.standby.stop()
        if self.postgres:
            self.postgres.stop()


def plan_servers(data_dir: Path, nats_port: int, pg_port: int, env: Mapping[str, str],
                 services: Iterable[str] = (), nats_nodes: int = 1, read_replica: bool = False) -> Stack:
    """The servers to start for what the environment does not point at, their URLs known before any starts: NATS
    unless NATS_URL (one server, or a JetStream cluster of `nats_nodes` on the client ports nats_port,
    nats_port + 1, ...), PostgreSQL unless DATABASE_URL or a service's own <SVC>_DATABASE_URL is set (then each
    service's runtime and owner URLs, the roles `prepare` provisions)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    services = list(services)
    nats_url, database_url = env.get("NATS_URL"), env.get("DATABASE_URL")
    external_db = bool(database_url) or any(env.get(f"{name.upper()}_DATABASE_URL") for name in services)
    nodes: list[EmbeddedNats] = []
    postgres = standby = None
    if not nats_url:
        client_ports = [nats_port + i for i in range(nats_nodes)]
        if taken := [p for p in client_ports if port_open(p)]:
            raise RuntimeError(f"port {taken[0]} is taken: is another `povguard up` running? (--nats-port)")
        nodes = ([EmbeddedNats(data_dir / "nats", nats_port)] if nats_nodes == 1
                 else nats_cluster(data_dir, client_ports))
        nats_url = ",".join(node.url for node in nodes)  # every node a seed
    if not external_db:
        if port_open(pg_port):
            raise RuntimeError(f"port {pg_port} is taken: is another `povguard up` running? (--pg-port)")
        postgres = EmbeddedPostgres(data_dir / "postgres", pg_port)
        standby = EmbeddedStandby(postgres, data_dir / "postgres-replica", pg_port + 1) if read_replica else None
        database_url = postgres.url()
    elif read_replica:
        raise RuntimeError("--read-replica starts a replica of the embedded PostgreSQL; with DATABASE_URL set, "
                           "give each service DATABASE_READ_URL instead")
    assert nats_url is not None
    stack = Stack(data_dir, nats_url, database_url, nats_nodes=nodes, postgres=postgres, standby=standby)
    if postgres is not None and database_url:
        from povguard_platform.roles import login_urls

        stack.database_urls, stack.migration_database_urls = login_urls(database_url, services)
        if standby:
            stack.database_read_urls = {s: standby.replica_url(u) for s, u in stack.database_urls.items()}
    return stack


def start_servers(stack: Stack) -> None:
    """Start the planned servers: the NATS nodes launched first (together: a cluster's node waits for its routes)
    and awaited after PostgreSQL, which meanwhile initialises (the first time) and starts."""
    for node in stack.nats_nodes:
        node.launch()
    with stack.timed("postgres"):
        if stack.postgres:
            stack.postgres.start()
        if stack.standby:
            stack.standby.start()
    with stack.timed("nats"):
        for node in stack.nats_nodes:
            node.wait()


async def prepare(stack: Stack, services: list[str]) -> None:
    """Provision the embedded server's roles and declare the events stream, together, before the services start.
    Each service migrates its own schema as it starts (as the schema's owner, under an advisory lock that keeps its
    replicas from racing), all of them at once."""
    from nats.errors import Error as NatsError

    from povguard_platform.bus import connect, ensure_stream
    from povguard_platform.roles import provision
    from povguard_platform.settings import Settings

    async def roles() -> None:
        if stack.postgres is not None and stack.database_url:
            with stack.timed("roles"):
                await provision(stack.database_url, services)

    async def stream() -> None:
        settings = Settings(nats_url=stack.nats_url)
        replicas = int(stack.env.get("STREAM_REPLICAS", settings.stream_replicas))
        with stack.timed("stream"):
            nc = await connect(stack.nats_url, "povguard-up")
            deadline = time.monotonic() + 60
            while True:  # a new cluster answers JetStream requests once it has elected its meta leader
                try:
                    await ensure_stream(nc.jetstream(), settings.stream_name, settings.duplicate_window_seconds,
                                        replicas)
                    break
                except (NatsError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await nc.drain()

    await asyncio.gather(roles(), stream())


def listen_shared(port: int) -> socket.socket:
    """A service's port, bound once by `up` and inherited by each of its replicas."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"port {port} is taken: is another `povguard up` running? ({exc})") from exc
    sock.listen(2048)
    return sock


def start_services(stack: Stack, ports: Mapping[str, int], env: Mapping[str, str], gated: bool = False) -> None:
    """Spawn every service process (each replica); gated ones wait for `stack.go()` once imported."""
    (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    stack.ports = dict(ports)
    stack.env = {**stack.env, **env}
    if stack.replicas > 1:
        stack.sockets = {service: listen_shared(port) for service, port in ports.items()}
    names = [name for service in ports for name in stack.replica_names(service)]
    for name in names:
        stack.spawn(name, gated)
    servers = [*(["postgres"] if stack.postgres else []), *(["postgres-replica"] if stack.standby else [])]
    for name in [*stack.node_names(), *servers, *names]:
        stack.watched[name] = Watched(name)


def wait_ready(stack: Stack, timeout: float = 90, on_ready: Callable[[str], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    pending = {name: stack.own_url(name) for name in stack.processes}  # every replica on its own port
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
                time.sleep(READY_POLL)


def up(data_dir: Path, ports: Mapping[str, int], nats_port: int = DEFAULT_NATS_PORT,
       pg_port: int = DEFAULT_PG_PORT, on_ready: Callable[[str], None] | None = None, *,
       nats_nodes: int = 1, replicas: int = 1, read_replica: bool = False) -> Stack:
    """Start the whole system and return once every service (each replica) is ready. The service processes start
    first: their imports (seconds of CPU each) overlap PostgreSQL's start, and they wait at a gate until the roles
    and the stream exist; then each migrates its own schema and starts, all at once. `stack.timings` has the
    seconds of each step."""
    started = time.monotonic()
    env = dict(os.environ)
    env.setdefault("AUDIT_DATA_DIR", str(data_dir / "audit"))  # the development signing key, beside the data
    if nats_nodes > 1 and not env.get("NATS_URL"):  # every node holds the stream: any one may die
        env.setdefault("STREAM_REPLICAS", str(min(nats_nodes, 3)))
    stack = plan_servers(data_dir, nats_port, pg_port, env, ports, nats_nodes, read_replica)
    stack.replicas, stack.env = replicas, env
    try:
        start_services(stack, ports, env, gated=True)
        start_servers(stack)
        asyncio.run(prepare(stack, list(ports)))
        stack.go()
        with stack.timed("services"):
            wait_ready(stack, on_ready=on_ready)
        stack.timings["total"] = round(time.monotonic() - started, 2)
        write_status(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _restart(stack: Stack, name: str) -> None:
    if node := stack.node_names().get(name):
        node.stop()  # closes the old log handle; the store on disk is kept
        node.start()
    elif name == "postgres" and stack.postgres:
        stack.postgres.stop()
        stack.postgres.start()
    elif name == "postgres-replica" and stack.standby:
        stack.standby.stop()
        stack.standby.start()
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
    nodes = stack.node_names()
    status = {"updated": time.time(), "urls": stack.urls, "nats_url": stack.nats_url,
              "processes": [{"name": w.name, "pid": (p.pid if (p := stack.proc(w.name)) else None),
                             "state": w.state, "restarts": w.restarts, "last_exit": w.last_exit,
                             "since": w.started_at,
                             # where this process answers: a replica's own port, a NATS node's client URL
                             "url": (nodes[w.name].url if w.name in nodes
                                     else stack.own_url(w.name) if w.name in stack.processes else None)}
                            for w in stack.watched.values()]}
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
