"""Per subject (or client IP) fixed-window rate limits: the `limits` library's strategy over a
thread-free in-process storage (or any storage `limits` knows, e.g. redis://, shared by replicas).

limits' own `memory://` storage starts a new timer thread 10 ms after the previous one ended, on
the next hit, and that thread sweeps every key under the GIL: at a few hundred requests a second
the gateway created ~100 threads a second, each waking to take the GIL from the event loop (py-spy
showed thread start-up in the proxy's hot path). Here expiry is lazy: a key read after its window
is gone, and each hit drops the windows that ended, oldest first, from a heap.
"""

from __future__ import annotations

import heapq
import time

from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter


class WindowCounters(Storage):
    """Fixed-window counters in this process's memory, for one event loop (no locks, no threads)."""

    STORAGE_SCHEME = None  # not registered with limits: built by RateLimiter for memory://

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.expiries: dict[str, float] = {}
        self.ends: list[tuple[float, str]] = []  # (window end, key), a heap

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _drop_ended(self, now: float) -> None:
        ends = self.ends
        while ends and ends[0][0] <= now:
            end, key = heapq.heappop(ends)
            if self.expiries.get(key) == end:
                del self.expiries[key], self.counts[key]

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        self._drop_ended(now)
        count = self.counts.get(key)
        if count is None:
            end = now + expiry
            self.expiries[key] = end
            heapq.heappush(self.ends, (end, key))
            count = 0
        count += amount
        self.counts[key] = count
        return count

    def get(self, key: str) -> int:
        if self.expiries.get(key, 0.0) <= time.time():
            return 0
        return self.counts.get(key, 0)

    def get_expiry(self, key: str) -> float:
        end = self.expiries.get(key, 0.0)
        now = time.time()
        return end if end > now else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        dropped = len(self.counts)
        self.counts.clear()
        self.expiries.clear()
        self.ends.clear()
        return dropped

    def clear(self, key: str) -> None:
        self.counts.pop(key, None)
        self.expiries.pop(key, None)


class RateLimiter:
    """A limit such as "600/minute" per key; `memory://` counts in this process (a limit per replica),
    RATE_LIMIT_STORAGE=redis://... shares one limit across replicas."""

    def __init__(self, spec: str, storage_uri: str) -> None:
        self.item = parse(spec)
        storage = WindowCounters() if storage_uri.rstrip("/") == "memory:" else storage_from_string(storage_uri)
        self.limiter = FixedWindowRateLimiter(storage)

    def check(self, key: str) -> int | None:
        """Takes one from `key`'s budget: None when allowed, else seconds to wait."""
        if self.limiter.hit(self.item, key):
            return None
        return self._wait(key)

    def blocked(self, key: str) -> int | None:
        """Seconds to wait when `key`'s budget is used up, without taking from it; else None."""
        if self.limiter.test(self.item, key):
            return None
        return self._wait(key)

    def used(self, key: str) -> int:
        """How much of `key`'s budget this window has taken."""
        return self.item.amount - self.limiter.get_window_stats(self.item, key).remaining

    def refund(self, key: str) -> None:
        """Gives back one `check`: the attempt turned out not to count (a successful sign-in, a delivery
        the service accepted). In a window that has ended meanwhile this is one more hit in the new one."""
        if self.used(key) > 0:
            self.limiter.storage.incr(self.item.key_for(key), self.item.get_expiry(), amount=-1)

    def _wait(self, key: str) -> int:
        reset_time, _remaining = self.limiter.get_window_stats(self.item, key)
        return max(1, int(reset_time - time.time()) + 1)


class WebhookLimits:
    """Partner deliveries (POST /api/postal/v1/partners/{code}/events, no token) come from the partner's
    few addresses at rates far above one caller's, so they have the partner's own budget. The gateway
    cannot check their signature (the postal service holds the secrets), so a delivery is first taken
    from the sender's address budget, like any call without a token, and moved to the partner's budget
    only when the postal service accepted it (2xx): forged or unsigned posts never spend the partner's
    budget, nor escape the per-address limit by naming a partner, real or not. A partner whose budget
    is spent is refused before its delivery is sent on."""

    def __init__(self, per_address: RateLimiter, per_partner: RateLimiter) -> None:
        self.per_address = per_address
        self.per_partner = per_partner

    def before(self, partner: str, address: str) -> int | None:
        """Before forwarding: None to go on, else seconds to wait."""
        wait = self.per_address.check(f"ip:{address}")
        if wait is not None:
            return wait
        wait = self.per_partner.blocked(f"partner:{partner}")
        if wait is not None:
            self.per_address.refund(f"ip:{address}")
        return wait

    def after(self, partner: str, address: str, status: int) -> None:
        """Once the postal service answered: an accepted delivery counts on the partner, not the address."""
        if 200 <= status < 300:
            self.per_address.refund(f"ip:{address}")
            self.per_partner.check(f"partner:{partner}")
