"""Fixtures for the audit service's tests: an intake runtime whose event store produces events (test event types
registered under distinctive names) and the audit runtime whose ledger consumer records them, on real PostgreSQL
and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from audit_helpers import Stack, producer_only
from sqlalchemy import text

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_audit.service import SERVICE as AUDIT
from povguard_audit.settings import audit_settings
from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.payload import EventPayload
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_review.service import SERVICE as REVIEW
from povguard_support.service import SERVICE as SUPPORT
from povguard_tools.testing import running


@CATALOGUE.register
class AuditTestHouseholdNoted(EventPayload):
    event_type = "AuditTestHouseholdNoted"
    service = "intake"
    note: str
    income: int = 0


@CATALOGUE.register
class AuditTestCaseStepped(EventPayload):
    """An event on a non-household stream that names its household in the payload."""

    event_type = "AuditTestCaseStepped"
    service = "intake"
    household_id: str | None
    step: str


@pytest.fixture(autouse=True)
def _audit_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("AUDIT_DATA_DIR", str(tmp_path / "audit"))  # each test's development signing key
    monkeypatch.setenv("AUDIT_CHECKPOINT_EVERY", "1000000")  # tests sign on demand unless they say otherwise
    monkeypatch.setenv("AUDIT_CHECKPOINT_SECONDS", "100000")
    audit_settings.cache_clear()
    yield
    audit_settings.cache_clear()


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[tuple[ServiceRuntime, ServiceRuntime]]:
    """(intake, audit) runtimes sharing one database and one NATS server."""
    async with running(INTAKE, settings) as intake, running(AUDIT, settings) as audit:
        yield intake, audit


TOWN = "533123101"
ACTOR = Actor(user="张三", role=Role.COLLECTOR, org=TOWN)


async def append_events(rt: ServiceRuntime, events: list[tuple[StreamRef, EventPayload]],
                        actor: Actor = ACTOR) -> list[RecordedEvent]:
    """Append events to the intake store, each stream at its current version."""
    out: list[RecordedEvent] = []
    async with rt.engine.begin() as conn:
        for stream, payload in events:
            version = await rt.store.stream_version(conn, stream)
            out += await rt.store.append(conn, [NewEvent(stream, TOWN, payload)], {stream: version},
                                         Metadata(actor=actor))
    return out


async def ledger_count(rt: ServiceRuntime) -> int:
    async with rt.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM audit.ledger"))).scalar_one())


@pytest.fixture
def write() -> Callable[..., Awaitable[list[RecordedEvent]]]:
    return append_events


@pytest.fixture
def count() -> Callable[[ServiceRuntime], Awaitable[int]]:
    return ledger_count


class TestEvents:
    """The test event types (conftest is not importable by name: the platform's tests own `conftest`)."""

    Noted = AuditTestHouseholdNoted
    Stepped = AuditTestCaseStepped


@pytest.fixture
def ev() -> type[TestEvents]:
    return TestEvents


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[ServiceRuntime, httpx.AsyncClient]]:
    """The intake runtime (to produce events) and the audit service's HTTP API with its consumer running."""
    async with running(INTAKE, settings) as intake:
        app = create_app(AUDIT, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
                client.app = app  # type: ignore[attr-defined]
                yield intake, client


def bearer(settings: Settings, role: Role = Role.INSPECTOR, org: str = "533123", user: str = "赵六") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org), settings)}


@pytest.fixture
def auth(settings: Settings) -> Callable[..., dict[str, str]]:
    return lambda role=Role.INSPECTOR, **kw: bearer(settings, role, **kw)


@pytest.fixture
async def full(settings: Settings) -> AsyncIterator[Stack]:
    """Intake, assessment, review and support (producers: their stores and relays, the last three without their
    consumers) and the audit service's HTTP API with its ledger consumer, on one database and one NATS."""
    app = create_app(AUDIT, settings)
    async with (running(INTAKE, settings) as intake, running(producer_only(ASSESSMENT), settings) as assessment,
                running(producer_only(REVIEW), settings) as review,
                running(producer_only(SUPPORT), settings) as support,
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://audit") as client):
        client.headers.update(bearer(settings))
        client.app = app  # type: ignore[attr-defined]
        yield Stack(intake, assessment, review, support, client)
