"""A ledger entry and its exact bytes (RFC 8785 canonical JSON). Pure: no I/O.

The leaf is SHA-256(0x00 ‖ entry bytes). The entry commits to the SHA-256 of the event's canonical JSON, not to the
event itself, so personal data can later be redacted from a stored payload without breaking any proof. It links to
the previous entry of the same household (index and leaf hash), so a gap in one household's history is visible.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

import rfc8785

from povguard_audit import merkle
from povguard_platform.consumer import event_as_json
from povguard_platform.envelope import RecordedEvent


def ts(dt: datetime) -> str:
    """A timestamp as it enters the entry bytes: UTC, microseconds, 'Z' (what PostgreSQL stores exactly). isoformat
    writes the same at a third of strftime's cost, but pads years below 1000, which strftime does not here."""
    utc = dt.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"  # without "+00:00"


class _Differs(Exception):
    """A value whose `json.dumps` bytes may differ from RFC 8785's: the reference implementation writes it."""


_SAFE_INT = 2**53 - 1  # RFC 8785 refuses integers beyond a double's exact range
_quote = encode_basestring  # a JSON string as json.dumps(ensure_ascii=False) writes it (the C encoder)


def _jcs_ready(value: Any) -> Any:
    """The value with each integral float as an int (RFC 8785 writes 5.0 as "5", json.dumps as "5.0"); a new
    container only where something changed. Raises _Differs where sorted compact json.dumps may not write RFC 8785's
    bytes: a float whose repr has an exponent (or NaN, infinity), an integer beyond 2^53 - 1, a key that is not a str
    or holds a character beyond the BMP (RFC 8785 orders keys by UTF-16 code units, Python by code points; they
    agree within the BMP), or any type but exact dict, list, str, int, bool, float and None. Strings need no check:
    both escape the same characters the same way, and a lone surrogate fails the UTF-8 encoding afterwards."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        raise _Differs
    if kind is float:
        text = repr(value)
        if "e" in text or "n" in text:  # 1e+16, 1e-05, inf, nan
            raise _Differs
        return int(value) if value.is_integer() else value  # "-0.0" -> 0, as RFC 8785 writes it
    if kind is dict:
        out: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                raise _Differs
            ready = _jcs_ready(item)
            if ready is not item:
                if out is None:
                    out = dict(value)
                out[key] = ready
        return value if out is None else out
    if kind is list:
        items = [_jcs_ready(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    raise _Differs


def canonical_json(doc: Any) -> bytes:
    """RFC 8785 bytes of a JSON value: sorted compact `json.dumps` where that writes the same bytes (_jcs_ready says
    where it does), at a tenth of the reference implementation's cost; the reference implementation otherwise."""
    try:
        return json.dumps(_jcs_ready(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()
    except (_Differs, UnicodeEncodeError):
        return bytes(rfc8785.dumps(doc))


def canonical_event(event: RecordedEvent) -> bytes:
    """RFC 8785 canonical JSON of the event's whole envelope: what the payload hash covers."""
    return canonical_json(event_as_json(event))


def household_of(event: RecordedEvent) -> str | None:
    if event.stream.type == "household":
        return str(event.stream.id)
    value: object = event.data.get("household_id")
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    recorded_at: datetime
    event_id: uuid.UUID
    event_time: datetime
    source: str
    stream_type: str
    stream_id: str
    stream_version: int
    action: str  # the event type
    actor_user: str
    actor_role: str
    actor_org: str
    household: str | None
    payload_sha256: bytes
    prev_index: int | None  # previous entry of the same household
    prev_leaf: bytes | None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "recorded_at": ts(self.recorded_at), "event_id": str(self.event_id),
            "event_time": ts(self.event_time), "source": self.source,
            "stream": {"type": self.stream_type, "id": self.stream_id, "version": self.stream_version},
            "action": self.action,
            "actor": {"user": self.actor_user, "role": self.actor_role, "org": self.actor_org},
            "household": self.household, "payload_sha256": self.payload_sha256.hex(),
            "prev": None if self.prev_index is None else {
                "index": self.prev_index, "leaf_hash": (self.prev_leaf or b"").hex()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        prev = doc.get("prev")
        return cls(
            index=int(doc["index"]), recorded_at=datetime.fromisoformat(doc["recorded_at"]),
            event_id=uuid.UUID(doc["event_id"]), event_time=datetime.fromisoformat(doc["event_time"]),
            source=doc["source"], stream_type=doc["stream"]["type"], stream_id=doc["stream"]["id"],
            stream_version=int(doc["stream"]["version"]), action=doc["action"], actor_user=doc["actor"]["user"],
            actor_role=doc["actor"]["role"], actor_org=doc["actor"]["org"], household=doc.get("household"),
            payload_sha256=bytes.fromhex(doc["payload_sha256"]),
            prev_index=None if prev is None else int(prev["index"]),
            prev_leaf=None if prev is None else bytes.fromhex(prev["leaf_hash"]),
        )

    def canonical(self) -> bytes:
        """RFC 8785 bytes of `as_json()` (the sequencer and the offline verifier hash every entry). The entry's shape
        is fixed, so its keys are written straight in their sorted order, each string escaped by json's own encoder
        (as canonical_json's json.dumps escapes it): a third of building, checking and sorting the dict. Anything
        that path may not write as RFC 8785 does (an integer beyond 2^53 - 1, a field not of its type, a lone
        surrogate) goes through canonical_json."""
        prev_index, household = self.prev_index, self.household
        if (type(self.index) is not int or type(self.stream_version) is not int
                or (prev_index is not None and type(prev_index) is not int)
                or not -_SAFE_INT <= self.index <= _SAFE_INT or not -_SAFE_INT <= self.stream_version <= _SAFE_INT
                or (prev_index is not None and not -_SAFE_INT <= prev_index <= _SAFE_INT)
                or type(self.event_id) is not uuid.UUID or (household is not None and type(household) is not str)
                or not all(type(s) is str for s in (self.action, self.actor_org, self.actor_role, self.actor_user,
                                                     self.source, self.stream_id, self.stream_type))):
            return canonical_json(self.as_json())
        q = _quote
        prev = ("null" if prev_index is None
                else f'{{"index":{prev_index},"leaf_hash":"{(self.prev_leaf or b"").hex()}"}}')
        text = (f'{{"action":{q(self.action)},"actor":{{"org":{q(self.actor_org)},"role":{q(self.actor_role)},'
                f'"user":{q(self.actor_user)}}},"event_id":"{self.event_id}","event_time":"{ts(self.event_time)}",'
                f'"household":{"null" if household is None else q(household)},"index":{self.index},'
                f'"payload_sha256":"{self.payload_sha256.hex()}","prev":{prev},'
                f'"recorded_at":"{ts(self.recorded_at)}","source":{q(self.source)},"stream":{{"id":'
                f'{q(self.stream_id)},"type":{q(self.stream_type)},"version":{self.stream_version}}}}}')
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate: refused (or written) as canonical_json does
            return canonical_json(self.as_json())

    def leaf(self) -> bytes:
        return bytes(merkle.leaf_hash(self.canonical()))


def entry_for(event: RecordedEvent, index: int, recorded_at: datetime, payload: bytes,
              prev: tuple[int, bytes] | None) -> Entry:
    return Entry(
        index=index, recorded_at=recorded_at, event_id=event.id, event_time=event.time, source=event.source,
        stream_type=event.stream.type, stream_id=event.stream.id, stream_version=event.version, action=event.type,
        actor_user=event.actor.user, actor_role=event.actor.role.value, actor_org=event.actor.org,
        household=household_of(event), payload_sha256=hashlib.sha256(payload).digest(),
        prev_index=None if prev is None else prev[0], prev_leaf=None if prev is None else prev[1],
    )
