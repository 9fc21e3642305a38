"""The optional LLM self-check input rail: the (already redacted) user text is put into the policy's
prompt and an OpenAI-compatible LLM answers whether it should be blocked, as NeMo Guardrails'
``self check input`` rail does. Off by default: it costs one generation per checked text (seconds on
CPU, tens of milliseconds on vLLM), so it runs only when the policy enables it and a generator is
configured, and only on texts the local rails let through.
"""

from __future__ import annotations

import re

import httpx

from guardrails.policy import SelfCheckRail

__all__ = ["SelfCheck", "SelfCheckError", "parse_answer"]

# The answer's first word: "Yes." / "**No**" / "예" / "아니요" ("Not sure" and "Nothing" are neither).
_YES = re.compile(r"(?:yes|예|네)(?![a-z])")
_NO = re.compile(r"(?:no|아니)(?![a-z])")


class SelfCheckError(RuntimeError):
    """The LLM could not be asked, or its answer was neither yes nor no: the rail fails as its policy says."""


def parse_answer(answer: str) -> bool:
    """True when the LLM says the text should be blocked."""
    word = answer.strip().strip("\"'*.:").lower()
    if _YES.match(word):
        return True
    if _NO.match(word):
        return False
    raise SelfCheckError(f"self-check answer is neither yes nor no: {answer[:40]!r}")


class SelfCheck:
    """Asks one LLM (``base_url`` as for the OpenAI client, e.g. ``http://vllm:8000/v1``)."""

    def __init__(self, base_url: str, *, model: str, api_key: str, policy: SelfCheckRail) -> None:
        self._policy = policy
        self._model = model
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=policy.timeout_s,
                                    headers={"Authorization": f"Bearer {api_key}"})

    def should_block(self, text: str) -> bool:
        body = {"model": self._model, "temperature": 0.0, "max_tokens": 4,
                "messages": [{"role": "user", "content": self._policy.prompt.replace("{user_input}", text)}]}
        try:
            response = self._client.post("/chat/completions", json=body)
            response.raise_for_status()
            answer = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise SelfCheckError(f"self-check LLM failed: {type(exc).__name__}") from exc
        return parse_answer(str(answer))

    def close(self) -> None:
        self._client.close()
