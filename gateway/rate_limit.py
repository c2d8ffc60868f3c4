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
        """None when allowed, else seconds to wait."""
        if self.limiter.hit(self.item, key):
            return None
        reset_time, _remaining = self.limiter.get_window_stats(self.item, key)
        return max(1, int(reset_time - time.time()) + 1)
