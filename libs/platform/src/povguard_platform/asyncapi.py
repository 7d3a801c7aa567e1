"""The AsyncAPI 3.0 document of a service's events: what it publishes on JetStream (its event types from the shared
catalogue, with JSON Schemas from the pydantic payloads and the CloudEvents headers) and what it consumes."""

from __future__ import annotations

from typing import Any

from povguard_contracts.catalogue import CATALOGUE
from povguard_platform.service import ServiceDef

_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0, NATS binding (attributes as ce- headers); Nats-Msg-Id is the event id",
    "properties": {name: {"type": "string"} for name in (
        "Nats-Msg-Id", "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time", "ce-stream",
        "ce-streamtype", "ce-version", "ce-position", "ce-typeversion", "ce-township", "ce-actor",
        "ce-correlationid", "ce-causationid", "ce-traceparent", "ce-policy")},
}


def asyncapi_document(definition: ServiceDef) -> dict[str, Any]:
    published = {name: cls for name, cls in CATALOGUE.types().items() if cls.service == definition.name}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, cls in sorted(published.items()):
        channels[name] = {
            "address": f"ev.{definition.name}.{name}.{{partition}}.{{township}}",
            "parameters": {"partition": {"description": "the partition of the household (or stream) the event is "
                                                        "about: CRC-32 of its key modulo POVGUARD_PARTITIONS"},
                           "township": {"description": "乡镇代码 (9 digits) of the household the event is about"}},
            "messages": {name: {
                "name": name, "title": name, "summary": (cls.__doc__ or "").strip().split("\n")[0],
                "contentType": "application/json", "headers": _HEADERS,
                "payload": cls.model_json_schema(), "x-event-version": cls.event_version}},
        }
        operations[f"publish{name}"] = {"action": "send", "channel": {"$ref": f"#/channels/{name}"}}
    for spec in definition.consumers:
        for subject in spec.type_subjects():
            key = f"consume-{spec.name}-{subject}"
            channels[key] = {"address": subject, "description": f"durable pull consumer {spec.name}"}
            operations[f"receive-{spec.name}-{subject}"] = {"action": "receive",
                                                            "channel": {"$ref": f"#/channels/{key}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"{definition.title} — events", "version": "1.0.0",
                 "description": "Domain events on the JetStream stream POVGUARD_EVENTS (subjects ev.>)."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
