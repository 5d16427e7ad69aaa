"""The words jobs are described with on the wire and in the catalog: status letters and levels.

Bareos/Bacula compatible letters. The daemons, the Director and the console take them from here;
the Director's status rules (which letter may follow which) are in director/jobs/status.py.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    CREATED = "C"
    RUNNING = "R"
    BLOCKED = "B"
    TERMINATED = "T"
    WARNINGS = "W"
    ERROR = "E"
    NONFATAL_ERROR = "e"
    FATAL = "f"
    DIFFERENCES = "D"
    CANCELED = "A"
    INCOMPLETE = "I"
    WAIT_FD = "F"
    WAIT_SD = "S"
    WAIT_MOUNT = "M"
    WAIT_MEDIA = "m"
    WAIT_STORE_RES = "s"
    WAIT_JOB_RES = "j"
    WAIT_CLIENT_RES = "c"
    WAIT_MAX_JOBS = "d"
    WAIT_START_TIME = "t"
    WAIT_PRIORITY = "p"


class Level(enum.StrEnum):
    FULL = "F"
    INCREMENTAL = "I"
    DIFFERENTIAL = "D"
    VIRTUAL_FULL = "f"
    BASE = "B"
    NONE = " "  # jobs without a level (restore, admin, copy control)


LEVEL_NAMES: dict[Level, str] = {
    Level.FULL: "Full",
    Level.INCREMENTAL: "Incremental",
    Level.DIFFERENTIAL: "Differential",
    Level.VIRTUAL_FULL: "VirtualFull",
    Level.BASE: "Base",
}
