"""Metrics, request context and JSON logs shared by every ragd service.

Metric names are the contract with ``deploy/`` dashboards and alerts: every name is prefixed
``ragd_`` and every label value is bounded (route templates, stage names, error types; never raw
paths, user text or ids).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import logging
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from services.contracts import GuardDecision

__all__ = [
    "ABSTENTIONS",
    "AUTH_FAILURES",
    "CACHE_EVICTIONS",
    "CACHE_LOOKUPS",
    "CACHE_SEMANTIC_REJECTED",
    "CACHE_STORES",
    "DEGRADATIONS",
    "GENERATION_TOKENS_PER_SECOND",
    "GUARDRAIL_DECISIONS",
    "IN_FLIGHT",
    "KEY_EVENTS",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "STAGE_SECONDS",
    "TIME_TO_FIRST_TOKEN",
    "TOKENS",
    "BatchingHandler",
    "RequestContext",
    "child",
    "configure_logging",
    "count_guard_decision",
    "current",
    "new_request_id",
    "observe_stage",
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
CACHE_STORES = Counter("ragd_cache_stores", "Answer-cache stores by result (stored, skipped, failed; remembered: a "
                       "semantic hit kept under its own question).", ["result"])
CACHE_SEMANTIC_REJECTED = Counter(
    "ragd_cache_semantic_rejected", "Semantic-cache candidates above the threshold that were refused, by reason "
    "(guard, verifier, evidence, no_evidence, retrieval).", ["reason"])
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
AUTH_FAILURES = Counter(
    "ragd_auth_failures", "Requests refused at authentication, by reason (missing, unknown, revoked, expired, "
    "store_unavailable).", ["reason"],
)
KEY_EVENTS = Counter("ragd_key_events", "Stored API keys created, revoked and rotated, by event.", ["event"])
ABSTENTIONS = Counter(
    "ragd_abstentions", "Answers that declined because the retrieved evidence does not cover the question, by "
    "question language (en, ko, other).", ["language"],
)
RATE_LIMITED = Counter("ragd_rate_limited", "Requests refused with 429, by reason (rpm, tpm, admission).",
                       ["reason"])


Metric = TypeVar("Metric", Counter, Gauge, Histogram)


@functools.lru_cache(maxsize=4096)
def child(metric: Metric, *labels: str) -> Metric:
    """``metric.labels(*labels)``, memoised for the hot path (``labels`` takes a lock and builds a key on
    every call: eight times per request). Label values are bounded by design, so the memo is too."""
    return metric.labels(*labels)


def count_guard_decision(kind: str, decision: GuardDecision) -> None:
    """One guardrail decision into ``ragd_guardrail_decisions``: each rail that fired or flagged, or
    ``none``/pass."""
    for rail in decision.rails:
        if rail.fired or rail.action == "flag":
            child(GUARDRAIL_DECISIONS, kind, rail.rail, rail.action).inc()
    if decision.action == "pass":
        child(GUARDRAIL_DECISIONS, kind, "none", "pass").inc()


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


_IDS = random.Random(os.urandom(32))


def new_request_id() -> str:
    """32 random hex digits. A seeded non-cryptographic generator: ids must be unique and reveal
    nothing (no counter), but need not be secrets; a ``uuid4`` would cost a ``getrandom`` system call per
    request on the exact-hit path."""
    return f"{_IDS.getrandbits(128):032x}"


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
        observe_stage(name, time.perf_counter() - start)


def observe_stage(name: str, elapsed: float) -> None:
    """Record ``elapsed`` seconds of a stage timed by the caller (see :func:`stage`)."""
    child(STAGE_SECONDS, name).observe(elapsed)
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

    A request's log line costs the event loop one ``deque.append``: a writer thread wakes every
    ``_FLUSH_INTERVAL_S`` (or at once for warnings and errors), formats what has gathered and writes
    it in one call. Waking per record (``QueueHandler``) made the event loop wait for the GIL at
    every enqueue: under load that was a fifth of its time.
    """
    root = logging.getLogger("ragd")
    root.setLevel(level.upper())
    # what no ragd line prints, no record need collect (the logging HOWTO's "Optimization"): the
    # caller's frame walk, thread and process names were a third of a log call
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if not any(isinstance(h, BatchingHandler) for h in root.handlers):
        handler = BatchingHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        atexit.register(handler.stop)
        root.addHandler(handler)
    root.propagate = False


_FLUSH_INTERVAL_S = 0.05
_MAX_PENDING = 100_000


class BatchingHandler(logging.Handler):
    """Gathers records in a bounded deque; a daemon thread formats and writes them in batches.

    Past ``max_pending`` unwritten records (a blocked stderr) the oldest are dropped, and a line
    saying how many is written with the next batch: logging never grows memory without bound nor
    blocks a request.
    """

    def __init__(self, stream: TextIO, *, interval_s: float = _FLUSH_INTERVAL_S,
                 max_pending: int = _MAX_PENDING) -> None:
        super().__init__()
        self._stream = stream
        self._interval_s = interval_s
        self._pending: deque[logging.LogRecord] = deque()
        self._max_pending = max_pending
        self._dropped = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ragd-log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:  # the traceback belongs to this moment, not the writer's
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append(record)
        if record.levelno >= logging.WARNING:
            self._wake.set()

    def flush(self) -> None:
        """Write everything gathered so far (called by the writer thread, and on close)."""
        lines: list[str] = []
        dropped, self._dropped = self._dropped, 0
        if dropped:
            lines.append(json.dumps({"ts": round(time.time(), 3), "level": "warning", "logger": "ragd.logging",
                                     "msg": "log lines dropped", "dropped": dropped}))
        while True:  # popleft, not a length check: close() may drain beside the writer thread
            try:
                record = self._pending.popleft()
            except IndexError:
                break
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        if lines:
            with self.lock or contextlib.nullcontext():
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a broken stream must not end the writer
                continue

    def close(self) -> None:
        """Write what is pending. The writer keeps running: ``logging.config.dictConfig`` (uvicorn
        calls it at start) closes every existing handler, and this one stays attached to ``ragd``."""
        with contextlib.suppress(Exception):
            self.flush()

    def stop(self) -> None:
        """End the writer thread after a last write (at interpreter exit)."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._thread.join(timeout=2)
        self.close()
