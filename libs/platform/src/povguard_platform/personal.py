"""Personal data (个人信息: ID numbers, phones, health) masked wherever it appears in JSON. Every place that returns
it unmasked records the read (PersonalDataRead and the like); everything else returns it masked with these."""

from __future__ import annotations

from typing import Any

PERSONAL_FIELDS = ("id_number", "phone", "health", "disability_category")


def mask_id_number(number: str) -> str:
    """The region and the last four only (公示不得显示身份证号码)."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


def mask_personal(data: Any) -> Any:
    """JSON with ID numbers, phones and health facts masked, wherever they appear (member facts, event payloads)."""
    if isinstance(data, list):
        return [mask_personal(v) for v in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "id_number" and isinstance(value, str):
            out[key] = mask_id_number(value)
        elif key == "phone" and isinstance(value, str):
            out[key] = value[:3] + "****" + value[-4:]
        elif key == "health" and value:
            out[key] = ["***"]
        elif key == "disability_category" and value:
            out[key] = "***"
        elif isinstance(value, (dict, list)):  # only containers can hold more: a list page masks ~20 per member
            out[key] = mask_personal(value)
        else:
            out[key] = value
    return out
