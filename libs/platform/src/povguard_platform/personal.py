"""Personal data (个人信息: ID numbers, phones, health) masked wherever it appears in JSON. Every place that returns
it unmasked records the read (PersonalDataRead and the like); everything else returns it masked with these."""

from __future__ import annotations

from typing import Any

PERSONAL_FIELDS = ("id_number", "phone", "health", "disability_category")


def mask_id_number(number: str) -> str:
    """The region and the last four only (公示不得显示身份证号码)."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


def _masked(key: str, value: Any) -> Any:
    """A value of one of PERSONAL_FIELDS as shown masked; a value of another shape (none, a container) as it is."""
    if key == "id_number" and isinstance(value, str):
        return mask_id_number(value)
    if key == "phone" and isinstance(value, str):
        return value[:3] + "****" + value[-4:]
    if key in ("health", "disability_category") and value:
        return ["***"] if key == "health" else "***"
    return value


def mask_personal(data: Any) -> Any:
    """JSON with ID numbers, phones and health facts masked, wherever they appear (member facts, event payloads)."""
    if isinstance(data, list):
        return [mask_personal(v) for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in PERSONAL_FIELDS and (shown := _masked(key, value)) is not value:
            out[key] = shown
        elif isinstance(value, (dict, list)):  # only containers can hold more: a list page masks ~20 per member
            out[key] = mask_personal(value)
        else:
            out[key] = value
    return out


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """`mask_personal` of a flat record, one whose values hold no personal field further down (a member's facts:
    scalars and a list of health codes): the same result from a copy and four lookups, instead of a walk over every
    value (which was most of a list page's CPU: 500 households, about four members each)."""
    out = dict(record)
    for key in PERSONAL_FIELDS:
        if key in out:
            out[key] = _masked(key, out[key])
    return out
