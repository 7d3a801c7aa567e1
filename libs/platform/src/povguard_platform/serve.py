"""Run one service: `povguard-serve intake [--host 0.0.0.0] [--port 8101]` (what `povguard up` and the container
image start). HOST and PORT in the environment are the defaults, so a container is configured by environment only.
`--fd N`: also serve a listening socket inherited from `povguard up`, the port the service's replicas share.
`--start-fd N`: import and build the app, then wait for a byte on this inherited pipe before starting (`povguard up`
starts the services while PostgreSQL initialises, and says go once their roles and the stream exist)."""

from __future__ import annotations

import argparse
import os
import socket
from importlib.metadata import entry_points

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from povguard_platform.service import ServiceDef
from povguard_platform.settings import get_settings
from povguard_platform.telemetry import setup_logging


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
    parser.add_argument("--start-fd", type=int, default=None,
                        help="an inherited pipe: build the app, then start once a byte arrives on it")
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
    if args.start_fd is not None:
        _wait_for_go(args.start_fd, args.service)
    if args.fd is None:
        server.run()
    else:  # the shared port, and this replica's own (its readiness, `povguard status`)
        server.run(sockets=[socket.socket(fileno=args.fd), config.bind_socket()])


def _wait_for_go(fd: int, service: str) -> None:
    """Block until `povguard up` writes to the pipe; its end closed unwritten means `up` failed or died: exit."""
    with os.fdopen(fd, "rb", buffering=0) as gate:
        if not gate.read(1):
            raise SystemExit(f"povguard {service}: `povguard up` stopped before the database was ready")


if __name__ == "__main__":
    main()
