"""Restore planning: which jobs a restore reads, the latest state of their files, and the job request.

The console parses a `restore` command into a `RestoreQuery` and `RestoreOptions`, shows the
`Plan` (and lets the operator mark files in it), then asks for the `RestoreRequest` and submits it.
Everything that reads the catalog to decide what a restore takes is here:

- `jobid=a,b` restores exactly those JobIds;
- `jobid=N select` restores N's chain, as Bareos's "select full restore to a specified job": the
  Full before N, the latest Differential after that Full and before N, the Incrementals after that
  up to N (same client and FileSet name);
- otherwise the latest state of a client's FileSet before a time: the newest Full, Differential
  and Incrementals (`selection.backup_chain`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from director.catalog import Catalog, JobMediaRow, JobRow
from director.jobs.request import RunRequest
from director.restore.bootstrap import bootstrap_from_ranges
from director.restore.chosen import Chosen, choose_in_steps
from director.restore.selection import OK_STATUSES, Selection, backup_chain, chain_to
from protocol.jobs import BootstrapSpec
from protocol.restore_policy import REPLACE_POLICIES

if TYPE_CHECKING:
    from director.catalog.service import CatalogService

UNAVAILABLE: Final = frozenset({"Error", "Purged", "Disabled", "Recycle"})
# No Where anywhere: the File Daemon restores under its own Working Directory (restores/, 0700),
# never into a world-writable /tmp where another user could prepare the path.
DEFAULT_WHERE: Final = ""


class RestoreRefused(Exception):
    """A restore that cannot be planned as asked; the text goes back to the operator."""


@dataclass(frozen=True)
class RestoreQuery:
    """Which backups a restore reads, as the command line said it."""

    job_ids: tuple[int, ...] = ()
    chain: bool = False  # `jobid=N select`: N's restore chain, not N alone
    client: str | None = None
    fileset: str | None = None
    before: float | None = None
    # Which catalog jobs the asking console may see: a chain and a client's latest state are
    # built from those only, and a refusal lists only their clients and FileSets.
    visible: Callable[[JobRow], bool] = field(default=lambda _row: True, compare=False)


@dataclass(frozen=True)
class RestoreOptions:
    """Where and how the File Daemon writes, after the Restore job's defaults are applied."""

    restore_job: str
    client: str | None
    where: str
    replace: str
    strip_prefix: str | None = None
    add_prefix: str | None = None
    add_suffix: str | None = None
    regex_where: str | None = None
    storage: str | None = None  # read from this Storage instead of each volume's own
    # Keep setuid/setgid bits, device nodes and security.*/trusted.* xattrs also when restoring to
    # a `where` other than / or to another client (the File Daemon strips them otherwise).
    privileged_content: bool = False

    def __post_init__(self) -> None:
        if self.replace not in REPLACE_POLICIES:
            raise RestoreRefused(f"replace={self.replace}: use {', '.join(REPLACE_POLICIES)}")


@dataclass
class Plan:
    """The jobs a restore reads (oldest first), what it takes of their latest state, and what
    the catalog chose for that (`restore.chosen`; the file list itself is never held)."""

    jobs: list[JobRow]
    selection: Selection | None = None
    chosen: Chosen | None = None

    @property
    def job_ids(self) -> list[int]:
        return [j.job_id for j in self.jobs]

    def selected_text(self) -> str:
        return f"You have selected the following JobIds: {','.join(map(str, self.job_ids))}"


def _only(names: list[str], kind: str, given: str | None) -> str:
    if given:
        if given not in names:
            raise RestoreRefused(
                f"no {kind} named {given!r} (known: {', '.join(sorted(names)) or 'none'})"
            )
        return given
    if len(names) == 1:
        return names[0]
    raise RestoreRefused(f"restore: choose a {kind} with {kind}=NAME ({', '.join(sorted(names))})")


def _given_jobs(catalog: Catalog, ids: tuple[int, ...]) -> list[JobRow]:
    jobs = []
    for job_id in sorted(set(ids)):
        job = catalog.get_job(job_id)
        if job is None:
            raise RestoreRefused(f"JobId {job_id} is not in the catalog")
        if job.type not in ("B", "C") or job.status not in OK_STATUSES:
            raise RestoreRefused(
                f"JobId {job_id} is not a successful backup or copy (type {job.type}, "
                f"status {job.status})"
            )
        jobs.append(job)
    return jobs


def _chain(catalog: Catalog, job_id: int, visible: Callable[[JobRow], bool]) -> list[JobRow]:
    (target,) = _given_jobs(catalog, (job_id,))
    if target.type != "B" or target.level == "F":
        return [target]
    fileset_ids = (
        set(catalog.fileset_ids(target.fileset)) if target.fileset else {target.fileset_id}
    )
    candidates = [
        j
        for j in catalog.list_jobs(client_id=target.client_id, job_type="B")
        if j.fileset_id in fileset_ids and visible(j)
    ]
    chain = chain_to(candidates, target)
    if not chain:
        raise RestoreRefused(
            f"JobId {job_id} is a {'Differential' if target.level == 'D' else 'Incremental'} "
            f"with no successful Full backup of client {target.client!r} before it"
        )
    return chain


