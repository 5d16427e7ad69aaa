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
        prefix = {"warning": "Warning: ", "error": "Error: ", "fatal": "Fatal error: "}.get(self.level, "")
        return f"{stamp} {who}: {prefix}{self.text}"


class MessageQueue:
    """Bounded queue of messages not yet shown by a console's `messages` command."""

    def __init__(self) -> None:
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=MAX_PENDING)

    def add(self, line: LogLine) -> None:
        self._lines.append(line)

    def drain(self) -> list[LogLine]:
        out = list(self._lines)
        self._lines.clear()
        return out

    def __len__(self) -> int:
        return len(self._lines)
