"""Generator admission: refuse early, with 429 and ``Retry-After``, the work the generator cannot finish in time.

The generator serves a few sequences at once and queues the rest. A request admitted behind a long
queue ends as a 504 after its whole deadline, having spent the generator's time for nothing.
:class:`GeneratorAdmission` estimates, before retrieval and generation start, when a new request
would be answered: the generator's *cost per request* times the requests already admitted plus this
one. A generation's cost is its share of the generator: each moment of its wall time divided by the
generations running then (processor sharing), so four answers generated together in 8 s cost 2 s
each; the estimate is an EWMA of measured costs, raised to the share a running generation has already
taken when that is more (a generator that slowed down shows it before any generation ends). When the
estimate exceeds the request's remaining deadline (times ``headroom``), the request is refused at
once. Before the first measurement only ``cold_start_in_flight`` requests are admitted at once.

The pipeline asks twice. First, before any costly work (input rails, the question's embedding,
retrieval: CPU that the admitted generations need), :meth:`GeneratorAdmission.refusal` says whether
the request would be refused now; if so it is refused at once, unless it is an exact cache hit whose
input-rail decision is already known (found without a rail or a model) or a question the rails
already blocked: those are answered without the generator. Under overload a question that only the
semantic cache could answer is therefore refused (finding its neighbour costs an embedding). Then,
after the cache lookup missed, :meth:`GeneratorAdmission.admit` takes the request's place in the
queue: an admitted request holds a :class:`Ticket` until its generation ends (or it is abandoned);
tickets expire at their request's deadline, so one that is never released cannot hold the queue
forever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.errors import RateLimitError
from services.telemetry import RATE_LIMITED

__all__ = ["AdmissionSettings", "GeneratorAdmission", "Ticket", "count_refusal"]

Clock = Callable[[], float]


class AdmissionSettings(BaseSettings):
    """Env prefix ``RAGD_ADMISSION_``."""

    model_config = SettingsConfigDict(env_prefix="RAGD_ADMISSION_", extra="ignore", frozen=True)

    enabled: bool = Field(True, description="Refuse generations that the queue estimate says cannot finish in time.")
    initial_cost_s: float = Field(
        4.0, gt=0, description="Generator seconds per request assumed before any generation was measured.")
    ewma_alpha: float = Field(0.3, gt=0, le=1, description="Weight of the newest measurement in the cost EWMA.")
    headroom: float = Field(
        0.8, gt=0, le=1, description="Share of the remaining deadline the estimate may fill (the rest is margin).")
    max_retry_after_s: int = Field(60, ge=1, description="Largest Retry-After sent, seconds.")
    cold_start_in_flight: int = Field(
        2, ge=1, description="Requests admitted at once before any generation was measured (the generator's slots).")


@dataclass(eq=False)
class Ticket:
    """One admitted request's place in the generator's queue."""

    owner: GeneratorAdmission
    expires: float
    generating_now: bool = False
    share_s: float = 0.0  # the generator time this generation has had so far
    released: bool = field(default=False)

    def generating(self) -> None:
        """The generation starts now (its share of the generator is counted from here)."""
        self.owner.account()
        self.generating_now = True

    def release(self, *, completed: bool) -> None:
        """The request is done with the generator; a completed generation updates the cost estimate."""
        if self.released:
            return
        self.owner.account()
        self.released = True
        self.owner.tickets.discard(self)
        # a cut generation (deadline, hang-up) says only that the cost is at least its share so far
        if self.generating_now and (completed or self.share_s > self.owner.cost_s):
            self.owner.observe(self.share_s)
        self.generating_now = False


class GeneratorAdmission:
    """Admits a generation only when the queue estimate says it finishes within its deadline."""

    def __init__(self, settings: AdmissionSettings, *, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.cost_s = settings.initial_cost_s
        self.measured = 0
        self.tickets: set[Ticket] = set()
        self._accounted = clock()

    def account(self) -> None:
        """Gives each running generation its share of the time since the last change."""
        now = self.clock()
        running = [t for t in self.tickets if t.generating_now]
        for ticket in running:
            ticket.share_s += (now - self._accounted) / len(running)
        self._accounted = now

    def live(self) -> list[Ticket]:
        now = self.clock()
        expired = [t for t in self.tickets if t.expires <= now]
        if expired:
            self.account()
        for ticket in expired:
            self.tickets.discard(ticket)
        return list(self.tickets)

    def current_cost_s(self) -> float:
        """The cost estimate, or more when a running generation has already taken more."""
        self.account()
        running = max((t.share_s for t in self.tickets if t.generating_now), default=0.0)
        return max(self.cost_s, running)

    def estimate_s(self) -> float:
        """Seconds until a request admitted now would be answered."""
        return self.current_cost_s() * (len(self.live()) + 1)

    def observe(self, cost_s: float) -> None:
        alpha = self.settings.ewma_alpha if self.measured else 1.0  # the first measurement replaces the guess
        self.cost_s = (1 - alpha) * self.cost_s + alpha * max(cost_s, 1e-3)
        self.measured += 1

    def refusal(self, remaining_s: float | None) -> RateLimitError | None:
        """The 429 (with Retry-After) for a request with ``remaining_s`` left before its deadline, or None
        when it would be admitted now. Arithmetic only: no lock, no I/O, nothing counted."""
        if not self.settings.enabled:
            return None
        deadline = remaining_s if remaining_s is not None else math.inf
        estimate = self.estimate_s()
        cold = not self.measured and len(self.tickets) >= self.settings.cold_start_in_flight
        if not cold and estimate <= deadline * self.settings.headroom:
            return None
        wait = self.current_cost_s() if cold else estimate - deadline * self.settings.headroom
        retry = min(self.settings.max_retry_after_s, max(1, math.ceil(wait)))
        return RateLimitError(
            f"The generator is busy: an answer would take about {estimate:.0f} s, longer than this request's "
            f"deadline allows. Retry in {retry} s.", code="server_overloaded", headers={"retry-after": str(retry)})

    def admit(self, remaining_s: float | None) -> Ticket:
        """A ticket for a request with ``remaining_s`` left before its deadline, or a 429 with Retry-After."""
        refusal = self.refusal(remaining_s)
        if refusal is not None:
            count_refusal()
            raise refusal
        now = self.clock()
        ticket = Ticket(self, expires=now + (remaining_s if remaining_s is not None else 3600.0))
        self.tickets.add(ticket)
        return ticket


def count_refusal() -> None:
    """One request refused because the generator's queue cannot answer it in time."""
    RATE_LIMITED.labels("generator_queue").inc()
