"""One error hierarchy for every ragd service, mapped once to the OpenAI error envelope.

Raise a subclass of :class:`RagdError` anywhere; the app factory's handlers turn it into
``{"error": {"message", "type", "param", "code"}}`` with the class's HTTP status. Unknown
exceptions become a generic 500 that names only the request id.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "CollectionNotFoundError",
    "ConflictError",
    "ContentPolicyError",
    "DependencyError",
    "DependencyTimeoutError",
    "DependencyUnavailableError",
    "InternalError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RagdError",
    "RateLimitError",
    "UnprocessableError",
    "UnsupportedMediaTypeError",
    "error_body",
]


class RagdError(Exception):
    """Base of every error ragd raises on purpose; carries its HTTP status and OpenAI error type."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error envelope for this error (plus documented extension fields)."""
        return error_body(self.message, self.type, param=self.param, code=self.code, extra=self.extra)


def error_body(
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_, "param": param, "code": code}
    error.update(extra or {})
    return {"error": error}


class InvalidRequestError(RagdError):
    """The request is malformed or names something that cannot be used (400)."""

    status = 400
    type = "invalid_request_error"


class ContentPolicyError(InvalidRequestError):
    """A guardrail blocked the request and the policy asks for an error instead of a refusal (400)."""

    default_code = "content_policy_violation"


class AuthenticationError(RagdError):
    """Missing or unknown API key (401)."""

    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(RagdError):
    """The key is valid but lacks the role this route needs (403)."""

    status = 403
    type = "permission_error"
    default_code = "insufficient_permissions"


class NotFoundError(RagdError):
    """Absent, or not the caller's: both answer the same 404 so existence cannot be probed."""

    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class CollectionNotFoundError(NotFoundError):
    """The named collection does not exist for this tenant (404); the message says how to create it."""

    default_code = "collection_not_found"

    def __init__(self, name: str, *, param: str | None = "collection", **kwargs: Any) -> None:
        shown = name[:100]
        super().__init__(f"The collection '{shown}' does not exist (not found for this API key's tenant). "
                         f"Create it with POST /v1/collections "
                         f"{{\"name\": \"{shown}\"}} (or `ragd ingest --create`), then add documents.",
                         param=param, **kwargs)
        self.name = name


class ConflictError(RagdError):
    """The resource already exists or is in a conflicting state (409)."""

    status = 409
    type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLargeError(RagdError):
    """Body, upload or document over a configured limit (413)."""

    status = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"


class UnprocessableError(RagdError):
    """Well-formed but unusable content, e.g. a file that cannot be parsed (422)."""

    status = 422
    type = "invalid_request_error"
    default_code = "unprocessable_entity"


class UnsupportedMediaTypeError(UnprocessableError):
    """A file of a type or text encoding ragd does not read (415)."""

    status = 415
    default_code = "unsupported_media_type"


class RateLimitError(RagdError):
    """Over a rate limit or over admission capacity (429); carries Retry-After."""

    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class InternalError(RagdError):
    """A bug: the message shown to clients never includes internals (500)."""

    status = 500
    type = "server_error"
    default_code = "internal_error"


class DependencyError(RagdError):
    """A dependency answered with an error (502)."""

    status = 502
    type = "server_error"
    default_code = "bad_gateway"

    def __init__(self, message: str, *, dependency: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.dependency = dependency


class DependencyUnavailableError(DependencyError):
    """A dependency cannot be reached or its circuit is open (503)."""

    status = 503
    default_code = "service_unavailable"


class DependencyTimeoutError(DependencyError):
    """A dependency did not answer within the deadline (504)."""

    status = 504
    default_code = "timeout"
