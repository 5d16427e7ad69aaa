"""`.events`: stream job events to a console as JSON lines (the console ends it, or count/timeout)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Final

from director.console.registry import Args, CommandError, Reply, Session, command
from director.events import EventBus

MAX_STREAM_TIMEOUT: Final = 7 * 24 * 3600.0


@dataclass(frozen=True)
class EventFilter:
    """Which events one `.events` console wants, and which it may see."""

    jobid: int | None = None
    job: str | None = None

    def wants(self, event: dict[str, Any]) -> bool:
        if self.jobid is not None and event.get("jobid") != self.jobid:
            return False
        return self.job is None or self.job in (event.get("job"), event.get("name"))

    def as_dict(self) -> dict[str, Any]:
        return {"jobid": self.jobid, "job": self.job}


def _positive_int(args: Args, key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"{key}={value!r}: expected a whole number") from None
    if number <= 0:
        raise CommandError(f"{key}={value!r}: must be at least 1")
    return number


def _seconds(args: Args, key: str) -> float | None:
    value = args.get(key)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise CommandError(f"{key}={value!r}: expected a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_STREAM_TIMEOUT:
        raise CommandError(
            f"{key}={value!r}: must be more than 0 and at most {MAX_STREAM_TIMEOUT:g} s"
        )
    return seconds


def event_reply(event: dict[str, Any]) -> Reply:
    """One streamed part: the event as one JSON line for people, the event itself for machines."""
    return Reply(text=json.dumps(event, default=str), data=event)


async def stream_events(
    session: Session,
    bus: EventBus,
    wanted: EventFilter,
    *,
    count: int | None,
    timeout: float | None,
    summary: Reply,
) -> AsyncGenerator[Reply, None]:
    """Yield a `subscribed` marker, then each wanted event; fill in `summary` when done.

    Parts are pulled by different tasks, so no timeout context may span a `yield`: the deadline
    is checked around each wait instead.
    """
    sent = 0
    ended = "interrupted"  # the console sent something, or the Director is stopping
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    with bus.subscribe() as sub:
        try:
            yield event_reply(
                {
                    "event": "subscribed",
                    "seq": bus.seq,
                    "time": round(time.time(), 3),
                    "filter": wanted.as_dict(),
                    "count": count,
                    "timeout": timeout,
                }
            )
            while count is None or sent < count:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await sub.next()
                except TimeoutError:
                    ended = "timeout"
                    return
                name = event.get("name")
                if not wanted.wants(event) or (
                    isinstance(name, str) and not session.acl("job", name)
                ):
                    continue
                sent += 1
                yield event_reply(event)
            ended = "count"
        finally:
            summary.data = {"events": {"sent": sent, "ended": ended}}


@command(".events", usage=".events [jobid=N] [job=NAME] [count=N] [timeout=SECONDS]")
async def events(session: Session, args: Args) -> Reply:
    """Stream job events as JSON lines until the console quits, `count` events or `timeout` s."""
    jobid = args.get("jobid")
    if jobid is not None and not jobid.isdigit():
        raise CommandError(f"jobid={jobid!r}: expected a JobId")
    wanted = EventFilter(jobid=None if jobid is None else int(jobid), job=args.get("job"))
    count = _positive_int(args, "count")
    timeout = _seconds(args, "timeout")
    summary = Reply(text="", data={"events": {"sent": 0, "ended": "interrupted"}})
    summary.stream = stream_events(
        session, session.director.events, wanted, count=count, timeout=timeout, summary=summary
    )
    return summary
