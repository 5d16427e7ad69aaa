"""The in-memory job control record (Bareos JCR): identity, resolved resources, status, counters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from director.jobs import status as st
from director.jobs.admission import Candidate, WaitReason
from director.jobs.errors import JobError
from director.jobs.plans import BackupState, CopyPlan, RestorePlan
from protocol.vocabulary import LEVEL_NAMES as PROTOCOL_LEVEL_NAMES

if TYPE_CHECKING:
    from director.config import DirectorConfig, JobResource
    from director.jobs.request import RunRequest
    from director.jobs.transitions import Transitions

TYPE_CODES = {
    "Backup": "B",
    "Restore": "R",
    "Verify": "V",
    "Admin": "D",
    "Copy": "c",
    "Migrate": "g",
    "Consolidate": "O",
}
LEVEL_NAMES: dict[str, str] = {str(level): name for level, name in PROTOCOL_LEVEL_NAMES.items()}
LEVEL_CODES = {v: k for k, v in LEVEL_NAMES.items()}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}


@dataclass
class Progress:
    """Live counters of a running job, for `status dir` and `status job=`."""

    files: int = 0
    bytes: int = 0
    current_file: str = ""
    started: float = 0.0
    expected_bytes: int = 0  # from the previous comparable job, for percent and ETA
    expected_files: int = 0
    persisted: tuple[int, int] = (0, 0)

    def rate(self) -> float:
        elapsed = time.time() - self.started if self.started else 0.0
        return self.bytes / elapsed if elapsed > 0 else 0.0

    def percent(self) -> float | None:
        if self.expected_bytes > 0:
            return min(99.9, 100.0 * self.bytes / self.expected_bytes)
        if self.expected_files > 0:
            return min(99.9, 100.0 * self.files / self.expected_files)
        return None

    def eta(self) -> float | None:
        """Seconds left, from the rate so far and the size of the previous comparable job."""
        rate = self.rate()
        if self.expected_bytes <= 0 or rate <= 0:
            return None
        return max(0.0, (self.expected_bytes - self.bytes) / rate)


class WaitView(TypedDict):
    status: str
    code: str
    resource: str


class JobSummary(TypedDict):
    """A job as `status dir`, `status job=` and `list jobs` show it (JSON-able)."""

    jobid: int
    job: str
    name: str
    type: str
    level: str
    client: str | None
    fileset: str | None
    pool: str | None
    storage: str | None
    priority: int
    jobstatus: str
    status: str
    wait_reason: WaitView | None
    schedtime: float
    starttime: float | None
    jobfiles: int
    jobbytes: int
    rate: float | None
    current_file: str | None
    percent: float | None
    eta: float | None
    retry: int
    parent: int | None


@dataclass(eq=False)
class JobControl:
    """Everything the Director knows about one job while it exists in memory."""

    job_id: int
    unique: str
    name: str
    job_type: str
    level: str
    resource: JobResource
    client: str | None
    fileset: str | None
    pool: str | None
    storage: str | None
    priority: int
    allow_mixed: bool
    sched_time: float
    _status: str = st.CREATED
    wait: WaitReason | None = None
    transitions: Transitions | None = None  # the engine's, once the job is queued
    coordinator: bool = False  # a multi-action parent: holds no Director/Client/Storage slot
    start_time: float | None = None
    end_time: float | None = None
    since: float | None = None
    since_ns: int | None = None
    files: int = 0
    bytes: int = 0
    read_bytes: int = 0
    errors: int = 0
    warnings: int = 0
    progress: Progress = field(default_factory=Progress)
    canceled: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    volumes: list[str] = field(default_factory=list)
    # -- what the job was set up with (setup.setup_job) -------------------------------------
    config: DirectorConfig | None = (
        None  # the configuration the job started with (a reload does not change it)
    )
    client_id: int | None = None
    fileset_id: int | None = None
    pool_id: int | None = None
    request: RunRequest | None = None  # kept for Reschedule On Error
    retry: int = 0
    retry_of: int | None = None
    parent_job_id: int | None = None
    expires: float | None = None
    restore: RestorePlan | None = None
    next_pool: str | None = None  # Copy/Migrate: run's nextpool= override
    copy: CopyPlan | None = None  # a Copy/Migrate worker: the one source job it moves
    backup: BackupState = field(default_factory=BackupState)
    # -- what happens to it while it exists ------------------------------------------------
    session: tuple[int, int] | None = (
        None  # the SD's (VolSessionId, VolSessionTime) while appending
    )
    moving_data: bool = False  # data flows between daemons: a cancel lets them stop by themselves
    cancel_reason: str | None = None
    stopping: bool = False  # the Director is stopping: the job ends when it starts again
    queue_order: tuple[int, int] = (0, 0)  # (priority, arrival) in the waiting list
    waited: float = 0.0  # seconds spent in run waits (Max Wait Time)
    wait_since: float | None = None

    def named(self, what: str) -> str:
        """The name of the job's Client, Storage or Pool (`what`); a job without one cannot run."""
        value = {
            "Client": self.client,
            "Storage": self.storage,
            "Pool": self.pool,
            "FileSet": self.fileset,
        }[what]
        if value is None:
            raise JobError(f"job {self.name!r} has no {what}")
        return value

    @property
    def settings(self) -> DirectorConfig:
        """The configuration the job runs with."""
        assert self.config is not None, "a job is set up with its configuration"
        return self.config

    @property
    def status(self) -> str:
        """The status letter; it changes only through Transitions (set_status, set_wait)."""
        return self._status

    def force_status(self, new: str) -> None:
        """Set the letter; for Transitions alone, which checks and records the change."""
        self._status = new

    def set_status(self, new: str) -> None:
        """Move to a non-final status (checked against the status table, recorded once)."""
        if self.transitions is not None:
            self.transitions.change(self, new)
        else:  # a job outside the engine (unit tests): the table still applies
            self._status = st.next_status(self._status, new)
            self.wait = None

    def set_wait(self, reason: WaitReason | None) -> None:
        """Wait with a reason (its letter becomes the status), or stop waiting (None)."""
        if self.transitions is not None:
            self.transitions.wait(self, reason)
        else:
            self.wait = reason
            if reason is not None:
                self._status = st.next_status(self._status, reason.status)

    def candidate(self) -> Candidate:
        """What admission counts: a Copy/Migrate worker takes its read and write storages and its
        copy Job's slot, and no client slot (it reads no client); the Bareos jobq rules."""
        if self.copy is not None:
            storages = tuple(dict.fromkeys((self.copy.read_storage, self.copy.target_storage)))
            client = None
        else:
            storages = tuple(s for s in (self.storage,) if s)
            client = self.client
        return Candidate(
            job_id=self.job_id,
            job_name=self.resource.name,
            priority=self.priority,
            allow_mixed=self.allow_mixed,
            client=client,
            storages=storages,
            level=self.level,
            coordinator=self.coordinator,
        )

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.job_type, self.job_type)

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, "")

    def summary(self) -> JobSummary:
        """JSON-able view for `status dir`, `status job=` and `list jobs`."""
        return {
            "jobid": self.job_id,
            "job": self.unique,
            "name": self.name,
            "type": self.job_type,
            "level": self.level,
            "client": self.client,
            "fileset": self.fileset,
            "pool": self.pool,
            "storage": self.storage,
            "priority": self.priority,
            "jobstatus": self.status,
            "status": st.describe(self.status),
            "wait_reason": None
            if self.wait is None
            else {
                "status": self.wait.status,
                "code": self.wait.code,
                "resource": self.wait.resource,
            },
            "schedtime": self.sched_time,
            "starttime": self.start_time,
            "jobfiles": self.progress.files if self.status == st.RUNNING else self.files,
            "jobbytes": self.progress.bytes if self.status == st.RUNNING else self.bytes,
            "rate": round(self.progress.rate(), 1) if self.status == st.RUNNING else None,
            "current_file": self.progress.current_file or None,
            "percent": _round(self.progress.percent()) if self.status == st.RUNNING else None,
            "eta": _round(self.progress.eta()) if self.status == st.RUNNING else None,
            "retry": self.retry,
            "parent": self.parent_job_id,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
