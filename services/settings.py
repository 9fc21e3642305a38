"""Settings shared by every ragd service; each service subclasses with its own env prefix.

``host`` and ``port`` follow the service's prefix (``RAGD_RETRIEVER_PORT``); the shared fields below
(data dir, Redis, logging, request deadline) are read from ``RAGD_*`` whatever the prefix, so one
environment configures a whole topology.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SHARED_ENV", "ServiceSettings", "default_data_dir"]

SHARED_ENV = ("RAGD_LOG_LEVEL", "RAGD_LOG_TEXT", "RAGD_DATA_DIR", "RAGD_REDIS_URL", "RAGD_REQUEST_TIMEOUT_S")


def default_data_dir() -> Path:
    """Where embedded mode keeps its state (Chroma files, BM25 indexes) unless told otherwise."""
    return Path.cwd() / ".ragd"


def _shared(name: str) -> AliasChoices:
    return AliasChoices(f"RAGD_{name.upper()}", name)


class ServiceSettings(BaseSettings):
    """Fields every service has. Env prefix ``RAGD_``; services add their own prefix on top."""

    model_config = SettingsConfigDict(env_prefix="RAGD_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0 picks a free one).")
    log_level: str = Field("INFO", validation_alias=_shared("log_level"),
                           description="Python log level name for the JSON logs.")
    log_text: bool = Field(False, validation_alias=_shared("log_text"),
                           description="Also log prompt and answer text (off: only ids, sizes, latencies).")
    data_dir: Path = Field(default_factory=default_data_dir, validation_alias=_shared("data_dir"),
                           description="Directory for persistent local state.")
    redis_url: str | None = Field(None, validation_alias=_shared("redis_url"),
                                  description="Redis URL for shared state (cache, epochs, limits); none: in-process.")
    request_timeout_s: float = Field(120.0, gt=0, validation_alias=_shared("request_timeout_s"),
                                     description="Default deadline of one request, seconds.")
