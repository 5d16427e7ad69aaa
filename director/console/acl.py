"""Bareos ACLs for consoles: evaluation, and the one helper every command checks objects through.

An ACL is a list of entries from the Console resource, then from each of its Profiles; the first
entry that matches decides, `!name` denies, `*all*` matches everything, an entry with regex
characters is a regular expression matched against the whole name, and no match denies.

Commands never call `session.acl` for an object they show or touch: they call `require`,
`require_job`, `job_visible`, `require_resolved`, `volume_visible`, `JobVisibility` or
`require_where` here, so each kind of object is checked the same way: a job row against the Job,
Client, Pool and FileSet ACLs at once; a resolved run against those and the Storage ACL, the
defaults its Job and JobDefs fill in included; a volume against the Pool and Storage ACLs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

from director.catalog import JobRow, MediaRow
from director.console.paging import Window, paged
from director.console.registry import CommandError, Session
from director.joblog import LogLine

if TYPE_CHECKING:
    from director.config import DirectorConfig
    from director.jobs.control import JobControl
    from director.jobs.setup import Resolved

T = TypeVar("T")
K = TypeVar("K")  # the key a catalog page continues after

# A job as commands meet it: a catalog row, a job the Director holds, or a row as a dict.
JobLike: TypeAlias = "JobRow | JobControl | Mapping[str, object]"

ALL: Final = "*all*"
DEFAULT_CONSOLE: Final = "*UserAgent*"  # the Director's own console: no ACLs
HIDDEN: Final = "(hidden)"  # what a console sees instead of a name its ACLs do not permit
_REGEX_CHARS: Final = set("^$.[]|()*+?{}\\")
# what a command names a kind of object -> the ACL that governs it
KINDS: Final = {
    "job": "job",
    "restore job": "job",
    "restorejob": "job",
    "client": "client",
    "restoreclient": "client",
    "storage": "storage",
    "pool": "pool",
    "nextpool": "pool",
    "next_pool": "pool",
    "next pool": "pool",
    "target storage": "storage",
    "target pool": "pool",
    "fileset": "fileset",
    "schedule": "schedule",
    "catalog": "catalog",
    "where": "where",
    "command": "command",
}
# which ACL each attribute of a job (catalog row, live job, resolved run) is checked against
JOB_FIELDS: Final = (
    ("name", "job"),
    ("client", "client"),
    ("pool", "pool"),
    ("fileset", "fileset"),
)
# which ACL each attribute of a volume (catalog Media row) is checked against
MEDIA_FIELDS: Final = (("pool", "pool"), ("storage", "storage"))


class AccessDenied(CommandError):
    """An object the console's ACLs do not permit; the text names the object and the console."""

    def __init__(self, console: str, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} is not permitted for console {console!r}")
        self.console, self.kind, self.name = console, kind, name


def _matches(pattern: str, item: str) -> bool:
    if pattern.lower() == ALL:
        return True
    if _REGEX_CHARS & set(pattern):
        try:
            return re.fullmatch(pattern, item, re.IGNORECASE) is not None
        except re.error:
            return False
    return pattern.lower() == item.lower()


def acl_allows(entry_lists: Iterable[Sequence[str]], item: str) -> bool:
    """True when the first matching entry across the lists allows `item`; no match denies."""
    for entries in entry_lists:
        for entry in entries:
            deny = entry.startswith("!")
            pattern = entry[1:] if deny else entry
            if _matches(pattern, item):
                return not deny
    return False


ACL_FIELDS: Final = {
    "command": "command_acl",
    "job": "job_acl",
    "client": "client_acl",
    "storage": "storage_acl",
    "schedule": "schedule_acl",
    "pool": "pool_acl",
    "fileset": "file_set_acl",
    "catalog": "catalog_acl",
    "where": "where_acl",
}


def acl_lists(config: DirectorConfig, console_name: str, kind: str) -> list[Sequence[str]]:
    """The `kind` ACL entries of a console and then of its profiles, in the order they decide."""
    console = config.consoles[console_name]
    holders = [console] + [config.profiles[p] for p in console.profile if p in config.profiles]
    field = ACL_FIELDS[kind]
    lists: list[Sequence[str]] = [getattr(holder, field) for holder in holders]
    return lists


def allows_every_name(entry_lists: Iterable[Sequence[str]]) -> bool:
    """Whether the entry that decides first is `*all*` (no deny before it): every name passes."""
    for entries in entry_lists:
        for entry in entries:
            return entry.lower() == ALL
    return False


def sees_every_job(session: Session) -> bool:
    """Whether every job is visible to the console: its Job, Client, Pool and FileSet ACLs allow
    every name (or it is the Director's own console)."""
    if unrestricted(session):
        return True
    config = session.director.config
    return all(
        allows_every_name(acl_lists(config, session.console, kind)) for _field, kind in JOB_FIELDS
    )


def unrestricted(session: Session) -> bool:
    """The Director's own console, which has no ACLs (and may see credentials in `show`)."""
    return session.console == DEFAULT_CONSOLE


def permitted(session: Session, kind: str, name: str | None) -> bool:
    """May the console use the object `name` of `kind`? An absent name (None, "") is no object."""
    if not name:
        return True
    return session.acl(KINDS[kind], name)


def require(session: Session, kind: str, name: str | None) -> None:
    """Raise AccessDenied unless the console may use `name` (an absent name passes)."""
    if not permitted(session, kind, name):
        raise AccessDenied(session.console, kind, str(name))


def first_denied(session: Session, given: Mapping[str, str | None]) -> tuple[str, str] | None:
    """The first (kind, name) of `{kind: name}` the console may not use, or None."""
    for key, name in given.items():
        kind = key.replace("_", " ")
        if name and not permitted(session, kind, name):
            return kind, name
    return None


