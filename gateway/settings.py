"""Settings of the gateway (env prefix ``RAGD_GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings):
    """The public API: auth, limits, the pipeline's knobs and where the other pieces are."""

    model_config = SettingsConfigDict(env_prefix="RAGD_GATEWAY_", extra="ignore", frozen=True)

    # where the pieces are (empty: in process)
    retriever_url: str | None = Field(None, description="Base URL of the retriever service; none: in process.")
    guardrails_url: str | None = Field(None, description="Base URL of the guardrails service; none: in process.")
    generator_url: str | None = Field(None, description="OpenAI-compatible base URL (vLLM); none: local llama.cpp.")
    generator_model: str = Field("ragd-llm", description="Model name sent to the generator server.")
    dependency_timeout_s: float = Field(30.0, gt=0, description="Timeout of one internal call, seconds.")

    # access
    api_keys_file: Path | None = Field(
        None, description="JSON/YAML file of API keys: [{key|key_sha256, tenant, role}].",
    )
    api_keys: str = Field("", description="Inline keys 'key:tenant:role,...' (dev only; prefer api_keys_file).")
    default_tenant: str = Field("default", description="Tenant of requests when no API keys are configured.")
    auth: Literal["auto", "open", "keys"] = Field(
        "auto", description="open: no keys, loopback only, one tenant; keys: every request needs a key; auto: "
                            "keys when a keys file, inline keys or an active stored key exist at start, else open.")
    key_store: Literal["auto", "redis", "file"] = Field(
        "auto", description="Where stored keys live: redis (RAGD_REDIS_URL), file (keys/keys.json under "
                            "RAGD_DATA_DIR), auto: redis when a Redis URL is set, else file.")
    key_store_prefix: str = Field("ragd:keys:", min_length=1, description="Prefix of the key store's Redis keys.")
    key_store_timeout_s: float = Field(1.0, gt=0, le=30, description="Timeout of one key-store call to Redis, seconds.")
    key_cache_ttl_s: float = Field(
        0.5, ge=0, le=1, description="Seconds a replica reuses a stored key's lookup (revocation delay), at most 1.")
    key_touch_interval_s: float = Field(
        60.0, ge=1, description="Seconds between writes of a stored key's last-used time.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty: CORS off.")

    # corpus
    default_collection: str = Field("default", description="Collection searched by the model name 'ragd'.")
    demo_corpus: Path | None = Field(None, description="Folder ingested into the default collection on first start.")

    # pipeline
    top_k: int = Field(4, ge=1, le=20, description="Sources given to the generator per question.")
    source_chars: int = Field(700, ge=100, le=8000, description="Characters of each source put in the prompt.")
    system_prompt: str | None = Field(None, description="Replaces the default RAG system prompt.")
    rewrite_follow_ups: bool = Field(True, description="Rewrite multi-turn follow-ups into standalone questions.")
    guard_input_fail_open: bool | None = Field(
        None, description="Guardrails down: serve input unchecked (true) or 503 (false); none: the policy's.")
    guard_output_fail_open: bool | None = Field(
        None, description="Guardrails down: release output unchecked (true) or fail (false); none: the policy's.")
    references: Literal["fields", "markdown"] = Field(
        "fields", description="Where answers carry their citations: 'fields' (the citations/sources extension "
                              "fields) or 'markdown' (also a numbered reference list with titles appended to the "
                              "answer text, for clients that show only text); a request's ragd.references wins.")
    task_answers: Literal["auto", "extractive", "generate"] = Field(
        "auto", description="How a chat frontend's task requests (title, tags, follow-ups) are answered: "
                            "'extractive' from the chat's own words, 'generate' by the generator without retrieval "
                            "(falling back to extractive when its answer cannot be parsed), 'auto' generate when "
                            "generator_url is set, else extractive.")
    stream_holdback_chars: int | None = Field(
        None, ge=0, le=4096, description="Streamed characters held back for the output rails; none: the policy's.")

    # limits
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest JSON request body, bytes.")
    max_upload_bytes: int = Field(20_000_000, ge=1024, description="Largest multipart upload, bytes.")
    max_messages: int = Field(64, ge=1, description="Most messages in one chat request.")
    max_prompt_chars: int = Field(32_000, ge=100, description="Most characters over all messages of a request.")
    max_tokens_limit: int = Field(1024, ge=1, description="Largest max_tokens a client may ask for.")
    default_max_tokens: int = Field(256, ge=1, description="max_tokens when the client gives none.")
    max_documents_per_request: int = Field(256, ge=1, description="Most documents in one ingest request.")
    max_embedding_inputs: int = Field(
        256, ge=1, le=2048,
        description="Most texts in one /v1/embeddings request (OpenAI allows 2,048; on a CPU each text costs "
                    "milliseconds, so this bounds one request's work).")
    max_in_flight: int = Field(64, ge=1, description="Admission: requests served at once before a fast 429.")
    rate_limit_rpm: int = Field(0, ge=0, description="Requests per minute per key (0: unlimited).")
    rate_limit_tpm: int = Field(0, ge=0, description="Tokens per minute per key (0: unlimited).")
    metrics_port: int | None = Field(
        None, ge=1, le=65535,
        description="Internal TCP port of /metrics and /ready?deep=1 (Prometheus, operators), on the same interface "
                    "as the API; the API port then answers them with 404. None: they answer on the API port only "
                    "while it listens on loopback.")
    gil_switch_interval_ms: float = Field(
        1.0, gt=0, le=100,
        description="The gateway process's GIL switch interval, ms (CPython's default is 5): how long a thread "
                    "that needs the GIL back (the cache's question embedding, finishing beside the input rails) "
                    "can wait for one running Python code; a shorter interval hands it over sooner.")
