"""first_set and done_or_set: the first of several waits, with no waiter left behind."""

from __future__ import annotations

import asyncio

from common.aio import done_or_set, first_set


def _pending_waiters() -> int:
    return sum(
        1 for t in asyncio.all_tasks() if not t.done() and "Event.wait" in repr(t.get_coro())
    )


async def test_first_set_returns_the_event_and_leaves_nothing_pending() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, b.set)
    assert await first_set([a, b]) is b
    assert _pending_waiters() == 0
    assert await first_set([a], timeout=0.01) is None
    assert _pending_waiters() == 0
    a.set()
    assert await first_set([a, b]) is a  # already set: at once


async def test_first_set_canceled_from_outside_cancels_its_waiters() -> None:
    task = asyncio.ensure_future(first_set([asyncio.Event(), asyncio.Event()]))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert _pending_waiters() == 0


async def test_done_or_set_never_cancels_the_future() -> None:
    work = asyncio.ensure_future(asyncio.sleep(0.05, result="done"))
    stop = asyncio.Event()
    stop.set()
    assert await done_or_set(work, stop) is False
    assert not work.cancelled()
    assert await work == "done"
    assert await done_or_set(work, asyncio.Event()) is True
