"""A bounded property-based run of every service's OpenAPI document against the running system (`povguard up`):
schemathesis generates requests from each operation's schema, valid and not, sends them with a county official's
token, and checks that nothing is a server error and that every response matches the schema it documents.

Bounded: a few examples per operation (POVGUARD_FUZZ_EXAMPLES, default 6), derandomised so that a failure found
once is found again; `make fuzz` runs more."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from system_helpers import SERVICES, running_up

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.settings import Settings

EXAMPLES = int(os.environ.get("POVGUARD_FUZZ_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_up(tmp_path_factory.mktemp("fuzz")) as ports:
        yield {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}


def _token() -> str:
    return issue_token(Actor(user="fuzz", role=Role.COUNTY_BUREAU, org="533123"), Settings())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", SERVICES)
def test_no_operation_answers_with_a_server_error_or_outside_its_schema(service: str, system: dict[str, str]) -> None:
    base = system[service]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {_token()}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Unsatisfiable:
            continue
        except Exception as exc:  # every operation's failure, reported together with its curl reproduction
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:3000]}")
    assert operations > 3
    assert not failures, "\n".join(failures)

