"""Token-aware context packing: the prompt (system text, earlier turns, numbered sources, question) plus the
answer's ``max_tokens`` must fit the served model's window; the lowest-ranked sources go first.

Tokens are counted by the served model's own tokenizer (``POST /tokenize`` on llama.cpp's server and on vLLM);
where that is unavailable, by a character estimate that errs long.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import httpx

from services.contracts import ChatMessage, ScoredChunk

__all__ = ["ContextPacker", "ServerTokenizer", "estimate_tokens"]

_log = logging.getLogger("ragd.generator")
MESSAGE_OVERHEAD = 8  # chat-template tokens around each message (role markers, separators)


def estimate_tokens(text: str) -> int:
    """An upper-side estimate: a Hangul syllable or CJK character ~1 token, other text ~3 characters a token."""
    wide = sum(1 for ch in text if ord(ch) >= 0x1100)
    return wide + math.ceil((len(text) - wide) / 3)


class ServerTokenizer:
    """Counts with the model server's ``/tokenize`` (the server root, beside ``/v1``); estimates on failure."""

    def __init__(self, base_url: str, *, model: str, timeout_s: float = 5.0) -> None:
        root = base_url.rstrip("/")
        self.root = root[: -len("/v1")] if root.endswith("/v1") else root
        self.model = model
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._window: int | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def count(self, text: str) -> int:
        try:  # llama.cpp reads "content"; vLLM reads "model" and "prompt"
            response = await self._http.post(f"{self.root}/tokenize",
                                             json={"content": text, "prompt": text, "model": self.model})
            response.raise_for_status()
            body = response.json()
            return int(body["count"]) if "count" in body else len(body["tokens"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return estimate_tokens(text)

    async def window(self, default: int) -> int:
        """The model's context length as vLLM reports it (``max_model_len`` in ``/v1/models``), else ``default``."""
        if self._window is None:
            self._window = default
            try:
                response = await self._http.get(f"{self.root}/v1/models")
                response.raise_for_status()
                models = response.json().get("data", [])
                if models and models[0].get("max_model_len"):
                    self._window = int(models[0]["max_model_len"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                pass
        return self._window


class ContextPacker:
    """Fits a prompt into the window by dropping sources from the end (the lowest-ranked first)."""

    def __init__(self, tokenizer: ServerTokenizer, *, window: int | None, default_window: int = 4096) -> None:
        self.tokenizer = tokenizer
        self._window = window
        self._default = default_window

    async def tokens(self, messages: Sequence[ChatMessage]) -> int:
        return await self.tokenizer.count("\n".join(m.content for m in messages)) + MESSAGE_OVERHEAD * len(messages)

    async def pack(self, build: Callable[[Sequence[ScoredChunk]], list[ChatMessage]], chunks: Sequence[ScoredChunk],
                   max_tokens: int) -> tuple[list[ChatMessage], list[ScoredChunk]]:
        """The messages built from as many of ``chunks`` (in order) as fit with ``max_tokens`` to spare."""
        window = self._window or await self.tokenizer.window(self._default)
        kept = list(chunks)
        while True:
            messages = build(kept)
            used = await self.tokens(messages)
            if used + max_tokens <= window or not kept:
                if len(kept) < len(chunks):
                    _log.info("sources dropped to fit the model's window",
                              extra={"ragd": {"kept": len(kept), "given": len(chunks), "prompt_tokens": used,
                                              "max_tokens": max_tokens, "window": window}})
                return messages, kept
            kept.pop()
