"""The gateway's rate limits: fixed windows per key, lazy expiry, no thread per window."""

from __future__ import annotations

import threading
import time

import pytest
from limits.storage import MemoryStorage

from gateway.rate_limit import RateLimiter, WebhookLimits, WindowCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


def test_a_key_gets_its_limit_per_window_and_a_wait_until_the_window_ends(clock: Clock) -> None:
    limiter = RateLimiter("3/minute", "memory://")
    assert [limiter.check("sub:a") for _ in range(3)] == [None, None, None]
    assert limiter.check("sub:a") == 61  # the window opened just now: a minute to wait
    assert limiter.check("sub:b") is None  # another caller has its own window
    clock.now += 30
    assert limiter.check("sub:a") == 31
    clock.now += 30.5
    assert limiter.check("sub:a") is None  # a new window
    assert limiter.check("sub:a") is None


def test_ended_windows_are_dropped_without_a_sweep_thread(clock: Clock) -> None:
    storage = WindowCounters()
    threads = threading.active_count()
    for i in range(1000):
        storage.incr(f"ip:{i}", 60)
    assert len(storage.counts) == 1000
    clock.now += 61
    assert storage.get("ip:1") == 0  # read after its window: gone even before any sweep
    storage.incr("ip:new", 60)
    assert set(storage.counts) == {"ip:new"} and len(storage.ends) == 1
    assert threading.active_count() == threads


def test_a_cleared_key_starts_a_fresh_window(clock: Clock) -> None:
    storage = WindowCounters()
    assert storage.incr("k", 10, amount=5) == 5
    storage.clear("k")
    clock.now += 5
    assert storage.incr("k", 10) == 1
    clock.now += 6  # the first window's heap entry ends here; the new window lives on
    assert storage.incr("k", 10) == 2
    assert storage.get_expiry("k") == pytest.approx(clock.now + 4)
    assert storage.reset() == 1 and storage.get("k") == 0


def test_memory_uri_uses_the_thread_free_counters_and_others_go_to_limits() -> None:
    assert isinstance(RateLimiter("10/second", "memory://").limiter.storage, WindowCounters)
    assert isinstance(RateLimiter("10/second", "memory://?x=1").limiter.storage, MemoryStorage)


def test_blocked_and_used_read_without_taking_and_refund_gives_one_back(clock: Clock) -> None:
    limiter = RateLimiter("2/minute", "memory://")
    assert limiter.blocked("k") is None and limiter.used("k") == 0
    limiter.check("k")
    limiter.check("k")
    assert limiter.used("k") == 2 and limiter.blocked("k") == 61 and limiter.used("k") == 2
    limiter.refund("k")
    assert limiter.blocked("k") is None and limiter.check("k") is None and limiter.check("k") == 61
    limiter.refund("other")  # nothing taken, nothing given: never a budget above the limit
    assert limiter.used("other") == 0 and [limiter.check("other") for _ in range(3)] == [None, None, 61]


def webhook_limits() -> WebhookLimits:
    return WebhookLimits(RateLimiter("3/minute", "memory://"), RateLimiter("5/minute", "memory://"))


def test_forged_deliveries_are_held_to_the_senders_address_and_never_spend_the_partners_budget(
        clock: Clock) -> None:
    limits = webhook_limits()
    waits = []
    for code in ("vnpost", "vnpost", "anything", "else"):  # naming another partner gives no new budget
        wait = limits.before(code, "203.0.113.9")
        waits.append(wait)
        if wait is None:
            limits.after(code, "203.0.113.9", 401)  # the postal service refused the signature
    assert waits == [None, None, None, 61]
    # the partner, from its own address, still has all of its budget
    for _ in range(5):
        assert limits.before("vnpost", "198.51.100.1") is None
        limits.after("vnpost", "198.51.100.1", 202)
    assert limits.before("vnpost", "198.51.100.1") == 61  # now spent: refused before forwarding
    assert limits.per_address.used("ip:198.51.100.1") == 0  # accepted deliveries did not count there


def test_accepted_deliveries_count_on_the_partner_not_on_its_address(clock: Clock) -> None:
    limits = webhook_limits()
    for _ in range(5):  # more than the address's 3: each accepted one moved to the partner's budget
        assert limits.before("viettel", "198.51.100.2") is None
        limits.after("viettel", "198.51.100.2", 200)
    assert limits.per_partner.used("partner:viettel") == 5
    assert limits.per_partner.used("partner:vnpost") == 0
