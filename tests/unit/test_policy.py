"""The restart policy is pure: plain values in, a decision out (no clock, no process)."""

from __future__ import annotations

from supervisor.config.schema import BackoffSection
from supervisor.policy.restart import ExitFacts, GiveUp, Restart, after_exit
from supervisor.policy.settle import SettleFacts, SettleLimits, settle_verdict

BACKOFF = BackoffSection(initial=0.5, max=4.0, quick_failures=5, quick_seconds=5.0, cooldown=60)


def facts(uptime: float, running: bool = True, failures: int = 0) -> ExitFacts:
    return ExitFacts(started_at=1000.0, now=1000.0 + uptime, was_running=running,
                     quick_failures=failures)


def settle(**changes: object) -> str:
    base: dict[str, object] = dict(
        master_alive=True, worker_deaths=0, probe_failures=0, requests=0, errors=0
    )
    base.update(changes)
    return settle_verdict(SettleFacts(**base), SettleLimits(max_error_ratio=0.05))  # type: ignore[arg-type]


def test_first_crash_after_a_healthy_run_restarts_at_once() -> None:
    assert after_exit(facts(60.0, failures=3), BACKOFF) == Restart(0.0, 1)


def test_quick_failures_back_off_exponentially_up_to_max() -> None:
    delays = []
    failures = 0
    for _ in range(4):
        decision = after_exit(facts(0.2, failures=failures), BACKOFF)
        assert isinstance(decision, Restart)
        delays.append(decision.delay)
        failures = decision.quick_failures
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_a_crash_before_ready_counts_as_quick_however_long_it_took() -> None:
    decision = after_exit(facts(30.0, running=False, failures=1), BACKOFF)
    assert decision == Restart(1.0, 2)


def test_too_many_quick_failures_give_up_with_the_cooldown() -> None:
    assert after_exit(facts(0.1, failures=4), BACKOFF) == GiveUp(60, 5)


def test_delay_is_capped_by_max() -> None:
    many = BackoffSection(initial=1.0, max=3.0, quick_failures=100)
    decision = after_exit(facts(0.1, failures=10), many)
    assert decision == Restart(3.0, 11)


def test_one_allowed_failure_gives_up_even_after_a_healthy_run() -> None:
    strict = BackoffSection(quick_failures=1, cooldown=0.0)
    assert after_exit(facts(600.0), strict) == GiveUp(0.0, 1)


def test_a_quiet_settle_keeps_the_new_generation() -> None:
    assert settle() == ""
    assert settle(requests=1000, errors=50) == ""  # exactly the limit is fine


def test_each_failure_kind_rolls_back_with_its_reason() -> None:
    assert settle(master_alive=False) == "its master exited"
    assert "crash loop" in settle(worker_deaths=3)
    assert "health probes failed" in settle(probe_failures=2)
    assert "51 of 1000 answers were 5xx" in settle(requests=1000, errors=51)


def test_too_few_requests_say_nothing_about_the_error_ratio() -> None:
    assert settle(requests=19, errors=19) == ""
    assert settle(requests=20, errors=2) != ""
