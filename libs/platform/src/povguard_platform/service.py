"""What a service is made of, and its running parts (engine, store, bus, relay, consumers) for one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from povguard_platform.clock import Clock, campaign_clock
from povguard_platform.consumer import Consumer, ConsumerSpec
from povguard_platform.eventstore import EventStore
from povguard_platform.relay import Relay
from povguard_platform.settings import Settings, sqlalchemy_url

POOL_SIZE = 20  # database connections per service process


@dataclass(frozen=True)
class ServiceDef:
    """A deployable service: its name (= its schema and event source), port, API, consumers and migrations."""

    name: str
    title: str
    description: str
    default_port: int
    migrations_dir: Path
    routers: Callable[[], Sequence[APIRouter]] = lambda: ()
    consumers: Sequence[ConsumerSpec] = ()
    # long-running work of the service (schedules, sweeps), started with it and told to stop through runtime.stop
    background: Sequence[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = ()
    # drop the read models and replay the events into them (`povguard replay <service>`); returns what it rebuilt
    rebuild: Callable[[ServiceRuntime, AsyncConnection], Coroutine[Any, Any, int]] | None = None
    # refresh the service's gauges that the database knows best (e.g. the last checkpoint), before each scrape
    collect: Callable[[ServiceRuntime], Coroutine[Any, Any, None]] | None = None


@dataclass
class ServiceRuntime:
    definition: ServiceDef
    settings: Settings
    engine: AsyncEngine
    store: EventStore
    # list, report and export queries: a streaming replica's engine when one is configured, else `engine`. Nothing
    # that a client reads right after its own write, or checks a version against, may use it (replicas lag).
    read_engine: AsyncEngine
    nc: NATS | None = None
    js: JetStreamContext | None = None
    relay: Relay | None = None
    consumers: list[Consumer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)  # the campaign's "today" for every rule and list of the service

    @classmethod
    def create(cls, definition: ServiceDef, settings: Settings) -> ServiceRuntime:
        # No overflow: an overflow connection is closed when it comes back, so more than pool_size requests at
        # once opened (and forked a PostgreSQL backend for) a connection per request. Beyond POOL_SIZE a request
        # waits for a connection instead (the same ceiling as before: 10 + 10).
        url, read_url = settings.database_url_for(definition.name), settings.read_url_for(definition.name)
        engine = create_async_engine(sqlalchemy_url(url), pool_size=POOL_SIZE, max_overflow=0)
        event.listen(engine.sync_engine, "checkout", _refuse_closed)
        read_engine = engine
        if read_url != url:
            read_engine = create_async_engine(sqlalchemy_url(read_url), pool_size=POOL_SIZE // 2, max_overflow=0)
            event.listen(read_engine.sync_engine, "checkout", _refuse_closed)
        return cls(definition, settings, engine, EventStore(definition.name), read_engine,
                   clock=campaign_clock(settings))

    def read(self, *, replica: bool = False) -> AsyncConnection:
        """A connection for a read-only route: autocommit, so no BEGIN and ROLLBACK round trips around its
        SELECTs. Each statement sees what was committed when it started, as under the READ COMMITTED transaction
        `engine.connect()` opens; a read that must see one snapshot across statements uses `engine.begin()`.
        `replica=True` for lists, reports and exports: `read_engine`, which may lag the primary."""
        return (self._replica_reader if replica else self._reader).connect()

    @cached_property
    def _reader(self) -> AsyncEngine:
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool

    @cached_property
    def _replica_reader(self) -> AsyncEngine:
        return self.read_engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def schema(self) -> str:
        return self.definition.name

    def consumer_spec(self, name: str) -> ConsumerSpec:
        for spec in self.definition.consumers:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Instead of pool_pre_ping (a round trip and about 0.4 ms of CPU on every checkout): a pooled
    connection whose server side has gone (PostgreSQL restarted, the backend was terminated) is known closed as soon
    as the event loop has read its EOF, so refuse it here; the pool then opens a fresh one. A failure that shows only
    on use still invalidates the pool's older connections and answers 503 (problems.py)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


async def get_runtime(request: Request) -> ServiceRuntime:
    # async, like every dependency of a route: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop (two context switches) per request for an attribute lookup
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
