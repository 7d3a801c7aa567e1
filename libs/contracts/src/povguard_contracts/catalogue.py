"""The catalogue of event types: the contract between services, with upcasters for old versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from povguard_contracts.numbers import STORED
from povguard_contracts.payload import EventPayload

P = TypeVar("P", bound=type[EventPayload])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Stored(Protocol):
    """What decoding needs of a stored event (the platform's `RecordedEvent` is one)."""

    @property
    def type(self) -> str: ...
    @property
    def type_version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...


class UnknownEventType(LookupError):
    pass


class Catalogue:
    """Maps (type, version) to payload classes; old versions are upcast step by step to the current one."""

    def __init__(self) -> None:
        self._types: dict[str, type[EventPayload]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: P) -> P:
        """Class decorator: registers the current version of an event type."""
        existing = self._types.get(cls.event_type)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {cls.event_type} registered twice")
        self._types[cls.event_type] = cls
        return cls

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: a function that turns data of `from_version` into data of `from_version + 1`."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return decorate

    def payload_class(self, event_type: str) -> type[EventPayload]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        current = self.payload_class(event_type).event_version
        while version < current:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEventType(f"no upcaster for {event_type} v{version}")
            data = step(data)
            version += 1
        return data

    def decode(self, event: Stored) -> EventPayload:
        """The event's payload as the current version of its type."""
        return self.decode_data(event.type, event.type_version, event.data)

    def decode_data(self, event_type: str, version: int, data: dict[str, Any]) -> EventPayload:
        """Stored data, read as stored (`numbers.STORED`): an old number is not refused by today's bounds."""
        cls = self.payload_class(event_type)
        return cls.model_validate(self.upcast(event_type, version, data), context=STORED)

    def decode_json(self, event_type: str, version: int, raw: str | bytes) -> EventPayload:
        """`decode_data` straight from stored JSON text: parsed and validated in one pass when no upcast is due (a
        store's JSON decoded to dicts first, then validated, costs about twice as much)."""
        cls = self.payload_class(event_type)
        if version >= cls.event_version:
            return cls.model_validate_json(raw, context=STORED)
        return self.decode_data(event_type, version, json.loads(raw))

    def types(self) -> dict[str, type[EventPayload]]:
        return dict(self._types)


CATALOGUE = Catalogue()
