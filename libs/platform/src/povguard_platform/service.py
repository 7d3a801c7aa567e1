"""What a service is made of, and its running parts (engine, store, bus, relay, consumers) for one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from povguard_platform.clock import Clock, campaign_clock
from povguard_platform.consumer import Consumer, ConsumerSpec
from povguard_platform.eventstore import EventStore
from povguard_platform.relay import Relay
from povguard_platform.settings import Settings, sqlalchemy_url


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
        url, read_url = settings.database_url_for(definition.name), settings.read_url_for(definition.name)
        engine = create_async_engine(sqlalchemy_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True)
        read_engine = engine if read_url == url else create_async_engine(
            sqlalchemy_url(read_url), pool_size=5, max_overflow=10, pool_pre_ping=True)
        return cls(definition, settings, engine, EventStore(definition.name), read_engine,
                   clock=campaign_clock(settings))

    @property
    def schema(self) -> str:
        return self.definition.name

    def consumer_spec(self, name: str) -> ConsumerSpec:
        for spec in self.definition.consumers:
            if spec.name == name:
                return spec
        raise KeyError(name)


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
