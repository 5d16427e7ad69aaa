"""Job errors: what ends a job, with the status letter it ends with."""

from __future__ import annotations


class JobError(Exception):
    """The job cannot continue; `status` is the letter it ends with (E unless canceled)."""

    def __init__(self, message: str, status: str = "E") -> None:
        super().__init__(message)
        self.status = status


class JobCanceled(JobError):
    def __init__(self, message: str = "job canceled") -> None:
        super().__init__(message, "A")
