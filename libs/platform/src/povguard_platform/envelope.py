"""The event envelope: CloudEvents 1.0 attributes plus povguard's extensions (DESIGN.md, Events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from povguard_contracts.payload import EventPayload
from povguard_platform.actor import Actor
from povguard_platform.ids import uuid7


@dataclass(frozen=True, slots=True)
class StreamRef:
    """An aggregate's stream: its type (household, case, plan, ...) and id."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}-{self.id}"


@dataclass(frozen=True, slots=True)
class Metadata:
    """What every event carries besides its payload: who, why, in which trace, under which policy."""

    actor: Actor
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    traceparent: str | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended: its stream, the township it belongs to (subject token) and its payload."""

    stream: StreamRef
    township: str
    payload: EventPayload
    id: uuid.UUID = field(default_factory=uuid7)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: the envelope and the raw payload (decode with `Catalogue.decode`)."""

    SPEC_VERSION: ClassVar[str] = "1.0"

    id: uuid.UUID
    source: str  # the owning service, e.g. "intake"
    stream: StreamRef
    version: int
    position: int
    type: str
    type_version: int
    township: str
    time: datetime
    actor: Actor
    data: dict[str, Any]
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    traceparent: str | None = None
    policy: str | None = None

    @property
    def subject(self) -> str:
        """ev.<service>.<event_type>.<township_code>: the NATS subject less its partition token (the relay adds
        it: partitions.py); dead letters record this form."""
        return f"ev.{self.source}.{self.type}.{self.township}"
