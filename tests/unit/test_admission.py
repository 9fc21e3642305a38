"""GeneratorAdmission's arithmetic with a hand-driven clock: what it admits, what it refuses and with which
Retry-After, how measured generations move the estimate, and that lost tickets expire."""

from __future__ import annotations

import pytest

from gateway.admission import AdmissionSettings, GeneratorAdmission
from services.errors import RateLimitError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admission(**kw: object) -> tuple[GeneratorAdmission, Clock]:
    clock = Clock()
    settings = AdmissionSettings(**{"initial_cost_s": 10.0, "headroom": 0.8, "cold_start_in_flight": 64,
                                    **kw})  # type: ignore[arg-type]
    return GeneratorAdmission(settings, clock=clock), clock


def test_admits_while_the_queue_fits_the_deadline_then_refuses_with_retry_after() -> None:
    admission, _ = _admission()
    tickets = [admission.admit(120.0) for _ in range(9)]  # 10 s each: the 9th is done at 90 s <= 96 s
    with pytest.raises(RateLimitError) as refused:
        admission.admit(120.0)  # the 10th would be done at 100 s
    assert refused.value.status == 429 and refused.value.code == "server_overloaded"
    assert refused.value.headers["retry-after"] == "4"  # 100 s - 96 s
    tickets[0].release(completed=False)
    assert admission.admit(120.0) is not None  # control: a freed place is taken again


def test_a_request_with_little_time_left_is_refused_even_when_idle() -> None:
    admission, _ = _admission()
    with pytest.raises(RateLimitError):
        admission.admit(5.0)
    assert admission.admit(30.0) is not None  # control


def test_measured_generations_replace_the_guess_and_share_the_generator() -> None:
    admission, clock = _admission(ewma_alpha=0.5)
    a, b = admission.admit(120.0), admission.admit(120.0)
    a.generating()
    b.generating()  # two at once: each has half the generator
    clock.now += 4.0
    a.release(completed=True)
    assert admission.cost_s == pytest.approx(2.0)  # the first measurement replaces the 10 s guess
    clock.now += 2.0  # b alone now: 2 s of its own, after 2 s of shared time
    b.release(completed=True)
    assert admission.cost_s == pytest.approx(0.5 * 2.0 + 0.5 * 4.0)
    cancelled = admission.admit(120.0)
    cancelled.generating()
    clock.now += 1.0
    cancelled.release(completed=False)  # cut before it outlasted the estimate: it measures nothing
    assert admission.cost_s == pytest.approx(3.0)


def test_a_ticket_never_released_expires_at_its_deadline() -> None:
    admission, clock = _admission()
    admission.admit(30.0)
    assert admission.estimate_s() == pytest.approx(20.0)
    clock.now += 31.0
    assert admission.estimate_s() == pytest.approx(10.0)


def test_disabled_admission_admits_everything() -> None:
    admission, _ = _admission(enabled=False)
    assert all(admission.admit(1.0) is not None for _ in range(50))


def test_before_any_measurement_only_the_generators_slots_are_admitted() -> None:
    admission, clock = _admission(cold_start_in_flight=2)
    first, second = admission.admit(120.0), admission.admit(120.0)
    with pytest.raises(RateLimitError):
        admission.admit(120.0)
    first.generating()
    clock.now += 3.0
    first.release(completed=True)  # measured: 3 s; from now on the estimate decides
    second.release(completed=False)
    assert [admission.admit(120.0) for _ in range(3)]


def test_a_running_generation_that_takes_longer_raises_the_estimate() -> None:
    admission, clock = _admission(initial_cost_s=2.0)
    slow = admission.admit(120.0)
    slow.generating()
    clock.now += 30.0  # still running after 30 s, far past the 2 s estimate
    assert admission.estimate_s() == pytest.approx(30.0 * 2)
    with pytest.raises(RateLimitError):
        [admission.admit(120.0) for _ in range(3)]


def test_a_generation_cut_after_outlasting_the_estimate_raises_it() -> None:
    admission, clock = _admission(initial_cost_s=2.0, ewma_alpha=0.5)
    done = admission.admit(120.0)
    done.generating()
    clock.now += 2.0
    done.release(completed=True)
    cut = admission.admit(120.0)
    cut.generating()
    clock.now += 100.0  # cut at its deadline, unfinished
    cut.release(completed=False)
    assert admission.cost_s == pytest.approx(0.5 * 2.0 + 0.5 * 100.0)
