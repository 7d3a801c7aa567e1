"""The base of every event payload: what an event says, apart from its envelope (platform's `envelope.py`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Base of every event payload. Subclasses name their type, its version and the owning service."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # numbers: see `numbers`

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1
    service: ClassVar[str]
