"""The ledger's canonical JSON (`canonical_json`, its fast path behind `canonical_event` and `Entry.canonical`) writes
exactly the bytes of the RFC 8785 reference implementation, or refuses exactly what it refuses: for any JSON value
hypothesis generates (floats of every magnitude, integers beyond 2^53, lone surrogates, keys beyond the BMP), for a
corpus of the known differences between json.dumps and RFC 8785, and for real envelopes of every service's events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import rfc8785
from audit_helpers import appraisal, decided, income, proposed, registered, visit
from hypothesis import given, settings
from hypothesis import strategies as st

from povguard_audit.entry import canonical_event, canonical_json
from povguard_contracts.payload import EventPayload
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.ids import uuid7

# Characters where json.dumps and RFC 8785 could part: escapes, controls, U+2028, the BMP's top (U+E000-U+FFFF sorts
# after a surrogate pair in UTF-16, before it by code point), astral characters, lone surrogates.
TRICKY = st.sampled_from(["a", "Z", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\u2028",
                          "é", "岳", "\ue000", "\uffff", "\ufeff", "𝄞", "😀", "\U0010ffff", "\ud800", "\udfff"])
STRINGS = st.one_of(st.text(), st.text(TRICKY, max_size=8))
NUMBERS = st.one_of(st.integers(), st.integers(-(2**53) - 2, 2**53 + 2), st.floats(),
                    st.floats(-1e22, 1e22), st.floats(-1e-5, 1e-5), st.floats(allow_subnormal=True, width=32))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS),
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(STRINGS, inner, max_size=6)),
    max_leaves=40)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except ValueError as exc:  # CanonicalizationError, or UnicodeEncodeError for a lone surrogate in a key
        return type(exc)


def ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except ValueError as exc:  # CanonicalizationError, or UnicodeEncodeError for a lone surrogate in a key
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(JSON)
def test_canonical_json_is_rfc8785_for_any_json_value(value: Any) -> None:
    assert ours(value) == reference(value)


CORPUS: list[Any] = [
    5.0, -0.0, 0.0, 1e15, 1e16, 1e21, 1e22, 123456789012345680000.0, 0.1, 1e-4, 1e-5, 1e-6, 1e-7, 5e-324,
    1.7976931348623157e308, 9007199254740993.0, 2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 4.35, 0.000123, -1.5,
    float("nan"), float("inf"), True, False, None, "", "\u2028\u2029", "\x00\x01\x1f\x7f", "\ud800",
    {"\ue000": 1, "\U00010000": 2}, {"a": {"\U0001f600": 1, "\uffff": 2, "b": [1.0, 2.5]}}, {"b": 1, "a": 2, "": 0},
    {1: "int key"}, {"z": [{"y": 1e300, "x": -1e-300}]}, [], {}, [[[]]], (1, 2),
]


@pytest.mark.parametrize("value", CORPUS, ids=repr)
def test_canonical_json_is_rfc8785_on_the_known_differences(value: Any) -> None:
    assert ours(value) == reference(value)


def envelope(payload: EventPayload, source: str) -> RecordedEvent:
    data = payload.model_dump(mode="json")  # what the bus carries, floats and all
    return RecordedEvent(
        id=uuid7(), source=source, stream=StreamRef("household", "hh-1"), version=3, position=42,
        type=payload.event_type, type_version=payload.event_version, township="533123101",
        time=datetime(2022, 5, 8, 1, 2, 3, 456789, tzinfo=UTC),
        actor=Actor(user="岳老三", role=Role.COUNTY_BUREAU, org="533123"), data=data, correlation_id=uuid7(),
        policy="533123-2022@1")


def test_canonical_event_is_rfc8785_on_real_envelopes() -> None:
    from povguard_audit.entry import event_as_json

    payloads = [(registered("hh-1"), "intake"), (visit("hh-1", "v1", 9000.5), "intake"),
                (income("hh-1", "v1", 6123.45), "assessment"), (income("hh-1", "v2", 7000.0), "assessment"),
                (proposed("hh-1", "拟风险消除", 6500.25), "assessment"),
                (appraisal("hh-1", "c1", date(2022, 5, 16)), "review"),
                (decided("hh-1", "c1", "新识别监测对象", "风险未消除", date(2022, 5, 25)), "review")]
    for payload, source in payloads:
        event = envelope(payload, source)
        assert canonical_event(event) == bytes(rfc8785.dumps(event_as_json(event)))


@settings(max_examples=500, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_entry_timestamps_are_written_as_strftime_writes_them(moment: datetime) -> None:
    from povguard_audit.entry import ts

    assert ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ENTRY_INTS = st.one_of(st.integers(-(2**53) - 2, 2**53 + 2), st.integers())


@settings(max_examples=800, deadline=None)
@given(st.tuples(STRINGS, STRINGS, STRINGS, STRINGS, st.none() | STRINGS), ENTRY_INTS, ENTRY_INTS,
       st.none() | ENTRY_INTS, st.datetimes(timezones=st.timezones()))
def test_entry_bytes_written_directly_are_rfc8785_of_the_entry_object(
        texts: tuple[str, str, str, str, str | None], index: int, version: int, prev: int | None,
        moment: datetime) -> None:
    """Entry.canonical writes the entry's fixed shape without building its dict: the reference implementation's bytes
    of `as_json()`, or its refusal (integers beyond 2^53, lone surrogates), for any field values."""
    import hashlib
    import uuid

    from povguard_audit.entry import Entry

    source, stream_id, action, user, household = texts
    e = Entry(index, moment, uuid.uuid4(), moment, source, "household", stream_id, version, action, user, "collector",
              user[::-1], household, hashlib.sha256(action.encode("utf-8", "replace")).digest(), prev,
              None if prev is None else bytes(range(32)))
    try:
        got: bytes | type[Exception] = e.canonical()
    except ValueError as exc:
        got = type(exc)
    assert got == reference(e.as_json())
