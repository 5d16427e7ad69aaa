"""Typed plans of the job kinds: what a job will do, read once from its run request.

A RunRequest keeps the operator's overrides as a plain mapping (`params`) because it is stored in
the catalog as JSON and read back after a restart; this module is the one place that turns that
mapping into typed values. Job code reads the plans, never the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from director.catalog.models import JobRow
from director.jobs.errors import JobError
from protocol.fileset import FileSetSpec
from protocol.jobs import BootstrapSpec

T = TypeVar("T")
AccurateEntry = tuple[bytes, int, int, int, int]  # path, mtime_ns, ctime_ns, size, mode


@dataclass(frozen=True)
class RestorePlan:
    """What a restore reads (the bootstrap) and how the File Daemon writes it."""

    bootstrap: tuple[BootstrapSpec, ...]
    where: bytes
    replace: str = "always"
    strip_prefix: bytes | None = None
    add_prefix: bytes | None = None
    add_suffix: bytes | None = None
    regex_where: str | None = None
    hidden_indexes: tuple[tuple[int, int], ...] = ()  # (JobId, FileIndex) of hardlink carriers
    expected_files: int | None = None  # what the catalog selected; fewer restored ends E
    volume_storage: Mapping[str, str] = field(
        default_factory=dict
    )  # volume -> the storage that wrote it
    storage_override: bool = False  # the operator named a storage: every volume is read there
    source_jobs: tuple[int, ...] = ()  # the JobIds whose files are restored
    privileged_content: bool = False  # keep setuid/setgid, device nodes, security.* xattrs anywhere

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> RestorePlan:
        """The plan in a restore's run request (the console's restore command writes it); a value
        of the wrong type (a run request kept in a catalog of another version) is a JobError."""
        where = params.get("where", b"")
        expected = params.get("expected_files")
        return cls(
            bootstrap=tuple(
                _of(BootstrapSpec, v, "bootstrap") for v in _items(params, "bootstrap")
            ),
            where=where if isinstance(where, bytes) else str(where).encode(),
            replace=str(params.get("replace") or "always"),
            strip_prefix=_optional(bytes, params, "strip_prefix"),
            add_prefix=_optional(bytes, params, "add_prefix"),
            add_suffix=_optional(bytes, params, "add_suffix"),
            regex_where=_optional(str, params, "regex_where"),
            hidden_indexes=tuple(_pair(v) for v in _items(params, "hidden_indexes")),
            expected_files=None if expected is None else _of(int, expected, "expected_files"),
            volume_storage={
                _of(str, k, "volume_storage"): _of(str, v, "volume_storage")
                for k, v in _of(dict, params.get("volume_storage") or {}, "volume_storage").items()
            },
            storage_override=bool(params.get("storage_override")),
            source_jobs=tuple(_of(int, j, "source_jobs") for j in _items(params, "source_jobs")),
            privileged_content=bool(params.get("privileged_content")),
        )


def _of(kind: type[T], value: object, name: str) -> T:
    """`value` if it is a `kind` (a bool is no int here), else a JobError naming the parameter."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise JobError(f"run request parameter {name!r}: expected {kind.__name__}, got {value!r}")


def _optional(kind: type[T], params: Mapping[str, object], name: str) -> T | None:
    value = params.get(name)
    return None if value is None else _of(kind, value, name)


def _items(params: Mapping[str, object], name: str) -> tuple[object, ...]:
    value = params.get(name, ())
    if isinstance(value, list | tuple):
        return tuple(value)
    raise JobError(f"run request parameter {name!r}: expected a list, got {value!r}")


def _pair(value: object) -> tuple[int, int]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return _of(int, value[0], "hidden_indexes"), _of(int, value[1], "hidden_indexes")
    raise JobError(f"run request parameter 'hidden_indexes': expected pairs, got {value!r}")


@dataclass(frozen=True)
class CopyPlan:
    """What one Copy/Migrate worker moves: one source backup job, from its storage to the target.

    The control job chooses all of it (`copy.do_copy`) and submits the worker as an ordinary job;
    the worker's run request keeps the names, so a restarted Director can queue it again."""

    source: JobRow  # the backup job whose records are copied
    migrate: bool  # Migrate: the source row becomes Type M when the worker ends T
    read_storage: str  # where the source volumes were written
    target_pool: str
    target_storage: str

    @staticmethod
    def params(
        source_job_id: int, migrate: bool, read_storage: str, target_pool: str, target_storage: str
    ) -> dict[str, object]:
        """The run-request parameters of a worker (JSON-able; read back by `requested`)."""
        return {
            "copy_source": source_job_id,
            "copy_migrate": migrate,
            "copy_read_storage": read_storage,
            "copy_target_pool": target_pool,
            "copy_target_storage": target_storage,
            "no_reschedule": True,
        }

    @staticmethod
    def requested(params: Mapping[str, object]) -> CopyRequest | None:
        """The worker part of a run request, or None for any other job."""
        if "copy_source" not in params:
            return None
        return CopyRequest(
            source_job_id=_of(int, params["copy_source"], "copy_source"),
            migrate=bool(params.get("copy_migrate")),
            read_storage=_of(str, params.get("copy_read_storage"), "copy_read_storage"),
            target_pool=_of(str, params.get("copy_target_pool"), "copy_target_pool"),
            target_storage=_of(str, params.get("copy_target_storage"), "copy_target_storage"),
        )


@dataclass(frozen=True)
class CopyRequest:
    """A worker's run request before its source job is read from the catalog."""

    source_job_id: int
    migrate: bool
    read_storage: str
    target_pool: str
    target_storage: str

    def plan(self, source: JobRow) -> CopyPlan:
        return CopyPlan(
            source, self.migrate, self.read_storage, self.target_pool, self.target_storage
        )


@dataclass
class BackupState:
    """What a backup decides as it starts (level, since-time, accurate list) and learns as it runs."""

    fileset_spec: FileSetSpec | None = None  # what the File Daemon walks
    level_note: str = ""  # " (upgraded from Incremental)"
