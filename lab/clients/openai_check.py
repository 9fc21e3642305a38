"""The official openai SDK against a running ragd, over every route it covers: models, chat completions
(plain and streamed, citations in the body and in headers), legacy completions (plain and streamed),
embeddings (questions and passages), errors in the OpenAI envelope, and the upload route with curl's multipart.

Run: ``python -m lab.clients.openai_check --base-url http://127.0.0.1:8080/v1`` (exit status 0 when all hold).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import openai

from lab.clients.report import client_arguments, run_checks

QUESTION_EN = "What does hybrid retrieval combine?"
QUESTION_KO = "하이브리드 검색은 무엇을 결합하나요?"


def _client(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=300)


def check_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert "ragd" in ids and "ragd-embed" in ids, ids


def check_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="ragd", messages=[{"role": "user", "content": QUESTION_EN}], max_tokens=64)
    completion = raw.parse()
    assert completion.choices[0].message.content, completion
    citations = (completion.model_extra or {}).get("citations")
    assert citations, "no citations in the body"
    assert json.loads(raw.headers["x-ragd-citations"]), "no citations in the headers"


def check_chat_stream(client: openai.OpenAI) -> None:
    text, citations = "", None
    for chunk in client.chat.completions.create(model="ragd", messages=[{"role": "user", "content": QUESTION_KO}],
                                                max_tokens=64, stream=True):
        citations = (chunk.model_extra or {}).get("citations") or citations
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text.strip() and "\ufffd" not in text, text
    assert citations, "no citations in the stream"


def check_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="ragd", prompt=QUESTION_EN, max_tokens=64)
    assert completion.choices[0].text.strip() and (completion.model_extra or {}).get("citations")
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="ragd", prompt=QUESTION_KO, max_tokens=64, stream=True) if c.choices)
    assert text.strip(), "empty streamed completion"


def check_embeddings(client: openai.OpenAI) -> None:
    query = client.embeddings.create(model="ragd-embed", input=QUESTION_EN)
    passages = client.embeddings.create(model="ragd-embed:passage", input=["Hybrid retrieval fuses BM25. " * 200])
    assert len(query.data[0].embedding) == len(passages.data[0].embedding) > 0


def check_errors(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    except openai.NotFoundError as exc:
        assert isinstance(exc.body, dict) and exc.body.get("code") == "model_not_found"
    else:
        raise AssertionError("an unknown model was served")
    try:
        client.completions.create(model="ragd", prompt="")
    except openai.BadRequestError as exc:
        assert isinstance(exc.body, dict) and exc.body.get("param") == "prompt"
    else:
        raise AssertionError("an empty prompt was served")


def check_upload(client: openai.OpenAI) -> None:
    """The upload route as the README shows it: curl's multipart (``-F files=@...``) into a new collection,
    then the file is searchable and answers a question with its citation; the collection is removed after."""
    name = f"clients-{uuid.uuid4().hex[:8]}"
    base = str(client.base_url).rstrip("/")
    def call(method: str, path: str, body: object = None) -> object:
        request = urllib.request.Request(base + path, method=method, headers={
            "authorization": f"Bearer {client.api_key}", "content-type": "application/json"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=300) as response:  # raises on 4xx/5xx
            data = response.read()
        return json.loads(data) if data else None

    call("POST", "/collections", {"name": name})
    try:
        with tempfile.TemporaryDirectory() as folder:
            note = Path(folder) / "harbour-note.txt"
            note.write_text("The Marrow Harbour ferry leaves at 7:40 every morning and crosses in 25 minutes.\n")
            done = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-F", f"files=@{note}",
                                   "-F", 'metadata={"team": "ops"}', f"{base}/collections/{name}/files"],
                                  capture_output=True, text=True, timeout=300, check=True)
        body, status = done.stdout.rsplit("\n", 1)
        assert status in ("200", "201"), f"HTTP {status}: {body}"
        found = call("POST", f"/collections/{name}/search",
                     {"query": "When does the Marrow Harbour ferry leave?", "top_k": 1})
        assert isinstance(found, dict) and found["data"][0]["doc_id"] == "harbour-note.txt", found
        answer = client.chat.completions.create(model="ragd", messages=[{"role": "user", "content": (
            "When does the Marrow Harbour ferry leave?")}], extra_body={"ragd": {"collection": name}})
        citations = (answer.model_extra or {}).get("citations") or []
        assert "7:40" in (answer.choices[0].message.content or ""), answer
        assert [c["document_id"] for c in citations] == ["harbour-note.txt"], citations
    finally:
        call("DELETE", f"/collections/{name}")


CHECKS: dict[str, Callable[[openai.OpenAI], None]] = {
    "models": check_models, "chat": check_chat, "chat_stream": check_chat_stream,
    "completions": check_completions, "embeddings": check_embeddings, "errors": check_errors,
    "upload": check_upload,
}


def main(argv: list[str] | None = None) -> int:
    args = client_arguments(__doc__.splitlines()[0], argv)
    client = _client(args.base_url, args.api_key)
    return run_checks("openai", {name: partial(check, client) for name, check in CHECKS.items()}, args.results)


if __name__ == "__main__":
    sys.exit(main())
