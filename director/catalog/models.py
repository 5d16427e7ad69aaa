"""Rows as the rest of the Director sees them (frozen dataclasses, File rows named tuples; no SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypedDict

# A Job or Media column's new value, as the catalog stores it.
ColumnValue = str | int | float | bytes | None


class PoolView(TypedDict):
    """A Pool row as `list pools` shows it."""

    poolid: int
    name: str
    pooltype: str | None
    labelformat: str | None
    maxvolbytes: int | None
    maxvoljobs: int | None
    numvols: int


class FileRow(NamedTuple):
    """One File row: Bareos splits the name into Path ("dir/") and Name ("file", "" for a dir).
    A named tuple, not a frozen dataclass like the other rows: one is made per file for every
    restore selection and every accurate list (a frozen dataclass sets each field through
    `object.__setattr__`)."""

    job_id: int
    path: bytes
    name: bytes
    file_index: int  # 0 marks a file deleted since the previous backup (accurate mode)
    lstat: bytes  # protocol.attributes encoding
    digest: str | None = None

    @property
    def full_path(self) -> bytes:
        if not self.name:
            return self.path.rstrip(b"/") or b"/"
        return self.path + self.name


@dataclass(frozen=True, slots=True)
class NewJob:
    job: str
    name: str
    type: str
    level: str
    client_id: int | None
    fileset_id: int | None
    pool_id: int | None
    sched_time: float
    priority: int = 10
    status: str = "C"
    prior_job_id: int | None = None
    request: str | None = (
        None  # the run request as JSON, so a restarted Director can queue it again
    )
    retry: int = 0
    expires_at: float | None = None
    parent_job_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: int
    job: str
    name: str
    type: str
    level: str
    status: str
    client_id: int | None
    fileset_id: int | None
    pool_id: int | None
    sched_time: float | None
    start_time: float | None
    end_time: float | None
    files: int
    bytes: int
    read_bytes: int
    errors: int
    session_id: int
    session_time: int
    priority: int
    prior_job_id: int | None
    comment: str | None
    client: str | None = None
    fileset: str | None = None
    pool: str | None = None
    wait_reason: str | None = None
    retry: int = 0
    parent_job_id: int | None = None


@dataclass(frozen=True, slots=True)
class PoolRow:
    name: str
    pool_type: str = "Backup"
    label_format: str | None = None
    max_vol_bytes: int = 0
    max_vol_jobs: int = 0
    max_vols: int = 0
    vol_retention: float = 365 * 86400
    recycle: bool = True
    auto_prune: bool = True


@dataclass(frozen=True, slots=True)
class MediaRow:
    media_id: int
    volume_name: str
    pool_id: int
    pool: str
    media_type: str
    status: str
    bytes: int
    blocks: int
    jobs: int
    files: int
    first_written: float | None
    last_written: float | None
    label_date: float | None
    max_vol_bytes: int
    max_vol_jobs: int
    storage: str | None


@dataclass(frozen=True, slots=True)
class JobMediaRow:
    job_id: int
    media_id: int
    volume_name: str
    first_index: int
    last_index: int
    start_block: int
    end_block: int
    start_addr: int
    end_addr: int
    bytes: int
    session_id: int
    session_time: int
