"""Login throttling decided by a clock the test moves."""

from __future__ import annotations

from dashboard.throttle import MAX_LOCKOUT_S, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_max_failures_and_unlocks_after_the_lockout() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60.0, clock)
    throttle.failed("login:anna")
    throttle.failed("login:anna")
    assert throttle.retry_after("login:anna") == 0
    throttle.failed("login:anna")
    assert throttle.retry_after("login:anna") == 60.0
    clock.now += 61
    assert throttle.retry_after("login:anna") == 0


def test_each_further_failure_doubles_the_lockout_up_to_an_hour() -> None:
    clock = Clock()
    throttle = LoginThrottle(1, 600.0, clock)
    waits = []
    for _ in range(5):
        throttle.failed("k")
        waits.append(throttle.retry_after("k"))
    assert waits == [600.0, 1200.0, 2400.0, MAX_LOCKOUT_S, MAX_LOCKOUT_S]


def test_success_clears_the_count_and_keys_are_independent() -> None:
    throttle = LoginThrottle(2, 60.0, Clock())
    throttle.failed("login:anna", "ip:1")
    throttle.succeeded("login:anna")
    throttle.failed("login:anna")
    assert throttle.retry_after("login:anna") == 0
    assert throttle.retry_after("ip:1") == 0
    throttle.failed("ip:1")
    assert throttle.retry_after("login:anna", "ip:1") == 60.0
    assert throttle.retry_after("login:boris") == 0


def test_old_failures_are_forgotten() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 60.0, clock)
    throttle.failed("k")
    clock.now += MAX_LOCKOUT_S + 1
    throttle.failed("k")
    assert throttle.retry_after("k") == 0
