"""Small asyncio helpers that every daemon needs the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def first_set(
    events: Iterable[asyncio.Event], timeout: float | None = None
) -> asyncio.Event | None:
    """Wait until the first of `events` is set, or `timeout` seconds; returns that event (one
    already set is returned at once), or None on timeout. Its waiters are always canceled and
    awaited, also when the caller is canceled: none is left pending."""
    events = list(events)
    for event in events:
        if event.is_set():
            return event
    waiters = {asyncio.ensure_future(event.wait()): event for event in events}
    try:
        done, _pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        await _cancel(waiters)
    return next((waiters[w] for w in waiters if w in done), None)


async def done_or_set(
    future: asyncio.Future[Any], event: asyncio.Event, timeout: float | None = None
) -> bool:
    """Wait until `future` is done or `event` is set (or `timeout`), without canceling `future`;
    True when `future` is done. The event's waiter is always canceled."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({future, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel({waiter: event})
    return future.done()


async def _cancel(waiters: Iterable[asyncio.Future[Any]]) -> None:
    pending = [w for w in waiters if not w.done()]
    for waiter in pending:
        waiter.cancel()
    for waiter in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
