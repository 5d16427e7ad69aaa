"""Resource names given on a command line: an unknown one is refused, naming the ones there are.

Every command that takes a job, client, fileset, pool, storage or restore job name checks it here
first, so `restore fileset=NoSuch` is refused instead of quietly restoring another FileSet. The
names offered are those the console may use (its ACLs), so a refusal leaks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from director.console.acl import AccessDenied
from director.console.registry import CommandError, Session

# kind -> (the DirectorConfig table, the ACL kind)
_TABLES: Final = {
    "job": ("jobs", "job"),
    "client": ("clients", "client"),
    "restoreclient": ("clients", "client"),
    "fileset": ("filesets", "fileset"),
    "pool": ("pools", "pool"),
    "storage": ("storages", "storage"),
    "restore job": ("jobs", "job"),
}


def configured(session: Session, kind: str) -> list[str]:
    """The names of a kind in the running configuration that this console may use."""
    table, acl_kind = _TABLES[kind]
    resources: dict[str, Any] = getattr(session.director.config, table)
    names = [n for n, r in resources.items() if kind != "restore job" or r.type == "Restore"]
    return sorted(n for n in names if session.acl(acl_kind, n))


def check(session: Session, kind: str, name: str | None, *, also: Iterable[str] = ()) -> str | None:
    """`name` when it names a known resource of `kind` (or one of `also`, names the catalog
    knows); None when no name was given. An unknown or forbidden name raises CommandError."""
    if name is None:
        return None
    known = configured(session, kind)
    if name in known:
        return name
    _, acl_kind = _TABLES[kind]
    extra = sorted(n for n in set(also) - set(known) if session.acl(acl_kind, n))
    if name in extra:
        return name
    if _exists(session, kind, name):
        raise AccessDenied(session.console, kind, name)
    offered = known + extra
    raise CommandError(f"no {kind} named {name!r} (known: {', '.join(offered) or 'none'})")


def _exists(session: Session, kind: str, name: str) -> bool:
    table, _ = _TABLES[kind]
    resource = getattr(session.director.config, table).get(name)
    return resource is not None and (kind != "restore job" or resource.type == "Restore")


def check_all(session: Session, **given: str | None) -> None:
    """Check several names at once: `check_all(session, job=..., client=..., pool=...)`."""
    for key, name in given.items():
        check(session, key.replace("_", " "), name)
