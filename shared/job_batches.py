"""Jobs of one entrypoint that a worker holds at the same moment, handled in one call.

A burst of submissions leaves one `dossier.received` job per dossier. Handled one by one, each
costs a statement, a round trip and a commit; gathered, twenty of them cost one. Each job still
succeeds or fails on its own: when a batch fails, its jobs are run again one at a time, so one bad
payload fails (and is retried) alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

BatchRunner = Callable[[list[dict[str, Any]]], Awaitable[None]]
log = structlog.get_logger("worker.batch")


class JobBatcher:
    """Collects job payloads for `window` seconds (or up to `max_batch`) and runs them together."""

    def __init__(self, run: BatchRunner, *, max_batch: int, window: float = 0.002) -> None:
        self._run = run
        self.max_batch = max_batch
        self.window = window
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.sizes: deque[int] = deque(maxlen=1000)  # the last batches' sizes (tests, logs): bounded in a worker

    async def submit(self, data: dict[str, Any]) -> None:
        """Resolves when this payload's batch (or, after a failed batch, the payload alone) is done."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((data, done))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush)
        await done

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._pending = self._pending, []
        if items:
            task = asyncio.get_running_loop().create_task(self._handle(items))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _handle(self, items: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(batch=len(items))
        self.sizes.append(len(items))
        try:
            await self._run([data for data, _ in items])
        except asyncio.CancelledError:
            for _, done in items:
                done.cancel()
            raise
        except Exception as exc:
            if len(items) == 1:
                _settle(items[0][1], exc)
                return
            log.warning("batch_failed_running_one_by_one", size=len(items), error=repr(exc))
            for data, done in items:
                try:
                    await self._run([data])
                except Exception as one:
                    _settle(done, one)
                else:
                    _settle(done, None)
        else:
            for _, done in items:
                _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the job was cancelled (worker stopping): it runs again later
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