def require_all(session: Session, **given: str | None) -> None:
    """`require_all(session, job=..., client=..., pool=...)`: each name against its ACL."""
    denied = first_denied(session, given)
    if denied is not None:
        raise AccessDenied(session.console, *denied)


def resolved_names(resolved: Resolved) -> dict[str, str | None]:
    """Every resource a resolved run uses: what the command line named and what its Job and
    JobDefs filled in (client, fileset, pool per level, first storage)."""
    return {
        "job": resolved.resource.name,
        "client": resolved.client,
        "fileset": resolved.fileset,
        "pool": resolved.pool,
        "storage": resolved.storage,
    }


def require_resolved(session: Session, resolved: Resolved, **more: str | None) -> None:
    """Raise AccessDenied unless every resource of a resolved run (and each of `more`, such as
    the Storages a restore reads) is permitted: `run`, `estimate`, `restore` check through this."""
    require_all(session, **resolved_names(resolved), **more)


def _field(job: JobLike, attr: str) -> object:
    return job.get(attr) if isinstance(job, Mapping) else getattr(job, attr, None)


def row_denial(
    session: Session, row: object, fields: Iterable[tuple[str, str]]
) -> tuple[str, str] | None:
    """The first (kind, name) among a row's `fields` (attribute, ACL kind) the console may not see."""
    for attr, kind in fields:
        value = row.get(attr) if isinstance(row, Mapping) else getattr(row, attr, None)
        if isinstance(value, str) and not permitted(session, kind, value):
            return kind, value
    return None


def job_denial(session: Session, job: JobLike) -> tuple[str, str] | None:
    """The first (kind, name) of a job (row, dict, live job, resolved run) the console may not see."""
    return row_denial(session, job, JOB_FIELDS)


def job_visible(session: Session, job: JobLike) -> bool:
    """A job is visible when its Job, Client, Pool and FileSet are all permitted."""
    return job_denial(session, job) is None


def volume_visible(session: Session, media: MediaRow) -> bool:
    """A volume is visible when its Pool and the Storage it was labeled on are permitted."""
    return row_denial(session, media, MEDIA_FIELDS) is None


def require_job(session: Session, job: JobLike) -> None:
    """Raise AccessDenied naming the job when any of its objects is forbidden.

    The refusal names the JobId only, not the forbidden client or pool, so it leaks nothing that
    `list jobs` would not show.
    """
    denial = job_denial(session, job)
    if denial is not None:
        job_id = _field(job, "job_id") or _field(job, "jobid")
        raise AccessDenied(session.console, "JobId", str(job_id))


def require_where(session: Session, where: str | None) -> None:
    """A restore's `where` (or `regexwhere`) must be permitted by the Where ACL; "" is `/`."""
    if where is None:
        return
    value = where or "/"
    if not session.acl("where", value):
        raise AccessDenied(session.console, "where", value)


def require_catalog(session: Session) -> None:
    """Commands that read or write the catalog need its Catalog ACL (Bareos `open_client_db`)."""
    for name in session.director.config.catalogs:
        require(session, "catalog", name)
        return


def hide_resource(session: Session, resource: str) -> str:
    """A wait reason's `kind=name` as the console may see it: a forbidden name is `(hidden)`."""
    kind, sep, name = resource.partition("=")
    if sep and kind in KINDS and not permitted(session, kind, name):
        return f"{kind}={HIDDEN}"
    return resource


async def find_job(session: Session, job_id: int) -> JobLike | None:
    """The job with a JobId: the one the Director holds (live status), else its catalog row."""
    director = session.director
    live = director.queue.jobs.get(job_id)
    if live is not None:
        return live
    row: JobRow | None = await director.db.get_job(job_id)
    return row


class JobVisibility:
    """Whether a console may see the job with a JobId (the job the Director holds, else its
    catalog row), decided once per JobId: for `messages` and `.events`, which meet the same
    JobIds again and again."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._everything: bool | None = None  # decided when first asked
        self._seen: dict[int, bool] = {}

    @property
    def everything(self) -> bool:
        """Whether the console sees every job (then no job is looked up)."""
        if self._everything is None:
            self._everything = sees_every_job(self.session)
        return self._everything

    async def visible(self, job_id: int) -> bool:
        if self.everything:
            return True
        if job_id not in self._seen:
            job = await find_job(self.session, job_id)
            self._seen[job_id] = job is not None and job_visible(self.session, job)
        return self._seen[job_id]


async def visible_pages(
    session: Session,
    fetch: Callable[[K, int, int], Awaitable[list[T]]],
    key_of: Callable[[T], K],
    window: Window,
    start: K,
    *,
    keep: Callable[[T], bool],
) -> AsyncGenerator[T, None]:
    """`paged` for a console that may not see every row: `keep` filters, and `limit=`/`offset=`
    count the rows the console sees, not the rows the catalog holds."""
    if unrestricted(session):
        async for item in paged(fetch, key_of, window, start):
            yield item
        return
    shown = skipped = 0
    async for item in paged(fetch, key_of, Window(), start):
        if not keep(item):
            continue
        if skipped < window.offset:
            skipped += 1
            continue
        if window.limit is not None and shown >= window.limit:
            return
        shown += 1
        yield item


async def visible_messages(session: Session, lines: list[LogLine]) -> list[LogLine]:
    """The job messages a console may read: those of jobs it may see. The Director's own messages
    (no job) name other jobs and resources, so only a console that sees every job reads them."""
    jobs = JobVisibility(session)
    if jobs.everything:
        return lines
    return [line for line in lines if line.job_id is not None and await jobs.visible(line.job_id)]
