"""Pure: fold events into state, decide which events a command produces."""

from __future__ import annotations

from dataclasses import dataclass

from povguard_contracts.payload import EventPayload
from povguard_platform_sample.events import SampleIncremented, SampleOpened


@dataclass(frozen=True)
class Sample:
    name: str = ""
    township: str = ""
    total: int = 0
    version: int = 0


def fold(events: list[EventPayload]) -> Sample:
    state = Sample()
    for e in events:
        match e:
            case SampleOpened(name=name, township=township):
                state = Sample(name, township, 0, state.version + 1)
            case SampleIncremented(by=by):
                state = Sample(state.name, state.township, state.total + by, state.version + 1)
    return state
