"""Job messages: what an operator reads with `messages`, kept in the catalog Log table too."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Final

MAX_PENDING: Final = 5000


@dataclass(frozen=True)
class LogLine:
    time: float
    job_id: int | None
    job: str | None
    level: str
    text: str

    def render(self, director: str) -> str:
        stamp = time.strftime("%d-%b %H:%M", time.localtime(self.time))
        who = f"{director} JobId {self.job_id}" if self.job_id is not None else director
        prefix = {"warning": "Warning: ", "error": "Error: ", "fatal": "Fatal error: "}.get(
            self.level, ""
        )
        return f"{stamp} {who}: {prefix}{self.text}"


class MessageQueue:
    """The job messages consoles read with `messages`: a bounded ring, and a cursor per reader.

    Each console (by name) reads from its own cursor, so one console's `messages` does not take
    them from another; a reader first seen reads what the ring still holds. When the ring is full
    the oldest line goes, for every reader.
    """

    def __init__(self, capacity: int = MAX_PENDING) -> None:
        self._lines: collections.deque[tuple[int, LogLine]] = collections.deque(maxlen=capacity)
        self._next = 0  # the sequence number the next line gets
        self._cursors: dict[str, int] = {}  # reader -> the first sequence number it has not read

    def add(self, line: LogLine) -> None:
        self._lines.append((self._next, line))
        self._next += 1

    def drain(self, reader: str = "") -> list[LogLine]:
        """The lines `reader` has not read yet; it will not read them again."""
        start = self._cursors.get(reader, 0)
        self._cursors[reader] = self._next
        return [line for seq, line in self._lines if seq >= start]

    def pending(self, reader: str = "") -> int:
        start = self._cursors.get(reader, 0)
        return sum(1 for seq, _ in self._lines if seq >= start)

    def __len__(self) -> int:
        return self.pending()
