"""Settings shared by every ragd service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings", "default_data_dir"]


def default_data_dir() -> Path:
    """Where embedded mode keeps its state (Chroma files, BM25 indexes) unless told otherwise."""
    return Path.cwd() / ".ragd"


class ServiceSettings(BaseSettings):
    """Fields every service has. Env prefix ``RAGD_``; services add their own prefix on top."""

    model_config = SettingsConfigDict(env_prefix="RAGD_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0 picks a free one).")
    log_level: str = Field("INFO", description="Python log level name for the JSON logs.")
    log_text: bool = Field(False, description="Also log prompt and answer text (off: only ids, sizes, latencies).")
    data_dir: Path = Field(default_factory=default_data_dir, description="Directory for persistent local state.")
    redis_url: str | None = Field(
        None, description="Redis URL for shared state (cache, epochs, limits); none: in-process.")
    request_timeout_s: float = Field(60.0, gt=0, description="Default deadline of one request, seconds.")
