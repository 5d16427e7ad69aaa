"""`show`: print configured resources in configuration syntax, passwords redacted."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Final

from pydantic import BaseModel

from common.config import dump_resource, render_resource
from director.config import DirectorConfig, JobResource, ScheduleResource
from director.console.acl import permitted, unrestricted
from director.console.paging import PART_BYTES
from director.console.registry import Args, CommandError, Reply, Session, command
from director.console.schedule_view import next_runs_text, schedule_next_runs

# show keyword -> (DirectorConfig attribute, resource type name as written in configuration)
RESOURCE_TYPES: Final = {
    "directors": ("director", "Director"),
    "clients": ("clients", "Client"),
    "storages": ("storages", "Storage"),
    "pools": ("pools", "Pool"),
    "schedules": ("schedules", "Schedule"),
    "filesets": ("filesets", "FileSet"),
    "jobs": ("jobs", "Job"),
    "jobdefs": ("jobdefs", "JobDefs"),
    "messages": ("messages", "Messages"),
    "catalogs": ("catalogs", "Catalog"),
    "consoles": ("consoles", "Console"),
    "profiles": ("profiles", "Profile"),
}
_ACL_KIND: Final = {
    "clients": "client",
    "storages": "storage",
    "pools": "pool",
    "jobs": "job",
    "filesets": "fileset",
    "schedules": "schedule",
    "catalogs": "catalog",
}


def _resolve_type(word: str) -> str:
    key = word.lower().replace(" ", "")
    for name in RESOURCE_TYPES:
        singular = name[:-1] if name != "messages" else "messages"
        if key in (name, singular) or (key == "director" and name == "directors"):
            return name
    if key in ("fileset", "file_set"):
        return "filesets"
    if key == "jobdef":
        return "jobdefs"
    raise CommandError(f"unknown resource type {word!r}; known: {', '.join(RESOURCE_TYPES)}, all")


def _table(config: DirectorConfig, attr: str) -> Mapping[str, BaseModel]:
    """The configured resources of one type, by name (the Director is a table of one)."""
    if attr == "director":
        return {config.director.name: config.director}
    table: Mapping[str, BaseModel] = getattr(config, attr)
    return table


def _resources(session: Session, kind: str) -> dict[str, BaseModel]:
    attr, _ = RESOURCE_TYPES[kind]
    config = session.director.config
    resources = dict(_table(config, attr))
    if unrestricted(session):
        return resources
    acl_kind = _ACL_KIND.get(kind)
    if acl_kind is not None:
        resources = {n: r for n, r in resources.items() if permitted(session, acl_kind, n)}
    jobs = [j for n, j in config.jobs.items() if permitted(session, "job", n)]
    if kind == "jobdefs":  # those the console's jobs are built on
        used = {j.job_defs for j in jobs}
        resources = {n: r for n, r in resources.items() if n in used}
    elif (
        kind == "messages"
    ):  # those the console's jobs send to (mail commands are not its business)
        used = {j.messages for j in jobs}
        resources = {
            n: r.model_copy(update=_MESSAGES_HIDDEN) for n, r in resources.items() if n in used
        }
    elif kind == "consoles":  # itself only
        resources = {n: r for n, r in resources.items() if n == session.console}
    elif kind == "profiles":  # its own only
        own = config.consoles.get(session.console)
        mine = set(own.profile) if own is not None else set()
        resources = {n: r for n, r in resources.items() if n in mine}
    if kind in ("jobs", "jobdefs"):
        resources = {
            n: _without_commands(r) if isinstance(r, JobResource) else r
            for n, r in resources.items()
        }
    return resources


HIDDEN: Final = "(hidden)"
_MESSAGES_HIDDEN: Final = {"mail_command": None, "operator_command": None}
_COMMAND_FIELDS: Final = (
    "run_before_job",
    "run_after_job",
    "run_after_failed_job",
    "client_run_before_job",
    "client_run_after_job",
)


def _without_commands(job: JobResource) -> JobResource:
    """A Job or JobDefs as a restricted console sees it: the command lines its scripts run (which
    often carry credentials) replaced by a placeholder."""
    update: dict[str, object] = {
        f: tuple(HIDDEN for _ in getattr(job, f)) for f in _COMMAND_FIELDS if getattr(job, f)
    }
    if job.run_script:
        update["run_script"] = tuple(
            script.model_copy(
                update={
                    "command": tuple(HIDDEN for _ in script.command),
                    "console": tuple(HIDDEN for _ in script.console),
                }
            )
            for script in job.run_script
        )
    return job.model_copy(update=update) if update else job


@command("show", usage="show <resource type>[=NAME] | show all")
async def show(session: Session, args: Args) -> Reply:
    """Show configured resources (passwords are never shown)."""
    wanted: list[tuple[str, str | None]] = []
    for word in args.words:
        if word.lower() == "all":
            wanted.extend((kind, None) for kind in RESOURCE_TYPES)
        else:
            wanted.append((_resolve_type(word), None))
    for key, value in args.options.items():
        wanted.append((_resolve_type(key), value))
    if not wanted:
        raise CommandError("usage: show <resource type>[=NAME] | show all")
    shown: list[tuple[str, str, dict[str, object]]] = []
    for kind, name in wanted:
        resources = _resources(session, kind)
        if name is not None:
            if name not in resources:
                raise CommandError(f"no {RESOURCE_TYPES[kind][1]} resource named {name!r}")
            resources = {name: resources[name]}
        type_name = RESOURCE_TYPES[kind][1]
        for resource in resources.values():
            text, dumped = render_resource(resource, type_name), dump_resource(resource)
            if isinstance(resource, ScheduleResource):  # and when it fires next
                dumped["next_runs"] = runs = schedule_next_runs(session.director.config, resource)
                text = f"{text}\n{next_runs_text(runs, resource.enabled)}"
            shown.append((kind, text, dumped))
    return _reply(shown)


def _reply(shown: list[tuple[str, str, dict[str, object]]]) -> Reply:
    """One reply; a configuration too large for one frame goes in parts of `PART_BYTES` of text,
    one part per resource type in them, the rest in the final reply."""
    pieces: list[list[tuple[str, str, dict[str, object]]]] = [[]]
    size = 0
    for item in shown:
        if size + len(item[1]) > PART_BYTES and pieces[-1]:
            pieces.append([])
            size = 0
        pieces[-1].append(item)
        size += len(item[1])
    last = pieces.pop()
    data: dict[str, list[dict[str, object]]] = {}
    for kind, _, dumped in last:
        data.setdefault(kind, []).append(dumped)
    reply = Reply(
        text="\n".join(text for _, text, _ in last) if shown else "No resources.", data=data
    )
    if pieces:
        reply.stream = _parts(pieces)
    return reply


async def _parts(
    pieces: list[list[tuple[str, str, dict[str, object]]]],
) -> AsyncGenerator[Reply, None]:
    for piece in pieces:
        text = "\n".join(t for _, t, _ in piece)
        by_kind: dict[str, list[dict[str, object]]] = {}
        for kind, _, dumped in piece:
            by_kind.setdefault(kind, []).append(dumped)
        for kind, rows in by_kind.items():
            yield Reply(text=text, data=rows, rows=kind)
            text = ""  # a piece's text goes with its first part
