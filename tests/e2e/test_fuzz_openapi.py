"""Bounded fuzzing of the public API from its own OpenAPI schema: no 5xx, responses match the schema,
and afterwards the server still answers the README's example (no request can lock open mode).

Each operation gets a fixed number of generated cases (derandomized, so a failure reproduces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.e2e.conftest import Server, ask_like_the_readme, start_server, stop_server

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ragd-fuzz")
    # a small max_tokens limit keeps valid random chat requests quick on the CPU model
    srv = start_server(tmp, {"RAGD_GATEWAY_MAX_TOKENS_LIMIT": "4", "RAGD_GATEWAY_DEFAULT_MAX_TOKENS": "4"})
    yield srv
    stop_server(srv.process)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzz_server.base_url + "/openapi.json")


def _fuzz(operation: Any, calls: dict[str, int]) -> Callable[[], None]:
    """A hypothesis test of one operation, counting the cases it sends."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(checks=[checks.not_a_server_error, checks.response_schema_conformance], timeout=120)
        calls[operation.label] = calls.get(operation.label, 0) + 1

    return run


def test_api_never_answers_5xx_and_matches_its_schema(api_schema: schemathesis.BaseSchema,
                                                      fuzz_server: Server) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    calls: dict[str, int] = {}
    for operation in operations:
        _fuzz(operation, calls)()
    assert len(calls) == len(operations), calls  # every operation was exercised
    assert sum(calls.values()) >= 6 * len(operations), calls
    text, citations = ask_like_the_readme(fuzz_server, max_tokens=4)  # still open: the README client is answered
    assert text.strip() and citations
