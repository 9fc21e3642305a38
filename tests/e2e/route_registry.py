"""Which public route each end-to-end test proves with valid input: ``@covers(method, path)`` marks a
positive test; ``test_routes.test_every_public_route_has_a_positive_test`` compares the marks with the
routes the app serves, so a new route without a positive test fails the suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI

__all__ = ["COVERED", "covers", "public_routes"]

F = TypeVar("F", bound=Callable[..., Any])
COVERED: dict[tuple[str, str], list[str]] = {}


def covers(method: str, path: str) -> Callable[[F], F]:
    """Mark a test as a positive end-to-end test of ``method path`` (the route template)."""

    def mark(test: F) -> F:
        COVERED.setdefault((method.upper(), path), []).append(f"{test.__module__}.{test.__name__}")
        return test

    return mark


def public_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers, HEAD aside (Starlette adds it to every GET)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        # FastAPI keeps an included router as one entry; its effective routes are the real ones
        contexts: list[Any] = (list(route.effective_route_contexts()) if hasattr(route, "effective_route_contexts")
                               else [route])
        for context in contexts:
            methods = getattr(context, "methods", None) or set()
            found.update((m, str(context.path)) for m in methods if m != "HEAD")
    return found
