"""Which requests may read from or write to the cache: a small pure function the gateway calls."""

from __future__ import annotations

from dataclasses import dataclass

from services.contracts import GenerationParams

__all__ = ["Eligibility", "cache_directives", "eligibility"]


@dataclass(frozen=True, slots=True)
class Eligibility:
    read: bool
    write: bool


def cache_directives(cache_control: str | None) -> set[str]:
    """The directive names of a ``Cache-Control`` header, lower-cased (``max-age=0`` -> ``max-age``)."""
    if not cache_control:
        return set()
    return {part.split("=", 1)[0].strip().lower() for part in cache_control.split(",")}


def eligibility(params: GenerationParams, cache_control: str | None, *, max_temperature: float) -> Eligibility:
    """``Cache-Control: no-cache`` skips the read, ``no-store`` the write; sampling hotter than
    ``max_temperature`` does neither (a sampled answer is not *the* answer)."""
    if params.temperature > max_temperature:
        return Eligibility(read=False, write=False)
    directives = cache_directives(cache_control)
    return Eligibility(read="no-cache" not in directives, write="no-store" not in directives)
