"""Every operation of every service documents, in its OpenAPI, the problem details a client must handle: 400, 401,
403, 404, 409, 412, 413, 422, 428, 500 and 503 as application/problem+json with the Problem schema."""

from __future__ import annotations

import pytest

from povguard_platform.serve import app_for, service_definitions

PROBLEM = {"$ref": "#/components/schemas/Problem"}
STATUSES = {"400", "401", "403", "404", "409", "412", "413", "422", "428", "500", "503"}


@pytest.mark.parametrize("service", sorted(service_definitions()))
def test_every_operation_documents_its_problem_responses(service: str) -> None:
    spec = app_for(service).openapi()
    assert "Problem" in spec["components"]["schemas"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for status in STATUSES - ({"503"} if path == "/readyz" else set()):  # readiness says which check
                content = op["responses"].get(status, {}).get("content", {})
                if content.get("application/problem+json", {}).get("schema") != PROBLEM:
                    missing.append(f"{method.upper()} {path} {status}")
    assert not missing, missing[:20]
