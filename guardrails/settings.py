"""Settings of the guardrails service and of the in-process guard (env prefix ``RAGD_GUARDRAILS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from embeddings.e5_onnx import E5OnnxSettings
from services.cpus import capped_threads
from services.settings import ServiceSettings

__all__ = ["GuardrailsSettings", "default_model_path", "default_policy_path", "default_rules_path",
           "default_topics_path"]

_PACKAGE = Path(__file__).resolve().parent


def default_policy_path() -> Path:
    """The policy shipped with ragd."""
    return _PACKAGE / "policy.yaml"


def default_model_path() -> Path:
    """The injection classifier trained by ``ragd train guardrails`` and shipped with ragd."""
    return _PACKAGE / "model" / "injection.npz"


def default_rules_path() -> Path:
    """The pattern rules of the injection and extraction rails (YAML: id, category, language, regex, examples)."""
    return _PACKAGE / "rules.yaml"


def default_topics_path() -> Path:
    """The topic rail's intents (YAML: intent name -> example utterances)."""
    return _PACKAGE / "topics.yaml"


class GuardrailsSettings(ServiceSettings):
    """Where the policy, the classifier and the topic definitions live, and how the service runs."""

    model_config = SettingsConfigDict(env_prefix="RAGD_GUARDRAILS_", extra="ignore", frozen=True)

    port: int = Field(8003, ge=0, le=65535, description="TCP port of the guardrails service.")
    policy_path: Path = Field(default_factory=default_policy_path, description="Policy YAML file (versioned).")
    model_path: Path = Field(default_factory=default_model_path,
                             description="Injection classifier weights (.npz written by `ragd train guardrails`).")
    rules_path: Path = Field(default_factory=default_rules_path,
                             description="YAML file of the pattern rules (id, category, language, regex, examples).")
    topics_path: Path = Field(default_factory=default_topics_path,
                              description="YAML file of the topic rail's intents and their example utterances.")
    embedder_path: Path | None = Field(None, description="Sentence-transformers dir of a BERT mean-pooling model "
                                       "(model.safetensors, tokenizer.json) for the topic rail, run under ONNX "
                                       "Runtime; none: the packaged all-MiniLM-L6-v2.")
    threads: int = Field(2, ge=1, le=64, description="Worker threads for CPU-bound checks.")
    e5_onnx: E5OnnxSettings = Field(default_factory=E5OnnxSettings,
                                    description="ONNX Runtime options of the encoders (env RAGD_E5_ONNX_*): where "
                                                "their built graphs are cached.")
    semantic_threads: int = Field(
        default_factory=lambda: capped_threads(2), ge=1, le=64,
        description="ONNX Runtime threads of the classifier's semantic encoder (default 2, fewer when the container "
                    "has fewer CPUs), which runs beside the patterns and n-gram features: 2 shortens one check; "
                    "1 costs less CPU per check when many checks run at once.")
    max_text_chars: int = Field(32_000, ge=1, description="Longest text one check accepts, characters.")
    generator_url: str | None = Field(
        None, description="OpenAI-compatible base URL of an LLM for the optional self-check input rail "
                          "(policy input.self_check); none: that rail cannot be enabled.")
    generator_model: str = Field("ragd-llm", description="Model name sent to that LLM.")
    generator_api_key: str = Field("none", description="API key for that LLM, if it wants one.")
