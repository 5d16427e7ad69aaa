"""Job events: every status change (and a few other moments) as one JSON-able dict, fanned out to
subscribers (`.events` consoles) without ever blocking the job that produced it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

SUBSCRIBER_BACKLOG: Final = 10_000

# One event: JSON-able fields (`seq`, `time`, `event` and what the publisher adds).
Event = dict[str, object]


class Subscription:
    """A bounded queue of events; when a slow reader falls behind, the oldest events are dropped and
    counted, and the next event it reads says how many it lost."""

    def __init__(self, backlog: int = SUBSCRIBER_BACKLOG) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=backlog)
        self.lost = 0

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.lost += 1
        self.queue.put_nowait(event)

    async def next(self) -> Event:
        event = await self.queue.get()
        if self.lost:
            event = {**event, "lost": self.lost}
            self.lost = 0
        return event


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self.seq = 0

    def publish(self, kind: str, **fields: object) -> Event:
        self.seq += 1
        event = {"seq": self.seq, "time": round(time.time(), 3), "event": kind, **fields}
        for sub in self._subscribers:
            sub.offer(event)
        return event

    @contextmanager
    def subscribe(self, backlog: int = SUBSCRIBER_BACKLOG) -> Iterator[Subscription]:
        sub = Subscription(backlog)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
