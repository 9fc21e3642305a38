"""Metrics, request context and JSON logs shared by every ragd service.

Metric names are the contract with ``deploy/`` dashboards and alerts: every name is prefixed
``ragd_`` and every label value is bounded (route templates, stage names, error types; never raw
paths, user text or ids).
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import logging.handlers
import queue
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.contracts import GuardDecision

__all__ = [
    "CACHE_EVICTIONS",
    "CACHE_LOOKUPS",
    "CACHE_STORES",
    "DEGRADATIONS",
    "GENERATION_TOKENS_PER_SECOND",
    "GUARDRAIL_DECISIONS",
    "IN_FLIGHT",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "STAGE_SECONDS",
    "TIME_TO_FIRST_TOKEN",
    "TOKENS",
    "RequestContext",
    "configure_logging",
    "count_guard_decision",
    "current",
    "new_request_id",
    "stage",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "ragd_requests", "HTTP requests answered, by service, route template, method and status.",
    ["service", "route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "ragd_request_seconds", "HTTP request latency (to the last byte), by service and route template.",
    ["service", "route"], buckets=_LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("ragd_in_flight_requests", "Requests being served now, by service.", ["service"])
STAGE_SECONDS = Histogram(
    "ragd_stage_seconds", "Latency of each pipeline stage (auth, guard_input, cache_lookup, retrieve, "
    "rerank, generate, guard_output, ...).", ["stage"], buckets=_LATENCY_BUCKETS,
)
CACHE_LOOKUPS = Counter("ragd_cache_lookups", "Answer-cache lookups by outcome (exact, semantic, miss, bypass).",
                        ["outcome"])
CACHE_STORES = Counter("ragd_cache_stores", "Answer-cache stores by result (stored, skipped, failed).", ["result"])
CACHE_EVICTIONS = Counter("ragd_cache_evictions", "Answer-cache entries evicted (size bound or old epoch).")
GUARDRAIL_DECISIONS = Counter(
    "ragd_guardrail_decisions", "Guardrail decisions by kind (input/output), rail and action.",
    ["kind", "rail", "action"],
)
TOKENS = Counter("ragd_tokens", "Tokens in and out of the generator.", ["direction"])
TIME_TO_FIRST_TOKEN = Histogram(
    "ragd_time_to_first_token_seconds", "From request start to the first streamed content byte.",
    buckets=_LATENCY_BUCKETS,
)
GENERATION_TOKENS_PER_SECOND = Histogram(
    "ragd_generation_tokens_per_second", "Completion tokens per second of generation.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
DEGRADATIONS = Counter(
    "ragd_degradations", "Requests served degraded, by dependency (cache, bm25, dense, rerank, guardrails, "
    "generator).", ["dependency"],
)
RATE_LIMITED = Counter("ragd_rate_limited", "Requests refused with 429, by reason (rpm, tpm, admission).",
                       ["reason"])


def count_guard_decision(kind: str, decision: GuardDecision) -> None:
    """One guardrail decision into ``ragd_guardrail_decisions``: each rail that fired, or ``none``/pass."""
    for rail in decision.rails:
        if rail.fired:
            GUARDRAIL_DECISIONS.labels(kind, rail.rail, rail.action).inc()
    if decision.action == "pass":
        GUARDRAIL_DECISIONS.labels(kind, "none", "pass").inc()


@dataclass
class RequestContext:
    """What one request accumulates for its log line; lives in a contextvar for the request."""

    request_id: str
    service: str = ""
    route: str = ""
    tenant: str = ""
    stages_ms: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() value

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None when the request has none."""
        return None if self.deadline is None else self.deadline - time.monotonic()


_CONTEXT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("ragd_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    return _CONTEXT.get()


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    return _CONTEXT.set(ctx)


def unbind(token: contextvars.Token[RequestContext | None]) -> None:
    _CONTEXT.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a pipeline stage into ``ragd_stage_seconds`` and the request's log line."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        STAGE_SECONDS.labels(name).observe(elapsed)
        ctx = _CONTEXT.get()
        if ctx is not None:
            ctx.stages_ms[name] = round(ctx.stages_ms.get(name, 0.0) + elapsed * 1000, 3)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"ragd": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "ragd", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Route ragd's loggers to stderr as JSON lines (idempotent).

    Records go through a queue to a listener thread that formats and writes them, so a request's
    log line costs the event loop an enqueue, not a JSON encoding and a write.
    """
    root = logging.getLogger("ragd")
    root.setLevel(level.upper())
    if not any(getattr(h, "_ragd", False) for h in root.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(JsonFormatter())
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = _ContextQueueHandler(records)
        handler._ragd = True  # type: ignore[attr-defined]
        listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
        listener.start()
        atexit.register(listener.stop)
        root.addHandler(handler)
    root.propagate = False


class _ContextQueueHandler(logging.handlers.QueueHandler):
    """Keeps a record as it is (its ``ragd`` extra and exception) for the listener to format."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        return record
