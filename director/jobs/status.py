"""Job status letters (Bareos compatible), their meaning, and the sticky-status rule as a table."""

from __future__ import annotations

from typing import Final

CREATED: Final = "C"
RUNNING: Final = "R"
BLOCKED: Final = "B"
TERMINATED: Final = "T"
WARNINGS: Final = "W"
ERROR: Final = "E"
NONFATAL_ERROR: Final = "e"
FATAL: Final = "f"
DIFFERENCES: Final = "D"
CANCELED: Final = "A"
INCOMPLETE: Final = "I"
WAIT_FD: Final = "F"
WAIT_SD: Final = "S"
WAIT_MOUNT: Final = "M"
WAIT_MEDIA: Final = "m"
WAIT_STORE_RES: Final = "s"
WAIT_JOB_RES: Final = "j"
WAIT_CLIENT_RES: Final = "c"
WAIT_MAX_JOBS: Final = "d"
WAIT_START_TIME: Final = "t"
WAIT_PRIORITY: Final = "p"

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
    {CREATED, WAIT_STORE_RES, WAIT_JOB_RES, WAIT_CLIENT_RES, WAIT_MAX_JOBS, WAIT_START_TIME, WAIT_PRIORITY}
)

# Bareos setJobStatusWithPriorityCheck: a status only replaces one of lower or equal weight,
# so once a job is canceled or failed it can never flip back to running or OK.
_WEIGHT: Final[dict[str, int]] = {INCOMPLETE: 10, ERROR: 9, FATAL: 9, CANCELED: 9, NONFATAL_ERROR: 8, DIFFERENCES: 7}


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
