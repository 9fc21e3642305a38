"""Base of every internal HTTP client: request id and deadline propagation, error mapping,
retries with backoff for idempotent calls only, and a circuit breaker per dependency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from services import telemetry
from services.contracts import CONTRACT_VERSION
from services.errors import (
    AuthenticationError,
    ConflictError,
    DependencyError,
    DependencyTimeoutError,
    DependencyUnavailableError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RagdError,
    RateLimitError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from services.middleware import DEADLINE_HEADER, REQUEST_ID_HEADER

__all__ = ["READY_TIMEOUT_S", "CircuitBreaker", "ServiceClient"]

READY_TIMEOUT_S = 2.0  # longest a readiness probe waits for the service's answer, seconds

_CLIENT_ERRORS: dict[int, type[RagdError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 415: UnsupportedMediaTypeError, 422: UnprocessableError,
    429: RateLimitError,
}


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; lets one trial call through after ``reset_s``."""

    def __init__(self, *, threshold: int = 5, reset_s: float = 5.0) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        if self._opened_at is None:
            return False
        # after reset_s the breaker is half-open: the next call is the trial
        return time.monotonic() - self._opened_at < self.reset_s

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = time.monotonic()


class ServiceClient:
    """Talks to one ragd service. Subclasses add typed methods on top of :meth:`request`."""

    def __init__(
        self,
        base_url: str,
        *,
        dependency: str,
        timeout_s: float = 30.0,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.dependency = dependency
        self._static_headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ready(self) -> dict[str, bool]:
        """The service's own checks (``GET /ready``) and ``reachable``: whether it answered at all. A probe:
        it neither waits on nor trips the circuit breaker, and never raises."""
        headers = {**self._static_headers, "x-ragd-contract": CONTRACT_VERSION}
        timeout = min(self.timeout_s, READY_TIMEOUT_S)
        try:
            response = await self._http.get("/ready", headers=headers, timeout=timeout)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return {"reachable": False}
        checks = body.get("checks") if isinstance(body, dict) else None
        if not isinstance(checks, dict):
            return {"reachable": True, "ready": response.status_code == 200}
        return {"reachable": True, **{str(name): value is True for name, value in checks.items()}}

    def _headers(self) -> tuple[dict[str, str], float]:
        headers = {**self._static_headers, "x-ragd-contract": CONTRACT_VERSION}
        timeout = self.timeout_s
        ctx = telemetry.current()
        if ctx is not None:
            headers[REQUEST_ID_HEADER] = ctx.request_id
            remaining = ctx.remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise DependencyTimeoutError(f"Deadline passed before calling {self.dependency}.",
                                                 dependency=self.dependency)
                timeout = min(timeout, remaining)
                headers[DEADLINE_HEADER] = str(max(1, int(remaining * 1000)))
        return headers, timeout

    async def request(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> Any:
        """Send one call and return its decoded JSON; raise the mapped RagdError on failure."""
        if self.breaker.is_open:
            raise DependencyUnavailableError(f"{self.dependency} is unavailable (circuit open).",
                                             dependency=self.dependency)
        retry = method in ("GET", "HEAD", "DELETE", "PUT") if idempotent is None else idempotent
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            headers, timeout = self._headers()
            try:
                response = await self._http.request(method, path, headers=headers, timeout=timeout, **kwargs)
            except httpx.TimeoutException as exc:
                self.breaker.record_failure()
                error: RagdError = DependencyTimeoutError(f"{self.dependency} timed out.",
                                                          dependency=self.dependency)
                cause: BaseException = exc
            except httpx.TransportError as exc:
                self.breaker.record_failure()
                error = DependencyUnavailableError(f"{self.dependency} is unavailable.",
                                                   dependency=self.dependency)
                cause = exc
            else:
                if response.status_code < 500:
                    self.breaker.record_success()
                    return self._decode(response)
                self.breaker.record_failure()
                error = self._server_error(response)
                cause = DependencyError(response.text[:200], dependency=self.dependency)
            if attempt + 1 < attempts:
                await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
                continue
            raise error from cause
        raise AssertionError("unreachable")

    def _server_error(self, response: httpx.Response) -> RagdError:
        if response.status_code == 504:
            return DependencyTimeoutError(f"{self.dependency} timed out.", dependency=self.dependency)
        if response.status_code == 503:
            return DependencyUnavailableError(f"{self.dependency} is unavailable.", dependency=self.dependency)
        return DependencyError(f"{self.dependency} failed.", dependency=self.dependency)

    def _decode(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            return response.json() if response.content else None
        try:
            error = response.json()["error"]
            message, param, code = str(error["message"]), error.get("param"), error.get("code")
        except (ValueError, KeyError, TypeError):
            message, param, code = response.text[:200] or "request failed", None, None
        cls = _CLIENT_ERRORS.get(response.status_code, InvalidRequestError)
        headers = {"retry-after": response.headers["retry-after"]} if "retry-after" in response.headers else None
        raise cls(message, param=param, code=code, headers=headers)
