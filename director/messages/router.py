"""Route each job and Director message to the destinations of its Messages resource, as Bareos does.

A job's messages follow the Messages resource its Job names (in the configuration the job started
with); the Director's own messages follow the Director resource's. Without either, messages go to
the console and the catalog, as they did before routing existed.

- `console` — kept for the `messages` command; `catalog` — the job's Log rows (`list joblog`);
- `append = PATH` appends; `file = PATH` starts the file afresh for each job (Director messages:
  once per Director run) and appends the rest of that job's messages;
- `syslog` — the local syslog (facility daemon); `stdout` / `stderr` — the Director's own streams;
- `mail = ADDR`, `mail on error = ADDR`, `mail on success = ADDR` — a job's messages are collected
  and, when the job has ended (always / only when it failed / only when it ended T or W), piped to
  the `Mail Command`;
- `operator = ADDR` — each message at once, piped to the `Operator Command`.

Commands get Bareos's %-codes (`%r` the address, `%i` the JobId, `%e` the exit status, …), every
value shell-quoted. They run in the router's task group, bounded in number and time; writes to
files happen as the message is logged, so they are in place when the job's end is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import syslog
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from common.logging import Log
from director.joblog import LogLine
from director.messages.filters import (
    ALL,
    EXIT_WORDS,
    FilterError,
    MessageType,
    message_type,
    parse_types,
    substitute,
)

if TYPE_CHECKING:
    from common.config.resources import Messages
    from director.config import DirectorConfig, JobResource

MAX_QUEUED: Final = 1000  # mail and operator deliveries waiting for the router's task
MAX_MAIL_LINES: Final = 10_000  # lines one job's mail keeps; the rest are counted
COMMAND_TIMEOUT: Final = 60.0  # seconds a Mail or Operator Command may take
STOP_TIMEOUT: Final = 10.0  # seconds the router waits for the last mails when the Director stops
OK_STATUSES: Final = frozenset({"T", "W"})
_SYSLOG_PRIORITY: Final = {
    MessageType.FATAL: syslog.LOG_CRIT,
    MessageType.ABORT: syslog.LOG_CRIT,
    MessageType.ERROR: syslog.LOG_ERR,
    MessageType.SECURITY: syslog.LOG_ERR,
    MessageType.WARNING: syslog.LOG_WARNING,
}


class Job(Protocol):
    """What the router reads of a job (JobControl has it)."""

    job_id: int
    unique: str
    name: str
    client: str | None
    bytes: int
    files: int
    volumes: list[str]
    resource: JobResource
    config: DirectorConfig | None  # the configuration the job started with
    done: asyncio.Event

    @property
    def status(self) -> str: ...

    @property
    def type_name(self) -> str: ...

    @property
    def level_name(self) -> str: ...


@dataclass(frozen=True)
class Destination:
    kind: str  # console, catalog, append, file, syslog, stdout, stderr, mail, mailonerror, mailonsuccess, operator
    target: str | None
    types: frozenset[MessageType]


DEFAULT: Final = (Destination("console", None, ALL), Destination("catalog", None, ALL))
MAIL_KINDS: Final = frozenset({"mail", "mailonerror", "mailonsuccess"})


@dataclass(frozen=True)
class Route:
    """A Messages resource ready to route: its destinations and commands."""

    name: str
    destinations: tuple[Destination, ...]
    mail_command: str | None = None
    operator_command: str | None = None


def route_of(resource: Messages | None) -> Route:
    """The Route of a Messages resource (None: the default, console and catalog)."""
    if resource is None:
        return Route("(default)", DEFAULT)
    out = []
    for dest in resource.destinations:
        try:
            types = parse_types(dest.types)
        except FilterError:
            types = frozenset()
        out.append(Destination(dest.kind.replace(" ", "").lower(), dest.target, types))
    return Route(resource.name, tuple(out), resource.mail_command, resource.operator_command)


@dataclass
class _Mail:
    """One job's messages for one mail destination, sent when the job ends."""

    destination: Destination
    command: str | None
    lines: list[str] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True)
class _Run:
    command: str
    body: str
    what: str


