"""langchain-openai against a running ragd: invoke, stream, embeddings, citations reachable.

Runs in its own virtualenv with ``langchain-openai`` (no ragd import). ``ChatOpenAI`` drops unknown body
fields, so citations come from response headers (``include_response_headers=True``): ``x-ragd-citations``
on an answer, ``x-ragd-sources`` (the numbered sources) on a stream. ``OpenAIEmbeddings`` needs
``check_embedding_ctx_length=False`` (else it sends tiktoken ids, and tiktoken first downloads its BPE file).

Run: ``python lab/clients/langchain_check.py --base-url http://127.0.0.1:8080/v1``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from lab.clients.report import client_arguments, run_checks


def check_invoke(base_url: str, api_key: str) -> None:
    llm = ChatOpenAI(model="ragd", base_url=base_url, api_key=api_key, include_response_headers=True,
                     max_tokens=64, max_retries=0, timeout=300)
    message = llm.invoke("What does hybrid retrieval combine?")
    assert isinstance(message.content, str) and message.content.strip()
    citations = json.loads(message.response_metadata["headers"]["x-ragd-citations"])
    assert citations and {"index", "document_id", "title"} <= set(citations[0]), citations


def check_stream(base_url: str, api_key: str) -> None:
    llm = ChatOpenAI(model="ragd", base_url=base_url, api_key=api_key, include_response_headers=True,
                     max_tokens=64, max_retries=0, timeout=300, streaming=True)
    text, headers = "", None
    for chunk in llm.stream("하이브리드 검색은 무엇을 결합하나요?"):
        text += chunk.content if isinstance(chunk.content, str) else ""
        headers = headers or chunk.response_metadata.get("headers")
    assert text.strip(), "empty stream"
    assert headers is not None
    sources: list[dict[str, Any]] = json.loads(headers.get("x-ragd-sources") or headers["x-ragd-citations"])
    assert sources, "no sources reachable from the stream"


def check_embeddings(base_url: str, api_key: str) -> None:
    documents = OpenAIEmbeddings(model="ragd-embed:passage", base_url=base_url, api_key=api_key,
                                 check_embedding_ctx_length=False, max_retries=0)
    queries = OpenAIEmbeddings(model="ragd-embed", base_url=base_url, api_key=api_key,
                               check_embedding_ctx_length=False, max_retries=0)
    vectors = documents.embed_documents(["Short passage.", "A long document. " * 400])
    query = queries.embed_query("What is a long document?")
    assert len(vectors) == 2 and len(vectors[0]) == len(query) > 0


CHECKS: dict[str, Callable[[str, str], None]] = {
    "invoke": check_invoke, "stream": check_stream, "embeddings": check_embeddings}


def main(argv: list[str] | None = None) -> int:
    args = client_arguments("langchain against ragd", argv)
    checks = {name: partial(check, args.base_url, args.api_key) for name, check in CHECKS.items()}
    return run_checks("langchain", checks, args.results)


if __name__ == "__main__":
    sys.exit(main())
