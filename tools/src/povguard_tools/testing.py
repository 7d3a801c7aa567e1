"""pytest plugin (loaded with `-p povguard_tools.testing`): real PostgreSQL and NATS servers on free ports,
started by the tests themselves and removed afterwards, so tests run beside a running `povguard up`.
DATABASE_URL (a superuser's) / NATS_URL point the fixtures at external servers instead.

Every service in a test migrates as its schema's owner and runs as its own runtime role (`povguard_platform.roles`),
as in production, so the whole suite exercises least privilege; `database_url` and `admin_engine` are the
superuser's, for what only an operator may do."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from povguard_platform.roles import login_urls, provision
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_platform.settings import Settings, sqlalchemy_url
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def server_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="povguard-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(server_dir: Path) -> Iterator[EmbeddedPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    server = EmbeddedPostgres(server_dir / "postgres", durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres | None) -> str:
    """A fresh, empty database for each test (the superuser's URL)."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    if postgres is None:
        import asyncpg

        base = os.environ["DATABASE_URL"]

        async def create() -> None:
            conn = await asyncpg.connect(base)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(create())
        return base.rsplit("/", 1)[0] + f"/{name}"
    url: str = postgres.create_database(name)
    return url


@pytest.fixture
def nats_server(server_dir: Path) -> Iterator[EmbeddedNats | None]:
    """A fresh NATS server for each test (it starts in ~50 ms), so streams never leak between tests."""
    if os.environ.get("NATS_URL"):
        yield None
        return
    server = EmbeddedNats(server_dir / f"nats-{next(_db_counter)}")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats | None) -> str:
    return nats_server.url if nats_server else os.environ["NATS_URL"]


@pytest.fixture
def database_services() -> list[str]:
    """The services whose schemas and roles each test database gets (a conftest may name others)."""
    from povguard_platform.serve import service_definitions

    return list(service_definitions())


@pytest.fixture
def settings(database_url: str, nats_url: str, database_services: list[str]) -> Settings:
    """Every service of `database_services` provisioned in the test's database; each migrates as its owner and runs
    as its runtime role. DATABASE_URL stays the superuser's (no service runs with it)."""
    asyncio.run(provision(database_url, database_services))
    runtime_urls, owner_urls = login_urls(database_url, database_services)
    return Settings(environment="test", database_url=database_url, nats_url=nats_url,
                    database_urls=runtime_urls, migration_database_urls=owner_urls)


@pytest.fixture
async def admin_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test database as its superuser: for what no service's role may do (tampering, replica mode)."""
    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def running(definition: ServiceDef, settings: Settings) -> AsyncIterator[ServiceRuntime]:
    """A service's runtime (migrations, bus, relay, consumers) without HTTP, for integration tests."""
    from povguard_platform.web import start_runtime, stop_runtime

    runtime = ServiceRuntime.create(definition, settings)
    await start_runtime(runtime)
    try:
        yield runtime
    finally:
        await stop_runtime(runtime)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """An app behind a real HTTP server on a free local port, for code that calls another service over HTTP; the
    app's lifespan is the caller's. Yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or serving.done())
        if serving.done():
            serving.result()  # it failed to start: say why
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def eventually(predicate: object, within: float = 15.0, interval: float = 0.05) -> None:
    """Wait until an async or sync predicate holds (for effects that travel through the bus)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate() if callable(predicate) else predicate
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
