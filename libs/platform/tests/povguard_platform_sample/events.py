from __future__ import annotations

from typing import Any

from pydantic import Field

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.payload import EventPayload


@CATALOGUE.register
class SampleOpened(EventPayload):
    event_type = "SampleOpened"
    service = "sample"
    name: str
    township: str


@CATALOGUE.register
class SampleIncremented(EventPayload):
    """Version 2 renamed `amount` to `by` and added `note`."""

    event_type = "SampleIncremented"
    event_version = 2
    service = "sample"
    by: int
    note: str = ""


@CATALOGUE.upcaster("SampleIncremented", 1)
def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"by": data["amount"], "note": ""}


class SampleIncrementedV1(EventPayload):
    """The old shape, kept only so tests can write v1 events as an old service version would have."""

    event_type = "SampleIncremented"
    event_version = 1
    service = "sample"
    amount: int = Field(ge=1)
