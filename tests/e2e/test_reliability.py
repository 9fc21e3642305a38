"""Bad days through the HTTP API of a real embedded server: hostile uploads, admission control,
a client that disconnects mid-stream, the generator crashing and coming back, CORS, PII in logs."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator

import httpx
import pypdf
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.e2e

SUPERVISE_S = 6.0


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ragd-hardened")
    srv = start_server(tmp, {"RAGD_GATEWAY_MAX_IN_FLIGHT": "2", "RAGD_GATEWAY_MAX_UPLOAD_BYTES": "5000000",
                             "RAGD_LOG_TEXT": "true", "RAGD_GENERATOR_SUPERVISE_INTERVAL_S": str(SUPERVISE_S),
                             "RAGD_GENERATOR_BACKEND": "llm", "RAGD_GENERATOR_ABSTAIN": "false"})  # llama.cpp answers
    yield srv
    stop_server(srv.process)


def _llamacpp_port(server: Server) -> int:
    for line in server.log.read_text(errors="replace").splitlines():
        if "local llama.cpp generator started" in line:
            return int(re.search(r":(\d+)/v1", json.loads(line)["url"]).group(1))  # type: ignore[union-attr]
    raise AssertionError("no llama.cpp url in the server log")


def _pdf_bomb() -> bytes:
    stream = zlib.compress(b"0" * 300_000_000, 9)
    body = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
            b"4 0 obj<</Length " + str(len(stream)).encode() + b"/Filter/FlateDecode>>stream\n" + stream +
            b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF")
    return body


def _encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret-password")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# name -> (bytes, declared type, the statuses that are right, the error code when refused). The deeply
# nested page is parsed or refused within the parse deadline, depending on how busy the machine is.
HOSTILE = {
    "bomb.pdf": (_pdf_bomb, "application/pdf", {422}, None),
    "broken.pdf": (lambda: b"%PDF-1.7\n1 0 obj<</Type/Catalog" + b"\x00\xff" * 500, "application/pdf", {422}, None),
    "locked.pdf": (_encrypted_pdf, "application/pdf", {422}, None),
    "nested.html": (lambda: b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000, "text/html",
                    {200, 422}, None),
    "bad-utf8.txt": (lambda: b"caf\xc3 \xff\xfe broken \xed\xa0\x80 bytes", "text/plain", {415},
                     "unsupported_encoding"),
    "liar.pdf": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "application/pdf", {415},
                 "unsupported_file_type"),
    "exe.txt": (lambda: b"MZ\x90\x00" + b"\x00\x01\x02\xff" * 5000, "text/plain", {415}, "unsupported_file_type"),
}


def _default_collection(server: Server) -> tuple[int, str]:
    listed = httpx.get(server.openai_base + "/collections", timeout=60).json()["data"]
    info = next(c for c in listed if c["name"] == "default")
    return info["documents"], info["epoch"]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_upload_is_refused_clearly_while_the_server_keeps_answering_beside_a_valid_control(
        hardened: Server, name: str) -> None:
    make, content_type, statuses, code = HOSTILE[name]
    data = make()
    before = _default_collection(hardened)

    async def run() -> tuple[httpx.Response, list[float]]:
        async with httpx.AsyncClient(timeout=120) as client:
            upload = asyncio.create_task(client.post(
                hardened.openai_base + "/collections/default/files", files={"files": (name, data, content_type)}))
            latencies = []
            while not upload.done():
                start = time.perf_counter()
                assert (await client.get(hardened.base_url + "/health")).status_code == 200
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.2)
            return await upload, latencies

    response, latencies = asyncio.run(run())
    assert response.status_code in statuses, response.text
    if response.status_code == 200:
        assert response.json()["added"] == [name]
        assert "deep" in httpx.get(hardened.openai_base + f"/collections/default/documents/{name}",
                                   timeout=60).json()["text"]
    else:
        error = response.json()["error"]
        assert error["message"] and error["type"] == "invalid_request_error", error
        assert code is None or error["code"] == code, error
        assert _default_collection(hardened) == before  # nothing ingested, epoch unchanged
    assert max(latencies, default=0.0) < 5.0  # others were answered meanwhile
    control = httpx.post(hardened.openai_base + "/collections/default/files", timeout=120, files={
        "files": (f"control-{name}.txt", f"A valid note sent after {name}.".encode(), "text/plain")})
    assert control.status_code == 200 and control.json()["added"] == [f"control-{name}.txt"], control.text


def test_hundred_megabyte_single_line_is_refused(hardened: Server) -> None:
    line = b"a" * 100_000_000
    try:
        response = httpx.post(hardened.openai_base + "/collections/default/files",
                              files={"files": ("line.txt", line, "text/plain")}, timeout=120)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    except httpx.TransportError:
        pass  # the server may close the connection once it has said 413
    assert httpx.get(hardened.base_url + "/health", timeout=10).status_code == 200
    control = httpx.post(hardened.openai_base + "/collections/default/files", timeout=120,
                         files={"files": ("line-control.txt", b"a" * 1000 + b" and a short valid line", "text/plain")})
    assert control.status_code == 200 and control.json()["added"] == ["line-control.txt"], control.text


def test_over_capacity_is_a_fast_429(hardened: Server) -> None:
    body = {"model": "ragd", "max_tokens": 64, "messages": [{"role": "user", "content": "Tell me about tea."}],
            "stream": True}

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            async def one() -> httpx.Response:
                async with client.stream("POST", hardened.openai_base + "/chat/completions", json=body,
                                         headers={"cache-control": "no-cache"}) as response:
                    await response.aread()
                    return response

            return await asyncio.gather(*(one() for _ in range(6)))

    statuses = [r.status_code for r in asyncio.run(run())]
    assert 429 in statuses and 200 in statuses, statuses
    refused = httpx.post(hardened.openai_base + "/chat/completions", json={**body, "stream": False}, timeout=120)
    assert refused.status_code in (200, 429)
    metrics = httpx.get(hardened.base_url + "/metrics", timeout=10).text
    assert 'ragd_rate_limited_total{reason="admission"}' in metrics


def _processing(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(r"^llamacpp:requests_processing\s+(\S+)", text, re.M)
    assert match is not None, text[:500]
    return float(match.group(1))


def _disconnect_after_first_release(server: Server, port: int) -> bool:
    """Streams a long answer and hangs up at the first released content. True when llama.cpp was still
    generating at that moment; False when the answer was short enough to be finished by then (the
    hold-back window releases the first text only after its 64 characters), which tests nothing."""
    body = {"model": "ragd", "max_tokens": 1000, "stream": True, "temperature": 0.9,
            "messages": [{"role": "user", "content": "Write a very long essay about lighthouses and tea."}]}
    with httpx.stream("POST", server.openai_base + "/chat/completions", json=body, timeout=120,
                      headers={"cache-control": "no-cache"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content"' in line and '"role"' not in line:
                break
        return _processing(port) >= 1


def test_client_disconnect_cancels_generation_upstream(hardened: Server) -> None:
    port = _llamacpp_port(hardened)
    # A sampled answer is sometimes a one-line refusal, over before the first release: try again then.
    caught = any(_disconnect_after_first_release(hardened, port) for _ in range(4))
    assert caught, "llama.cpp never was mid-generation at the first released text in 4 tries"
    # The ~980 tokens left take this CPU model 10 s or more (70-100 tokens/s here, slower under load):
    # only a cancelled generation is over within a few seconds of the hang-up.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and _processing(port) > 0:
        time.sleep(0.1)
    assert _processing(port) == 0


def test_generator_crash_is_503_with_sources_then_recovers(hardened: Server) -> None:
    port = _llamacpp_port(hardened)
    pid = int(subprocess.run(["pgrep", "-f", f"generator.llamacpp.*--port {port}"], capture_output=True,
                             text=True).stdout.split()[0])
    body = {"model": "ragd", "max_tokens": 16, "messages": [{"role": "user", "content": "Where is Veldra Island?"}]}
    os.kill(pid, signal.SIGKILL)
    response = httpx.post(hardened.openai_base + "/chat/completions", json=body, timeout=60,
                          headers={"cache-control": "no-cache"})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and error["sources"]
    assert {"document_id", "chunk_id", "snippet"} <= set(error["sources"][0])
    assert "generator" in response.headers["x-ragd-degraded"]
    deadline = time.monotonic() + SUPERVISE_S + 60
    status = 503
    while time.monotonic() < deadline and status != 200:
        time.sleep(1)
        status = httpx.post(hardened.openai_base + "/chat/completions", json=body, timeout=60,
                            headers={"cache-control": "no-cache"}).status_code
    assert status == 200


def test_cors_is_off_by_default(hardened: Server) -> None:
    response = httpx.options(hardened.openai_base + "/chat/completions", timeout=10, headers={
        "origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_pii_is_redacted_before_retrieval_generation_and_logs(hardened: Server) -> None:
    email, phone = "jane.roe@example.com", "010-2345-6789"
    question = f"My email is {email} and my phone is {phone}. When was the Aurora Lighthouse built?"
    response = httpx.post(hardened.openai_base + "/chat/completions", timeout=120, json={
        "model": "ragd", "max_tokens": 32, "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 200
    assert email not in response.text and phone not in response.text
    deadline = time.monotonic() + 10  # log lines are written by a listener thread
    logged: list[dict[str, str]] = []
    while time.monotonic() < deadline and not any("Aurora Lighthouse" in e["question"] for e in logged):
        time.sleep(0.2)
        log = hardened.log.read_text(errors="replace")
        logged = [json.loads(line) for line in log.splitlines() if '"question"' in line]
    assert any("Aurora Lighthouse" in entry["question"] for entry in logged)
    assert email not in log and phone not in log
