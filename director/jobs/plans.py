"""Typed plans of the job kinds: what a job will do, read once from its run request.

A RunRequest keeps the operator's overrides as a plain mapping (`params`) because it is stored in
the catalog as JSON and read back after a restart; this module is the one place that turns that
mapping into typed values. Job code reads the plans, never the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from director.catalog.models import JobRow
from protocol.fileset import FileSetSpec
from protocol.jobs import BootstrapSpec

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
    def from_params(cls, params: Mapping[str, Any]) -> RestorePlan:
        """The plan in a restore's run request (the console's restore command writes it)."""
        where = params.get("where", b"")
        return cls(
            bootstrap=tuple(params.get("bootstrap", ())),
            where=where if isinstance(where, bytes) else str(where).encode(),
            replace=str(params.get("replace") or "always"),
            strip_prefix=params.get("strip_prefix"),
            add_prefix=params.get("add_prefix"),
            add_suffix=params.get("add_suffix"),
            regex_where=params.get("regex_where"),
            hidden_indexes=tuple(
                (int(job), int(index)) for job, index in params.get("hidden_indexes", ())
            ),
            expected_files=params.get("expected_files"),
            volume_storage=dict(params.get("volume_storage") or {}),
            storage_override=bool(params.get("storage_override")),
            source_jobs=tuple(int(j) for j in params.get("source_jobs", ())),
            privileged_content=bool(params.get("privileged_content")),
        )


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
    def requested(params: Mapping[str, Any]) -> CopyRequest | None:
        """The worker part of a run request, or None for any other job."""
        if "copy_source" not in params:
            return None
        return CopyRequest(
            source_job_id=int(params["copy_source"]),
            migrate=bool(params["copy_migrate"]),
            read_storage=str(params["copy_read_storage"]),
            target_pool=str(params["copy_target_pool"]),
            target_storage=str(params["copy_target_storage"]),
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
