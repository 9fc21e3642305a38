"""The shared kernel: error envelope, request ids, stage metrics, internal HTTP client mapping."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel

from services import errors, telemetry
from services.app import install_common, sse_error_event
from services.httpclient import CircuitBreaker, ServiceClient
from services.settings import ServiceSettings


class Body(BaseModel):
    n: int


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        with telemetry.stage("unit_stage"):
            return {"n": body.n}

    @app.get("/raise/{kind}")
    async def boom(kind: str) -> None:
        table: dict[str, Exception] = {
            "notfound": errors.NotFoundError("nope"),
            "ratelimit": errors.RateLimitError("slow down", headers={"retry-after": "3"}),
            "unavailable": errors.DependencyUnavailableError("down", dependency="x"),
            "timeout": errors.DependencyTimeoutError("slow", dependency="x"),
            "secret": RuntimeError("password=hunter2 in a stack"),
        }
        raise table[kind]

    install_common(app, service="unit", settings=ServiceSettings())
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(("kind", "status", "type_"), [
    ("notfound", 404, "invalid_request_error"),
    ("ratelimit", 429, "rate_limit_error"),
    ("unavailable", 503, "server_error"),
    ("timeout", 504, "server_error"),
])
def test_errors_map_to_openai_envelope(client: TestClient, kind: str, status: int, type_: str) -> None:
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["type"] == type_
    if kind == "ratelimit":
        assert response.headers["retry-after"] == "3"


def test_unknown_error_is_generic_500_with_request_id(client: TestClient) -> None:
    response = client.get("/raise/secret", headers={"x-request-id": "req-123"})
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert "req-123" in response.json()["error"]["message"]


def test_malformed_json_and_wrong_types_are_400(client: TestClient) -> None:
    bad_json = client.post("/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    wrong = client.post("/echo", json={"n": "many"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["param"] == "n"


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.post("/echo", json={"n": 1}, headers={"x-request-id": "abc-1"}).headers["x-request-id"] == "abc-1"
    generated = client.post("/echo", json={"n": 1}).headers["x-request-id"]
    assert len(generated) == 32
    # an id that could inject into logs is replaced
    assert client.post("/echo", json={"n": 1}, headers={"x-request-id": "a b\tc"}).headers["x-request-id"] != "a b\tc"


def test_stage_histogram_and_route_template_labels(client: TestClient) -> None:
    before = REGISTRY.get_sample_value("ragd_stage_seconds_count", {"stage": "unit_stage"}) or 0.0
    client.post("/echo", json={"n": 2})
    assert REGISTRY.get_sample_value("ragd_stage_seconds_count", {"stage": "unit_stage"}) == before + 1
    client.get("/raise/notfound")
    text = client.get("/metrics").text
    assert 'route="/raise/{kind}"' in text
    assert 'route="/raise/notfound"' not in text


def test_sse_error_event_ends_with_done() -> None:
    raw = sse_error_event(errors.DependencyUnavailableError("down")).decode()
    first, second = [part for part in raw.split("\n\n") if part]
    assert json.loads(first.removeprefix("data: "))["error"]["code"] == "service_unavailable"
    assert second == "data: [DONE]"
    assert "boom" not in sse_error_event(ValueError("boom")).decode()


def _client(handler: httpx.MockTransport, **kwargs: object) -> ServiceClient:
    return ServiceClient("http://svc", dependency="svc", transport=handler, **kwargs)  # type: ignore[arg-type]


def test_http_client_maps_statuses_and_propagates_request_id() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-request-id", ""))
        if request.url.path == "/missing":
            return httpx.Response(404, json={"error": {"message": "no such thing", "type": "x", "code": "not_found"}})
        return httpx.Response(500, text="kaboom")

    async def run() -> None:
        token = telemetry.bind(telemetry.RequestContext(request_id="rid-7"))
        try:
            client = _client(httpx.MockTransport(handler), retries=1)
            with pytest.raises(errors.NotFoundError, match="no such thing"):
                await client.request("GET", "/missing")
            with pytest.raises(errors.DependencyError):
                await client.request("POST", "/fail")
            await client.aclose()
        finally:
            telemetry.unbind(token)

    asyncio.run(run())
    assert seen == ["rid-7", "rid-7"]  # POST is not retried; GET 404 is not a failure to retry


def test_idempotent_calls_retry_and_breaker_opens() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused")

    async def run() -> None:
        client = _client(httpx.MockTransport(handler), retries=2, breaker=CircuitBreaker(threshold=3, reset_s=60))
        with pytest.raises(errors.DependencyUnavailableError):
            await client.request("GET", "/x")
        assert calls == 3
        with pytest.raises(errors.DependencyUnavailableError, match="circuit open"):
            await client.request("GET", "/x")
        assert calls == 3
        await client.aclose()

    asyncio.run(run())


def test_log_lines_are_written_in_batches_and_survive_dict_config() -> None:
    import io
    import logging
    import logging.config
    import time

    stream = io.StringIO()
    handler = telemetry.BatchingHandler(stream, interval_s=0.02)
    handler.setFormatter(telemetry.JsonFormatter())
    logger = logging.getLogger("ragd.test.batching")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(50):
            logger.info("request", extra={"ragd": {"n": n}})
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # as uvicorn does
        logger.info("after dictConfig", extra={"ragd": {"n": 50}})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and stream.getvalue().count("\n") < 51:
            time.sleep(0.02)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [line["n"] for line in lines] == list(range(51))
        assert lines[-1]["msg"] == "after dictConfig" and lines[0]["logger"] == "ragd.test.batching"
    finally:
        logger.removeHandler(handler)
        handler.stop()


def test_log_lines_over_the_bound_are_dropped_and_said_so() -> None:
    import io
    import logging

    stream = io.StringIO()
    handler = telemetry.BatchingHandler(stream, interval_s=3600, max_pending=10)  # the writer sleeps
    handler.setFormatter(telemetry.JsonFormatter())
    try:
        for n in range(25):
            handler.emit(logging.LogRecord("ragd.t", logging.INFO, __file__, 1, "line %d", (n,), None))
        handler.flush()
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert lines[0]["msg"] == "log lines dropped" and lines[0]["dropped"] == 15
        assert [line["msg"] for line in lines[1:]] == [f"line {n}" for n in range(15, 25)]
    finally:
        handler.stop()


def test_request_ids_are_unique_and_unpatterned() -> None:
    ids = [telemetry.new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len({i[:8] for i in ids}) > 9_000  # no shared prefix or counter a client could read volume from
