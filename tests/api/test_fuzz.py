"""schemathesis against /openapi.json: generated requests for every operation find no 5xx
and no response that breaks the documented schema.

Every default check runs but one: ``positive_data_acceptance`` expects any schema-valid
request to be accepted, while forgeflow validates a create request against the *chosen
template* (its variables, choices and patterns), which no static schema can express. Those
refusals are 400s in the error contract, which the other checks verify."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support import ThreadedServer

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def live(settings, make_key):
    key = make_key()
    # No worker: projects stay queued, and steering calls fall back to signals after a
    # short wait, so every operation is exercised quickly and deterministically.
    fast = settings.model_copy(update={"rate_limit_per_minute": 0, "update_timeout": timedelta(seconds=0.3)})
    with ThreadedServer(fast) as server:
        yield server, {"X-API-Key": key.key}


def test_generated_requests_find_no_server_error(live):
    server, auth = live
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case) -> None:
            case.call_and_validate(base_url=server.url, headers=auth, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
