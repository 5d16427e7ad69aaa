"""Unique job names: `<JobName>.<YYYY-MM-DD_HH.MM.SS>_<NN>` as Bareos builds them."""

from __future__ import annotations

import time
from typing import Final

MAX_NAME: Final = 120


class UniqueNamer:
    """Hands out unique names: the sequence restarts each second and grows past 99 if it must (Bareos
    wraps at 100, which repeats names above 100 jobs a second)."""

    def __init__(self) -> None:
        self._seq = 0
        self._last = ""

    def make(self, job_name: str, now: float | None = None) -> str:
        stamp = time.strftime(
            "%Y-%m-%d_%H.%M.%S", time.localtime(now if now is not None else time.time())
        )
        if stamp != self._last:
            self._last = stamp
            self._seq = 0
        self._seq += 1
        base = job_name.replace(" ", "_")[: MAX_NAME - len(stamp) - 4]
        return f"{base}.{stamp}_{self._seq:02d}"
