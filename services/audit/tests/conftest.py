"""Fixtures for the audit service's tests: an intake runtime whose event store produces events (test event types
registered under distinctive names) and the audit runtime whose ledger consumer records them, on real PostgreSQL
and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from sqlalchemy import text

from povguard_audit.service import SERVICE as AUDIT
from povguard_audit.settings import audit_settings
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Actor, Role
from povguard_platform.catalogue import CATALOGUE
from povguard_platform.envelope import EventPayload, Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.testing import running


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
def _audit_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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
