"""llama-index against a running ragd: chat, stream_chat, complete (``/v1/completions``), embeddings with
passages embedded as passages, citations reachable (``response.raw`` is the openai response object).

Runs in its own virtualenv with llama-index-core, llama-index-llms-openai-like and
llama-index-embeddings-openai (no ragd import). ``OpenAIEmbedding`` takes ``model_name=`` (``model=`` is
checked against OpenAI's list); its document engine is ``ragd-embed:passage`` and its query engine
``ragd-embed``.

Run: ``python lab/clients/llamaindex_check.py --base-url http://127.0.0.1:8080/v1``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from llama_index.core.llms import ChatMessage
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai_like import OpenAILike

from lab.clients.report import client_arguments, run_checks


def _citations(raw: Any) -> list[Any]:
    extra = getattr(raw, "model_extra", None) or (raw if isinstance(raw, dict) else {})
    return list(extra.get("citations") or [])


def _llm(base_url: str, api_key: str, *, chat: bool) -> OpenAILike:
    return OpenAILike(model="ragd", api_base=base_url, api_key=api_key, is_chat_model=chat, max_tokens=64,
                      timeout=300, max_retries=0)


def check_chat(base_url: str, api_key: str) -> None:
    response = _llm(base_url, api_key, chat=True).chat([ChatMessage(role="user", content="What is RRF?")])
    assert response.message.content and _citations(response.raw), response.raw


def check_stream_chat(base_url: str, api_key: str) -> None:
    text, citations = "", list[Any]()
    for chunk in _llm(base_url, api_key, chat=True).stream_chat(
            [ChatMessage(role="user", content="코퍼스 에포크는 무엇인가요?")]):
        text = chunk.message.content or text
        citations = _citations(chunk.raw) or citations
    assert text.strip() and citations, (text, citations)


def check_complete(base_url: str, api_key: str) -> None:
    response = _llm(base_url, api_key, chat=False).complete("What does the semantic cache store?")
    assert response.text.strip() and _citations(response.raw), response.raw
    streamed = "".join(c.delta or "" for c in _llm(base_url, api_key, chat=False).stream_complete(
        "What does the semantic cache store?"))
    assert streamed.strip()


def check_embeddings(base_url: str, api_key: str) -> None:
    embed = OpenAIEmbedding(model_name="ragd-embed:passage", api_base=base_url, api_key=api_key, max_retries=0)
    embed._query_engine = "ragd-embed"  # questions as e5 queries, documents as passages
    passages = embed.get_text_embedding_batch(["A short passage.", "A long document. " * 400])
    query = embed.get_query_embedding("What is a long document?")
    assert len(passages) == 2 and len(passages[0]) == len(query) > 0


CHECKS: dict[str, Callable[[str, str], None]] = {
    "chat": check_chat, "stream_chat": check_stream_chat, "complete": check_complete,
    "embeddings": check_embeddings}


def main(argv: list[str] | None = None) -> int:
    args = client_arguments("llamaindex against ragd", argv)
    checks = {name: partial(check, args.base_url, args.api_key) for name, check in CHECKS.items()}
    return run_checks("llamaindex", checks, args.results)


if __name__ == "__main__":
    sys.exit(main())
