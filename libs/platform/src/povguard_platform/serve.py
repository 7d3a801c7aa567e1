"""Run one service: `povguard-serve intake [--host 0.0.0.0] [--port 8101]` (what `povguard up` and the container
image start). HOST and PORT in the environment are the defaults, so a container is configured by environment only.
`--fd N`: also serve a listening socket inherited from `povguard up`, the port the service's replicas share.
`--start-fd N`: import and build the app, then wait for a byte on this inherited pipe before starting (`povguard up`
starts the services while PostgreSQL initialises, and says go once their roles and the stream exist).

HTTP_WORKERS=N (settings.http_workers): the process binds its port once and starts N - 1 more processes on the same
listening socket (as uvicorn's and gunicorn's workers share theirs), so that the read path uses more than one core.
Those serve HTTP only (RUN_BACKGROUND=false): the relay, the consumers and the background work stay in the first
process, one per replica set as before (their leases and advisory locks do not change). A worker that dies is
started again; the workers end with the first process, however it ends (they watch a pipe it holds)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from importlib.metadata import entry_points
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from povguard_platform.service import ServiceDef
from povguard_platform.settings import get_settings
from povguard_platform.telemetry import setup_logging

log = logging.getLogger(__name__)


def service_definitions() -> dict[str, ServiceDef]:
    """Every installed service, by name (entry point group `povguard.services`)."""
    found: dict[str, ServiceDef] = {ep.name: ep.load() for ep in entry_points(group="povguard.services")}
    order = ["intake", "assessment", "review", "support", "audit", "reporting"]
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def service_definition(name: str) -> ServiceDef:
    """One installed service, loading no other: a process then registers (and exports) only its own metrics."""
    for ep in entry_points(group="povguard.services", name=name):
        definition: ServiceDef = ep.load()
        return definition
    raise SystemExit(f"no service {name!r} installed (entry point group povguard.services)")


def app_for(name: str) -> FastAPI:
    from povguard_platform.web import create_app

    app: FastAPI = create_app(service_definition(name), get_settings())
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ["PORT"]) if os.environ.get("PORT") else None)
    parser.add_argument("--fd", type=int, default=None,
                        help="an inherited listening socket shared with the service's other replicas")
    parser.add_argument("--own-fd", type=int, default=None,
                        help="with --fd: this replica's own listening socket (its readiness, `povguard status`)")
    parser.add_argument("--start-fd", type=int, default=None,
                        help="an inherited pipe: build the app, then start once a byte arrives on it")
    parser.add_argument("--worker-of", type=int, nargs=2, metavar=("SOCKET_FD", "PIPE_FD"), default=None,
                        help="an HTTP worker of HTTP_WORKERS: serve only this inherited socket; end when the pipe "
                             "from the first process closes")
    args = parser.parse_args()
    definition = service_definition(args.service)
    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. a weak JWT_SECRET in production: refuse to start, saying why
        raise SystemExit(f"povguard {args.service}: invalid settings: {exc}") from None
    setup_logging(settings.log_level)
    config = uvicorn.Config(app_for(args.service), host=args.host, port=args.port or definition.default_port,
                            log_config=None, access_log=False, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    # What start-up built (modules, classes, schemas, the app: some 150,000 objects) lives as long as the process;
    # frozen out of the collector's reach, a full collection walks only what serving makes (0.1 ms instead of
    # 100-200 ms, a stall every request in flight waited out: the read path's p99)
    gc.collect()
    gc.freeze()
    if args.start_fd is not None:
        _wait_for_go(args.start_fd, args.service)
    if args.worker_of is not None:
        listener_fd, parent_fd = args.worker_of
        _end_with_parent(parent_fd)
        server.run(sockets=[socket.socket(fileno=listener_fd)])
    elif args.fd is not None:  # the shared port, and this replica's own (its readiness, `povguard status`)
        own = socket.socket(fileno=args.own_fd) if args.own_fd is not None else config.bind_socket()
        server.run(sockets=[socket.socket(fileno=args.fd), own])
    elif settings.http_workers > 1:
        listener = config.bind_socket()
        with HttpWorkers(args.service, listener, settings.http_workers - 1):
            server.run(sockets=[listener])
    else:
        server.run()


class HttpWorkers:
    """The processes beyond the first that serve a service's port (HTTP_WORKERS): started on its listening socket
    with RUN_BACKGROUND=false, started again when one dies, stopped when the first process stops."""

    RESTART_SECONDS = 1.0

    def __init__(self, service: str, listener: socket.socket, count: int) -> None:
        self.service = service
        self.listener = listener
        self.count = count
        # the workers hold the read end: when this process ends, even killed, they read EOF and stop
        self.pipe_read, self.pipe_write = os.pipe()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="http-workers", daemon=True)

    def __enter__(self) -> HttpWorkers:
        self.processes = [self._start() for _ in range(self.count)]
        self.watcher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
                 ) -> None:
        self.stopping.set()
        self.watcher.join()
        os.close(self.pipe_write)
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        os.close(self.pipe_read)

    def _start(self) -> subprocess.Popen[bytes]:
        fds = (self.listener.fileno(), self.pipe_read)
        return subprocess.Popen(
            [sys.executable, "-m", "povguard_platform.serve", self.service, "--worker-of", *map(str, fds)],
            pass_fds=fds, env={**os.environ, "RUN_BACKGROUND": "false"})

    def _watch(self) -> None:
        while not self.stopping.wait(self.RESTART_SECONDS):
            for i, process in enumerate(self.processes):
                if process.poll() is not None and not self.stopping.is_set():
                    log.warning("HTTP worker %d of %s (pid %d) exited with %s; starting it again", i + 2,
                                self.service, process.pid, process.returncode)
                    self.processes[i] = self._start()


def _end_with_parent(fd: int) -> None:
    """Stop this worker (gracefully, as on SIGTERM) once the first process's end of the pipe closes."""

    def watch() -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            pipe.read(1)  # nothing is ever written: returns at EOF
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _wait_for_go(fd: int, service: str) -> None:
    """Block until `povguard up` writes to the pipe; its end closed unwritten means `up` failed or died: exit."""
    with os.fdopen(fd, "rb", buffering=0) as gate:
        if not gate.read(1):
            raise SystemExit(f"povguard {service}: `povguard up` stopped before the database was ready")


if __name__ == "__main__":
    main()
