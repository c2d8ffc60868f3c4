"""Group commit: alone at low load, grouped while statements are in flight, each entry its own answer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest

from services.intake.group_commit import GroupCommit
from shared.db import Tx
from shared.problems import ProblemError

TX = cast(Tx, SimpleNamespace(conn=None))  # the writers never touch it; a failure is judged with its `conn`


class Writer:
    """Stands in for the statements: records calls; `gate` holds a write until the test opens it."""

    def __init__(self, bad: set[str] | None = None, down: bool = False) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.bad = bad or set()
        self.down = down  # the database went away: every statement fails as asyncpg reports it

    async def one(self, _tx: Tx, entry: str) -> str:
        self.calls.append(("one", [entry]))
        await self.gate.wait()
        if self.down:
            raise asyncpg.InterfaceError("connection has been released back to the pool")
        if entry in self.bad:
            raise ValueError(f"bad {entry}")
        return entry.upper()

    async def many(self, _tx: Tx, entries: list[str]) -> list[str]:
        self.calls.append(("many", entries))
        await self.gate.wait()
        if self.down:
            raise asyncpg.AdminShutdownError("terminating connection due to administrator command")
        if self.bad & set(entries):
            raise ValueError("a bad entry fails the whole statement")
        return [e.upper() for e in entries]


async def _started(*coros: Any) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(c) for c in coros]
    await asyncio.sleep(0)
    return tasks


async def test_at_low_load_each_entry_goes_alone_and_at_once() -> None:
    w = Writer()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1)
    assert [await group.run(TX, e) for e in ("a", "b", "c")] == ["A", "B", "C"]
    assert w.calls == [("one", ["a"]), ("one", ["b"]), ("one", ["c"])]
    assert list(group.sizes) == [1, 1, 1]


async def test_entries_arriving_during_a_write_share_the_next_statement_up_to_max_batch() -> None:
    w = Writer()
    w.gate.clear()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1, max_batch=4)
    first = await _started(group.run(TX, "first"))
    rest = await _started(*(group.run(TX, f"e{i}") for i in range(6)))
    assert w.calls == [("one", ["first"])]  # the others wait in line while it is written
    w.gate.set()
    results = await asyncio.gather(*first, *rest)
    assert results == ["FIRST"] + [f"E{i}" for i in range(6)]
    assert w.calls[1:] == [("many", ["e0", "e1", "e2", "e3"]), ("many", ["e4", "e5"])]
    assert list(group.sizes) == [1, 4, 2]


async def test_a_failed_group_is_written_again_one_by_one_and_only_the_bad_entry_fails() -> None:
    w = Writer(bad={"e1"})
    w.gate.clear()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1)
    tasks = await _started(group.run(TX, "first"), *(group.run(TX, f"e{i}") for i in range(3)))
    w.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "FIRST" and results[1] == "E0" and results[3] == "E2"
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad e1"
    assert w.calls[1] == ("many", ["e0", "e1", "e2"])
    assert w.calls[2:] == [("one", ["e0"]), ("one", ["e1"]), ("one", ["e2"])]


async def test_a_database_gone_mid_group_is_a_503_for_every_waiter_and_nothing_is_retried_on_it() -> None:
    """PostgreSQL shut down under a group statement: each waiter (whose own connection is fine) gets the
    503 with Retry-After, not the leader's dead-connection error as a 500, and no entry is tried again."""
    w = Writer()
    w.gate.clear()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1)
    first = await _started(group.run(TX, "first"))
    rest = await _started(*(group.run(TX, f"e{i}") for i in range(3)))
    w.down = True
    w.gate.set()
    results = await asyncio.gather(*first, *rest, return_exceptions=True)
    for outcome in results:
        assert isinstance(outcome, ProblemError) and outcome.status == 503, outcome
        assert outcome.headers is not None and outcome.headers["Retry-After"] == "1"
    assert w.calls == [("one", ["first"]), ("many", ["e0", "e1", "e2"])]


async def test_a_cancelled_waiter_is_never_written_and_the_line_moves_on() -> None:
    w = Writer()
    w.gate.clear()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1)
    first, gone, kept = await _started(group.run(TX, "first"), group.run(TX, "gone"), group.run(TX, "kept"))
    gone.cancel()
    await asyncio.sleep(0)
    w.gate.set()
    assert await first == "FIRST" and await kept == "KEPT"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert w.calls == [("one", ["first"]), ("one", ["kept"])]
    assert await group.run(TX, "later") == "LATER"  # the slot was handed back


async def test_a_leader_cancelled_mid_write_tells_its_group_to_retry_and_frees_its_slot() -> None:
    w = Writer()
    w.gate.clear()
    group: GroupCommit[str, str] = GroupCommit(w.one, w.many, in_flight=1)
    first, leader, other = await _started(group.run(TX, "first"), group.run(TX, "a"), group.run(TX, "b"))
    first.cancel()  # a leader alone: its slot goes to "a", which leads "a" and "b"
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0)
    assert w.calls[-1] == ("many", ["a", "b"])
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(ProblemError) as interrupted:
        await other
    assert interrupted.value.status == 503 and interrupted.value.code == "write_interrupted"
    w.gate.set()
    assert await group.run(TX, "after") == "AFTER"
