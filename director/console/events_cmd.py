"""`.events`: stream job events to a console as JSON lines (the console ends it, or count/timeout)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Final

from director.console.acl import JobVisibility, find_job, hide_resource, require, require_job
from director.console.registry import Args, CommandError, Reply, Session, command
from director.events import Event, EventBus

MAX_STREAM_TIMEOUT: Final = 7 * 24 * 3600.0


@dataclass(frozen=True)
class EventFilter:
    """Which events one `.events` console wants, and which it may see."""

    jobid: int | None = None
    job: str | None = None

    def wants(self, event: Event) -> bool:
        if self.jobid is not None and event.get("jobid") != self.jobid:
            return False
        return self.job is None or self.job in (event.get("job"), event.get("name"))

    def as_dict(self) -> dict[str, object]:
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


async def visible_event(jobs: JobVisibility, event: Event) -> Event | None:
    """The event as the console may see it, or None: a job's event when the job is visible (its
    Job, Client, Pool and FileSet ACLs, through `JobVisibility`), a queue event with the JobIds it
    may see (none: no event), a wait reason naming a forbidden Storage, Client or Pool with that
    name hidden. An event about no job names other consoles' jobs: only a console that sees every
    job gets it."""
    jobid = event.get("jobid")
    jobids = event.get("jobids")
    name = event.get("name")
    if isinstance(name, str) and not jobs.session.acl("job", name):
        return None  # the Job ACL decides without looking the job up
    if isinstance(jobid, int):
        if not await jobs.visible(jobid):
            return None
    elif isinstance(jobids, list):
        mine = [j for j in jobids if isinstance(j, int) and await jobs.visible(j)]
        if not mine:
            return None
        if len(mine) != len(jobids):
            event = {**event, "jobids": mine, "jobs": len(mine)}
    elif not jobs.everything:
        return None
    wait = event.get("wait_reason")
    if isinstance(wait, dict) and isinstance(wait.get("resource"), str):
        shown = hide_resource(jobs.session, wait["resource"])
        if shown != wait["resource"]:
            event = {**event, "wait_reason": {**wait, "resource": shown}}
    return event


def event_reply(event: Event) -> Reply:
    """One streamed part: the event as one JSON line for people, the event itself for machines."""
    return Reply(text=json.dumps(event, default=str), data=event)


async def stream_events(
    jobs: JobVisibility,
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
                if not wanted.wants(event):
                    continue
                shown = await visible_event(jobs, event)
                if shown is None:
                    continue
                sent += 1
                yield event_reply(shown)
            ended = "count"
        finally:
            summary.data = {"events": {"sent": sent, "ended": ended}}


async def _refuse_foreign(jobs: JobVisibility, wanted: EventFilter) -> None:
    """`jobid=` of a job that exists and `job=` of a configured Job the console may not see are
    refused with a message, not answered with a stream that stays silent."""
    session = jobs.session
    job = wanted.job
    if job is not None and not session.acl("job", job) and job in session.director.config.jobs:
        require(session, "job", job)
    if wanted.jobid is not None and not jobs.everything:
        known = await find_job(session, wanted.jobid)
        if known is not None:
            require_job(session, known)


@command(".events", usage=".events [jobid=N] [job=NAME] [count=N] [timeout=SECONDS]")
async def events(session: Session, args: Args) -> Reply:
    """Stream job events as JSON lines until the console quits, `count` events or `timeout` s."""
    jobid = args.get("jobid")
    if jobid is not None and not jobid.isdigit():
        raise CommandError(f"jobid={jobid!r}: expected a JobId")
    wanted = EventFilter(jobid=None if jobid is None else int(jobid), job=args.get("job"))
    jobs = JobVisibility(session)
    await _refuse_foreign(jobs, wanted)
    count = _positive_int(args, "count")
    timeout = _seconds(args, "timeout")
    summary = Reply(text="", data={"events": {"sent": 0, "ended": "interrupted"}})
    summary.stream = stream_events(
        jobs, session.director.events, wanted, count=count, timeout=timeout, summary=summary
    )
    return summary
