"""The JetStream side: one stream for all domain events, subjects
ev.<service>.<event_type>.<partition>.<township_code> (partitions.py), events as CloudEvents in binary mode
(attributes as `ce-` headers) with Nats-Msg-Id = event id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from povguard_platform.actor import actor_from_json
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.partitions import subject

SUBJECTS = ["ev.>"]


def servers(url: str) -> list[str]:
    """`url` may list a cluster's seeds, comma-separated (nats://a:4222,nats://b:4222), as NATS clients accept."""
    return [u.strip() for u in url.split(",") if u.strip()]


def broker(url: str, name: str) -> NatsBroker:
    """The FastStream broker of a service: its connection (reconnecting for ever), and its AsyncAPI document."""
    # nats-py takes seconds as a float; FastStream's annotation says int: half a second keeps failover short
    return NatsBroker(servers(url), name=name, max_reconnect_attempts=-1,
                      reconnect_time_wait=0.5)  # type: ignore[arg-type]


async def connect(url: str, name: str) -> NATS:
    """The service's connection, opened by its FastStream broker (the relay and the partitioned pull loops use its
    JetStream context directly: consumer.py says why)."""
    return await broker(url, name).connect()


async def ensure_stream(js: JetStreamContext, name: str, duplicate_window: float, replicas: int = 1) -> None:
    """Create or update the events stream. The duplicate window must outlast the relay's worst retry horizon;
    `replicas` > 1 needs a JetStream cluster of at least that many nodes."""
    config = StreamConfig(
        name=name,
        subjects=SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=duplicate_window,
        num_replicas=replicas,
        description="povguard domain events (CloudEvents, binary mode)",
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


def to_message(event: RecordedEvent, partition: int, body: bytes | None = None) -> tuple[str, dict[str, str], bytes]:
    """The event as a JetStream message; `body` is its payload already encoded (as stored), else `event.data`."""
    headers = {
        "Nats-Msg-Id": str(event.id),
        "ce-specversion": RecordedEvent.SPEC_VERSION,
        "ce-id": str(event.id),
        "ce-source": f"/povguard/{event.source}",
        "ce-type": event.type,
        "ce-subject": event.stream.id,
        "ce-time": event.time.isoformat(),
        "content-type": "application/json",
        "ce-stream": str(event.stream),
        "ce-streamtype": event.stream.type,
        "ce-version": str(event.version),
        "ce-position": str(event.position),
        "ce-typeversion": str(event.type_version),
        "ce-township": event.township,
        "ce-actor": event.actor.model_dump_json(),
    }
    optional = {
        "ce-correlationid": event.correlation_id,
        "ce-causationid": event.causation_id,
        "ce-traceparent": event.traceparent,
        "ce-policy": event.policy,
    }
    headers.update({k: str(v) for k, v in optional.items() if v is not None})
    if body is None:
        body = json.dumps(event.data, ensure_ascii=False, separators=(",", ":")).encode()
    return subject(event, partition), headers, body


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def from_message(headers: Mapping[str, str], data: bytes) -> RecordedEvent:
    body: dict[str, Any] = json.loads(data)
    return RecordedEvent(
        id=uuid.UUID(headers["ce-id"]),
        source=headers["ce-source"].rsplit("/", 1)[-1],
        stream=StreamRef(headers["ce-streamtype"], headers["ce-subject"]),
        version=int(headers["ce-version"]),
        position=int(headers["ce-position"]),
        type=headers["ce-type"],
        type_version=int(headers.get("ce-typeversion", "1")),
        township=headers["ce-township"],
        time=datetime.fromisoformat(headers["ce-time"]),
        actor=actor_from_json(headers["ce-actor"]),
        data=body,
        correlation_id=_uuid(headers.get("ce-correlationid")),
        causation_id=_uuid(headers.get("ce-causationid")),
        traceparent=headers.get("ce-traceparent"),
        policy=headers.get("ce-policy"),
    )
