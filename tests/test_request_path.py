"""The request path of every service stays on the event loop: FastAPI runs a plain `def` dependency or route in its
thread pool, a thread hop (and two context switches) per request, which under load cost more than the lookups those
dependencies do. Every dependency of every route of every service is a coroutine function (or an object whose
`__call__` is one)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from povguard_platform.edge import storable_input
from povguard_platform.ops import ops_router
from povguard_platform.serve import service_definitions
from povguard_platform.web import health_router


def calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from calls(sub)


def runs_on_the_loop(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def test_every_route_and_dependency_runs_on_the_event_loop() -> None:
    blocking = set()
    for name, definition in service_definitions().items():
        routers = [*definition.routers(), health_router(definition), ops_router()]
        for route in (r for router in routers for r in router.routes):
            if not isinstance(route, APIRoute):
                continue
            for call in [route.dependant.call, *calls(route.dependant), storable_input]:
                if call is not None and not runs_on_the_loop(call):
                    blocking.add(f"{name} {route.path}: {getattr(call, '__qualname__', call)}")
    assert not blocking, "run in the thread pool: " + "; ".join(sorted(blocking))
