"""Job status letters (protocol.vocabulary), their meaning, and the sticky-status rule as a table."""

from __future__ import annotations

from typing import Final

from protocol.vocabulary import JobStatus

CREATED: Final = JobStatus.CREATED.value
RUNNING: Final = JobStatus.RUNNING.value
BLOCKED: Final = JobStatus.BLOCKED.value
TERMINATED: Final = JobStatus.TERMINATED.value
WARNINGS: Final = JobStatus.WARNINGS.value
ERROR: Final = JobStatus.ERROR.value
NONFATAL_ERROR: Final = JobStatus.NONFATAL_ERROR.value
FATAL: Final = JobStatus.FATAL.value
DIFFERENCES: Final = JobStatus.DIFFERENCES.value
CANCELED: Final = JobStatus.CANCELED.value
INCOMPLETE: Final = JobStatus.INCOMPLETE.value
WAIT_FD: Final = JobStatus.WAIT_FD.value
WAIT_SD: Final = JobStatus.WAIT_SD.value
WAIT_MOUNT: Final = JobStatus.WAIT_MOUNT.value
WAIT_MEDIA: Final = JobStatus.WAIT_MEDIA.value
WAIT_STORE_RES: Final = JobStatus.WAIT_STORE_RES.value
WAIT_JOB_RES: Final = JobStatus.WAIT_JOB_RES.value
WAIT_CLIENT_RES: Final = JobStatus.WAIT_CLIENT_RES.value
WAIT_MAX_JOBS: Final = JobStatus.WAIT_MAX_JOBS.value
WAIT_START_TIME: Final = JobStatus.WAIT_START_TIME.value
WAIT_PRIORITY: Final = JobStatus.WAIT_PRIORITY.value

DESCRIPTIONS: Final[dict[str, str]] = {
    CREATED: "Created, not yet running",
    RUNNING: "Running",
    BLOCKED: "Blocked",
    TERMINATED: "Terminated normally",
    WARNINGS: "Terminated with warnings",
    ERROR: "Terminated in error",
    NONFATAL_ERROR: "Non-fatal error",
    FATAL: "Fatal error",
    DIFFERENCES: "Verify differences",
    CANCELED: "Canceled",
    INCOMPLETE: "Incomplete",
    WAIT_FD: "Waiting for File Daemon",
    WAIT_SD: "Waiting for Storage Daemon",
    WAIT_MOUNT: "Waiting for mount",
    WAIT_MEDIA: "Waiting for new media",
    WAIT_STORE_RES: "Waiting for storage resource",
    WAIT_JOB_RES: "Waiting for job resource",
    WAIT_CLIENT_RES: "Waiting for client resource",
    WAIT_MAX_JOBS: "Waiting for maximum jobs",
    WAIT_START_TIME: "Waiting for start time",
    WAIT_PRIORITY: "Waiting for higher priority jobs",
}

FINAL: Final = frozenset({TERMINATED, WARNINGS, ERROR, FATAL, DIFFERENCES, CANCELED, INCOMPLETE})
OK: Final = frozenset({TERMINATED, WARNINGS})
WAITING: Final = frozenset(
    {
        CREATED,
        WAIT_STORE_RES,
        WAIT_JOB_RES,
        WAIT_CLIENT_RES,
        WAIT_MAX_JOBS,
        WAIT_START_TIME,
        WAIT_PRIORITY,
    }
)

# Bareos setJobStatusWithPriorityCheck: a status only replaces one of lower or equal weight,
# so once a job is canceled or failed it can never flip back to running or OK.
_WEIGHT: Final[dict[str, int]] = {
    INCOMPLETE: 10,
    ERROR: 9,
    FATAL: 9,
    CANCELED: 9,
    NONFATAL_ERROR: 8,
    DIFFERENCES: 7,
}


class IllegalTransition(Exception):
    """A final status was asked to change."""


def next_status(current: str, new: str) -> str:
    """The status after asking for `new`: sticky errors win; a final status never changes."""
    if new not in DESCRIPTIONS:
        raise IllegalTransition(f"unknown job status {new!r}")
    if current in FINAL and new not in FINAL:
        raise IllegalTransition(f"job already ended with {current!r}; cannot become {new!r}")
    if _WEIGHT.get(new, 0) >= _WEIGHT.get(current, 0):
        return new
    return current


def describe(status: str) -> str:
    return DESCRIPTIONS.get(status, f"unknown status {status!r}")
