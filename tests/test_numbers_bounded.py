"""Every number an event carries or a request body brings has a lower and an upper bound (povguard_contracts.numbers):
a new bare `float` or unbounded `int` in a payload or an API schema fails here, before a tester finds that NaN, 1e16
or 2**60 gets stored and then fails the audit ledger (its canonical JSON refuses integers beyond 2**53). Query and
path parameters are the web edge's (int64 checks in povguard_platform.web)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import povguard_audit.events  # noqa: F401  (registers the audit service's own events)
import povguard_contracts  # noqa: F401  (registers every event type)
from povguard_contracts.catalogue import CATALOGUE
from povguard_platform.settings import Settings
from povguard_platform.web import create_app

SERVICES = ("intake", "assessment", "review", "support", "audit")
OURS = {"povguard_contracts", *(f"povguard_{s}" for s in SERVICES)}  # not the event types tests register
EVENT_TYPES = sorted(t for t, cls in CATALOGUE.types().items() if cls.__module__.split(".")[0] in OURS)


def unbounded(node: Any, path: str, defs: dict[str, Any], seen: set[str]) -> list[str]:
    """Paths of the numbers under a JSON schema node that lack a minimum or a maximum."""
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in unbounded(item, f"{path}[{i}]", defs, seen)]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return unbounded(defs[name], name, defs, seen)
    out = []
    if node.get("type") in ("number", "integer") and not (
            {"minimum", "exclusiveMinimum"} & node.keys() and {"maximum", "exclusiveMaximum"} & node.keys()):
        out.append(path)
    return out + [p for key, value in node.items() for p in unbounded(value, f"{path}.{key}", defs, seen)]


def test_the_contracts_amounts_are_the_shared_types() -> None:
    """The test below relies on the schemas; check once that the shared types put their bounds there."""
    from povguard_contracts.intake import IncomeLines

    wages = IncomeLines.model_json_schema()["properties"]["wages"]
    assert {"minimum": 0, "maximum": 1e9}.items() <= wages["anyOf"][0].items()


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_number_of_every_event_is_bounded(event_type: str) -> None:
    schema = CATALOGUE.payload_class(event_type).model_json_schema()
    assert unbounded(schema, event_type, schema.get("$defs", {}), set()) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_number_of_every_request_body_is_bounded(service: str) -> None:
    definition = importlib.import_module(f"povguard_{service}.service").SERVICE
    spec = create_app(definition, Settings()).openapi()
    defs = spec.get("components", {}).get("schemas", {})
    found = [p for path, operations in spec["paths"].items() for method, op in operations.items()
             for media in op.get("requestBody", {}).get("content", {}).values()
             for p in unbounded(media["schema"], f"{method.upper()} {path}", defs, set())]
    assert found == []