def _latest(catalog: Catalog, query: RestoreQuery, default_fileset: str | None) -> list[JobRow]:
    backups = [j for j in catalog.list_jobs(job_type="B") if query.visible(j)]
    client = _only(sorted({j.client for j in backups if j.client}), "client", query.client)
    client_id = catalog.client_id(client)
    mine = [j for j in backups if j.client_id == client_id]
    filesets = sorted({j.fileset for j in mine if j.fileset})
    if query.fileset is not None and query.fileset not in filesets:
        raise RestoreRefused(
            f"no fileset named {query.fileset!r} backed up for client {client!r} "
            f"(known: {', '.join(filesets) or 'none'})"
        )
    wanted = query.fileset or (default_fileset if default_fileset in filesets else None)
    if wanted is None:
        wanted = _only(filesets, "fileset", None)
    fileset_ids = set(catalog.fileset_ids(wanted))
    jobs = backup_chain(
        [j for j in mine if j.fileset_id in fileset_ids], client_id, None, query.before
    )
    if not jobs:
        raise RestoreRefused(
            f"no successful Full backup of client {client!r} FileSet {wanted!r} to restore from"
        )
    return jobs


def plan_restore(catalog: Catalog, query: RestoreQuery, default_fileset: str | None) -> Plan:
    """The jobs and the latest live state of their files (runs on the catalog thread)."""
    if query.job_ids and query.chain and len(query.job_ids) == 1:
        jobs = _chain(catalog, query.job_ids[0], query.visible)
    elif query.job_ids:
        jobs = _given_jobs(catalog, query.job_ids)
    else:
        jobs = _latest(catalog, query, default_fileset)
    return Plan(jobs)


async def choose_files(db: CatalogService, plan: Plan, selection: Selection) -> Chosen:
    """Select in the catalog, a page per step on its thread, and keep the result in the plan."""
    plan.selection = selection
    plan.chosen = await choose_in_steps(db, plan.job_ids, selection)
    return plan.chosen


@dataclass(frozen=True)
class RestoreRequest:
    """The Restore job to submit, and what to tell the operator about it."""

    request: RunRequest
    bootstrap: list[BootstrapSpec]
    expected_files: int
    substitutions: dict[int, int]  # JobId whose volumes are unavailable -> the copy read instead
    volume_storage: dict[str, str] = field(
        default_factory=dict
    )  # volume -> Storage it was written on
    storage_override: bool = False  # the operator named a Storage: every volume is read there

    def storages_read(self, default: str | None) -> set[str]:
        """Every Storage the Restore job reads from, as director/jobs/restore.py makes its passes:
        the named Storage, else each volume's own, else `default` (the job's resolved Storage)."""
        if self.storage_override:
            names = {default}
        else:
            names = {self.volume_storage.get(b.volume_name, default) for b in self.bootstrap}
        return {n for n in names if n}


async def restore_request(
    db: CatalogService, plan: Plan, options: RestoreOptions
) -> RestoreRequest:
    """The bootstrap (volumes, sessions, file indexes) and the RunRequest of the Restore job."""
    chosen = plan.chosen
    if chosen is None or not chosen.files:
        raise RestoreRefused("no files selected; nothing to restore")
    job_ids = plan.job_ids
    hidden = chosen.hidden
    jobmedia, substitutions = await _usable_media(db, job_ids)
    bootstrap = bootstrap_from_ranges(chosen.ranges, jobmedia, job_ids)
    expected = chosen.files
    media = {m.volume_name: m.storage for m in await db.list_media(None)}
    volume_storage = {
        b.volume_name: where for b in bootstrap if (where := media.get(b.volume_name))
    }
    params: dict[str, object] = {
        "bootstrap": bootstrap,
        "where": os.fsencode(options.where),
        "replace": options.replace,
        "strip_prefix": os.fsencode(options.strip_prefix or "") or None,
        "add_prefix": os.fsencode(options.add_prefix or "") or None,
        "add_suffix": os.fsencode(options.add_suffix or "") or None,
        "regex_where": options.regex_where,
        "hidden_indexes": hidden,
        "expected_files": expected,
        "source_jobs": job_ids,
        "volume_storage": volume_storage,
        "storage_override": bool(options.storage),
        "privileged_content": options.privileged_content,
    }
    storage = options.storage
    if not storage and bootstrap:
        storage = volume_storage.get(bootstrap[0].volume_name)
    request = RunRequest(
        job=options.restore_job, client=options.client, storage=storage, params=params
    )
    return RestoreRequest(
        request,
        bootstrap,
        expected,
        substitutions,
        volume_storage=volume_storage,
        storage_override=bool(options.storage),
    )


async def _usable_media(
    db: CatalogService, job_ids: list[int]
) -> tuple[list[JobMediaRow], dict[int, int]]:
    """JobMedia for the jobs; a job whose volumes are unavailable is read from a good copy of it."""
    status = {m.volume_name: m.status for m in await db.list_media(None)}
    rows: list[JobMediaRow] = await db.list_jobmedia(job_ids)
    out: list[JobMediaRow] = []
    substitutions: dict[int, int] = {}
    for job_id in job_ids:
        mine = [r for r in rows if r.job_id == job_id]
        if mine and all(status.get(r.volume_name) not in UNAVAILABLE for r in mine):
            out.extend(mine)
            continue
        for copy in await db.copies_of(job_id):
            theirs = await db.list_jobmedia([copy.job_id])
            if theirs and all(status.get(r.volume_name) not in UNAVAILABLE for r in theirs):
                # A copy holds the same records under the same file indexes, in its own session.
                out.extend(dataclasses.replace(r, job_id=job_id) for r in theirs)
                substitutions[job_id] = copy.job_id
                break
        else:
            out.extend(mine)
    return out, substitutions
