"""Group commit (ghép ghi): submissions that arrive while earlier ones are being written share one statement.

One agency's submissions queue on its daily counter row, which stays locked from the number's
allocation until the commit is on disk. While `in_flight` statements are running, new submissions
wait in line; the next one to go takes everyone waiting behind it (up to `max_batch`) into one
statement: one counter update, one round trip, one WAL flush. At low load a submission goes alone
and at once: nothing waits for a timer. When a shared statement fails, its entries are written
again one at a time, so each one gets its own answer (a used Idempotency-Key, a full day).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from shared.db import Tx, as_problem
from shared.problems import ProblemError

E = TypeVar("E")
R = TypeVar("R")
log = structlog.get_logger("intake.group_commit")


class _Waiter(Generic[E, R]):
    __slots__ = ("entry", "error", "leads", "result", "wake")

    def __init__(self, entry: E) -> None:
        self.entry = entry
        self.wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.leads = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def settle(self, result: R | None, error: BaseException | None) -> None:
        self.result, self.error = result, error
        if not self.wake.done():
            self.wake.set_result(None)

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class GroupCommit(Generic[E, R]):
    """Runs `run_one(tx, entry)` alone when a slot is free, else `run_many(tx, entries)` for a group, on the
    leader's `Tx` (each call one statement with no transaction open, so it commits on its own)."""

    def __init__(self, run_one: Callable[[Tx, E], Awaitable[R]],
                 run_many: Callable[[Tx, list[E]], Awaitable[list[R]]], *,
                 in_flight: int = 2, max_batch: int = 64) -> None:
        self._run_one = run_one
        self._run_many = run_many
        self._limit = in_flight
        self.max_batch = max_batch
        self._busy = 0
        self._line: deque[_Waiter[E, R]] = deque()
        self.sizes: deque[int] = deque(maxlen=1000)  # the last statements' group sizes (tests, logs)

    async def run(self, tx: Tx, entry: E) -> R:
        """Writes `entry` through `tx` (with those waiting behind it) or waits for a leader to write it."""
        me: _Waiter[E, R] = _Waiter(entry)
        if self._busy < self._limit:
            self._busy += 1
            me.leads = True
        else:
            self._line.append(me)
            try:
                await me.wake
            except asyncio.CancelledError:
                if me in self._line:
                    self._line.remove(me)
                elif me.leads:  # promoted, then cancelled before leading: hand the slot on
                    self._release()
                raise
            if not me.leads:
                return me.outcome()
        group = [me]
        while self._line and len(group) < self.max_batch:
            other = self._line.popleft()
            if not other.wake.done():  # else its request was cancelled while waiting
                group.append(other)
        try:
            await self._write(tx, group)
        finally:
            for waiter in group:  # the leader was cancelled mid-statement: nobody knows if it committed
                if waiter.result is None and waiter.error is None:
                    waiter.settle(None, ProblemError(
                        503, "write_interrupted", "Ghi hồ sơ bị gián đoạn; gửi lại với cùng Idempotency-Key / "
                        "the write was interrupted: retry with the same Idempotency-Key", headers={"Retry-After": "1"}))
            self._release()
        return me.outcome()

    async def _write(self, tx: Tx, group: list[_Waiter[E, R]]) -> None:
        self.sizes.append(len(group))
        if len(group) == 1:
            try:
                group[0].settle(await self._run_one(tx, group[0].entry), None)
            except Exception as exc:
                group[0].settle(None, as_problem(exc, tx.conn) or exc)
            return
        try:
            results = await self._run_many(tx, [w.entry for w in group])
        except Exception as exc:
            fault = as_problem(exc, tx.conn)
            if fault is not None:  # the database, not an entry: every waiter gets the 503 (their retry is safe)
                for waiter in group:
                    waiter.settle(None, fault)
                return
            log.warning("group_failed_writing_one_by_one", size=len(group), error=repr(exc))
            for waiter in group:
                if fault is not None:
                    waiter.settle(None, fault)
                    continue
                try:
                    waiter.settle(await self._run_one(tx, waiter.entry), None)
                except Exception as one:
                    fault = as_problem(one, tx.conn)
                    waiter.settle(None, fault or one)
            return
        for waiter, result in zip(group, results, strict=True):
            waiter.settle(result, None)

    def _release(self) -> None:
        self._busy -= 1
        while self._line and self._busy < self._limit:
            nxt = self._line.popleft()
            if nxt.wake.done():  # cancelled while waiting
                continue
            nxt.leads = True
            self._busy += 1
            nxt.wake.set_result(None)