class MessageRouter:
    """Routes messages; `serve` runs the mail and operator commands until the Director stops."""

    def __init__(
        self,
        *,
        director_name: Callable[[], str],
        config: Callable[[], DirectorConfig],
        console: Callable[[LogLine], None],
        catalog: Callable[[int, float, str], None],
        log: Log,
        write_syslog: Callable[[int, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = director_name
        self._config = config
        self._console = console
        self._catalog = catalog
        self._log = log
        self._syslog = write_syslog or _syslog
        self._clock = clock
        self._queue: asyncio.Queue[_Run | Job] = asyncio.Queue(MAX_QUEUED)
        self._mails: dict[int, tuple[Job, list[_Mail]]] = {}  # running jobs' mails, by JobId
        self._started: set[tuple[int | None, str]] = set()  # `file` destinations begun afresh
        self._failed_paths: set[str] = set()

    # -- routing ------------------------------------------------------------------------------

    def job_message(self, jcr: Job, level: str, text: str) -> None:
        config = jcr.config or self._config()
        name = jcr.resource.messages
        route = route_of(config.messages.get(name) if name else self._director_resource(config))
        line = LogLine(self._clock(), jcr.job_id, jcr.unique, level, text)
        self._route(route, line, jcr)

    def director_message(self, level: str, text: str) -> None:
        route = route_of(self._director_resource(self._config()))
        self._route(route, LogLine(self._clock(), None, None, level, text), None)

    def _director_resource(self, config: DirectorConfig) -> Messages | None:
        name = config.director.messages
        return config.messages.get(name) if name else None

    def _route(self, route: Route, line: LogLine, jcr: Job | None) -> None:
        kind = message_type(line.level)
        rendered = line.render(self._name())
        for dest in route.destinations:
            if kind not in dest.types:
                continue
            try:
                self._deliver(route, dest, line, rendered, jcr)
            except Exception:  # one broken destination must not lose the message for the others
                self._log.exception(
                    "message_destination_failed", destination=dest.kind, target=dest.target
                )

    def _deliver(
        self, route: Route, dest: Destination, line: LogLine, rendered: str, jcr: Job | None
    ) -> None:
        match dest.kind:
            case "console":
                self._console(line)
            case "catalog":
                if line.job_id is not None:
                    self._catalog(line.job_id, line.time, rendered)
            case "append" | "file" if dest.target:
                self._write(dest, line.job_id, rendered)
            case "syslog":
                self._syslog(
                    _SYSLOG_PRIORITY.get(message_type(line.level), syslog.LOG_INFO), rendered
                )
            case "stdout" | "stderr":
                stream = sys.stdout if dest.kind == "stdout" else sys.stderr
                stream.write(rendered + "\n")
                stream.flush()
            case "operator" if dest.target:
                self._command(route.operator_command, dest, jcr, rendered, "operator")
            case "mail" | "mailonerror" | "mailonsuccess" if dest.target:
                if (
                    jcr is None
                ):  # a Director message, not a job's: nothing to wait for, sent as it comes
                    if dest.kind != "mailonsuccess":
                        self._command(route.mail_command, dest, None, rendered, "mail")
                    return
                self._collect(route, dest, jcr, rendered)
            case _:
                pass  # `director` (an FD/SD sending to us) and targetless forms have nothing to do here

    def _write(self, dest: Destination, job_id: int | None, rendered: str) -> None:
        assert dest.target is not None
        key = (job_id, dest.target)
        mode = "a"
        if dest.kind == "file" and key not in self._started:
            self._started.add(key)
            mode = "w"
        try:
            with open(dest.target, mode, encoding="utf-8", errors="backslashreplace") as out:
                out.write(rendered + "\n")
            self._failed_paths.discard(dest.target)
        except OSError as exc:
            if dest.target not in self._failed_paths:  # said once until it works again
                self._failed_paths.add(dest.target)
                self._log.error(
                    "message_file_unwritable",
                    destination=dest.kind,
                    path=dest.target,
                    error=str(exc),
                )

    def _collect(self, route: Route, dest: Destination, jcr: Job, rendered: str) -> None:
        if jcr.done.is_set():
            return  # the job's mail has gone
        if jcr.job_id not in self._mails:
            self._mails[jcr.job_id] = (jcr, [])
            self._enqueue(jcr)
        mails = self._mails[jcr.job_id][1]
        mail = next((m for m in mails if m.destination is dest), None)
        if mail is None:
            mail = _Mail(dest, route.mail_command)
            mails.append(mail)
        if len(mail.lines) < MAX_MAIL_LINES:
            mail.lines.append(rendered)
        else:
            mail.dropped += 1

    def _command(
        self, command: str | None, dest: Destination, jcr: Job | None, body: str, what: str
    ) -> None:
        if not command:
            self._log.warning(
                "message_command_missing",
                destination=dest.kind,
                target=dest.target,
                directive="Mail Command" if what == "mail" else "Operator Command",
            )
            return
        self._enqueue(
            _Run(substitute(command, self._codes(jcr, dest.target or "")), body + "\n", what)
        )

    def _codes(self, jcr: Job | None, recipients: str) -> dict[str, str]:
        codes = {"r": recipients, "d": self._name()}
        if jcr is not None:
            codes.update(
                c=jcr.client or "*none*",
                e=EXIT_WORDS.get(jcr.status, jcr.status),
                i=str(jcr.job_id),
                j=jcr.unique,
                l=jcr.level_name,
                n=jcr.name,
                t=jcr.type_name,
                b=str(jcr.bytes),
                F=str(jcr.files),
                v=",".join(jcr.volumes),
            )
        return codes

    def _enqueue(self, item: _Run | Job) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._log.error(
                "message_delivery_dropped", reason=f"more than {MAX_QUEUED} deliveries waiting"
            )

    # -- mail at the end of a job, commands --------------------------------------------------

    def _mail_job(self, jcr: Job) -> list[_Run]:
        """The mails of an ended job, by what its destinations ask for."""
        runs = []
        ok = jcr.status in OK_STATUSES
        _, mails = self._mails.pop(jcr.job_id, (jcr, []))
        for mail in mails:
            kind = mail.destination.kind
            if (
                not mail.lines
                or (kind == "mailonerror" and ok)
                or (kind == "mailonsuccess" and not ok)
            ):
                continue
            if not mail.command:
                self._log.warning(
                    "message_command_missing",
                    destination=kind,
                    target=mail.destination.target,
                    directive="Mail Command",
                )
                continue
            body = "\n".join(mail.lines) + (
                f"\n... {mail.dropped} more line(s) not mailed" if mail.dropped else ""
            )
            runs.append(
                _Run(
                    substitute(mail.command, self._codes(jcr, mail.destination.target or "")),
                    body + "\n",
                    "mail",
                )
            )
        return runs

    async def _when_done(self, jcr: Job, tg: asyncio.TaskGroup) -> None:
        await jcr.done.wait()
        for run in self._mail_job(jcr):
            tg.create_task(self._run(run))

    async def _run(self, run: _Run) -> None:
        try:
            proc = await asyncio.create_subprocess_shell(
                run.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            self._log.error(
                "message_command_failed", what=run.what, command=run.command, error=str(exc)
            )
            return
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                _, err = await proc.communicate(run.body.encode("utf-8", "backslashreplace"))
        except TimeoutError:
            proc.kill()
            await proc.wait()
            self._log.error(
                "message_command_timeout",
                what=run.what,
                command=run.command,
                seconds=COMMAND_TIMEOUT,
            )
            return
        if proc.returncode != 0:
            self._log.error(
                "message_command_failed",
                what=run.what,
                command=run.command,
                status=proc.returncode,
                stderr=err.decode(errors="replace")[-500:],
            )

    async def serve(self, stop: asyncio.Event) -> None:
        """Run deliveries until `stop`; then mail what ended jobs still have and wait for the
        commands in flight, at most STOP_TIMEOUT seconds."""
        watchers: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as tg:
            stopped = tg.create_task(stop.wait())
            while not stop.is_set():
                getter = tg.create_task(self._queue.get())
                await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    break
                item = getter.result()
                if isinstance(item, _Run):
                    tg.create_task(self._run(item))
                else:
                    watchers.append(tg.create_task(self._when_done(item, tg)))
                    watchers = [w for w in watchers if not w.done()]
            for watcher in watchers:
                watcher.cancel()
            last = [run for jcr, _ in list(self._mails.values()) for run in self._mail_job(jcr)]
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item, _Run):
                    last.append(item)
            if last:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await asyncio.gather(*(self._run(run) for run in last))


def _syslog(priority: int, text: str) -> None:
    syslog.openlog("strongroom-dir", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(priority, text)
