"""The job conversations as tables (in the style of h11's state machine): who may send what, when.

Each table says, for one side of one conversation, which message types the peer may send in each
state and which state each leads to. A message the table does not allow is a ProtocolError that
names the conversation, the state and the message: a daemon never drops an unexpected message
silently. Sans-IO: the daemons feed received messages to `Conversation.receive`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from protocol.errors import ProtocolError
from protocol.jobs import (
    AttributeBatch,
    CancelJob,
    JobEnd,
    JobMediaReport,
    JobMessage,
    JobProgress,
    JobStatusChange,
    VolumeAssignment,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import ErrorReply, Message

Table = Mapping[str, Mapping[str, str]]  # state -> message TYPE -> next state

RUNNING: Final = "running"
ENDED: Final = "ended"


def _table(states: dict[str, dict[type[Message], str]]) -> Table:
    return MappingProxyType(
        {
            state: MappingProxyType({cls.TYPE: nxt for cls, nxt in moves.items()})
            for state, moves in states.items()
        }
    )


# What the Director hears from a Storage Daemon while a job moves data (backup, restore, copy).
DIRECTOR_FROM_SD: Final = _table(
    {
        RUNNING: {
            AttributeBatch: RUNNING,
            JobMediaReport: RUNNING,
            VolumeUpdate: RUNNING,
            VolumeRequest: RUNNING,
            JobMessage: RUNNING,
            JobStatusChange: RUNNING,
            ErrorReply: RUNNING,
            JobEnd: ENDED,
        },
        ENDED: {},
    }
)

# What the Director hears from a Storage Daemon that reads for a restore (it writes nothing).
DIRECTOR_FROM_READING_SD: Final = _table(
    {
        RUNNING: {
            JobMessage: RUNNING,
            JobStatusChange: RUNNING,
            ErrorReply: RUNNING,
            JobEnd: ENDED,
        },
        ENDED: {},
    }
)

# What the Director hears from a File Daemon while a backup or restore runs.
DIRECTOR_FROM_FD: Final = _table(
    {
        RUNNING: {JobProgress: RUNNING, JobMessage: RUNNING, ErrorReply: RUNNING, JobEnd: ENDED},
        ENDED: {},
    }
)

# What a Storage Daemon hears from its Director while a job runs there.
SD_FROM_DIRECTOR: Final = _table(
    {
        RUNNING: {VolumeAssignment: RUNNING, CancelJob: RUNNING, ErrorReply: RUNNING},
    }
)

TABLES: Final[Mapping[str, Table]] = MappingProxyType(
    {
        "Director <- Storage Daemon (job)": DIRECTOR_FROM_SD,
        "Director <- Storage Daemon (restore)": DIRECTOR_FROM_READING_SD,
        "Director <- File Daemon (job)": DIRECTOR_FROM_FD,
        "Storage Daemon <- Director (job)": SD_FROM_DIRECTOR,
    }
)


class Conversation:
    """One side of one conversation: its table and where it stands."""

    def __init__(self, name: str, table: Table, state: str = RUNNING) -> None:
        if state not in table:
            raise ValueError(f"{name}: no state {state!r}")
        self.name = name
        self.table = table
        self.state = state

    def receive(self, msg: Message) -> str:
        """Move on for a received message; a message the table does not allow here is a ProtocolError."""
        moves = self.table[self.state]
        nxt = moves.get(msg.TYPE)
        if nxt is None:
            allowed = ", ".join(sorted(moves)) or "nothing"
            raise ProtocolError(
                f"{self.name}: unexpected {msg.TYPE!r} in state {self.state!r} (allowed: {allowed})"
            )
        self.state = nxt
        return nxt

    @property
    def ended(self) -> bool:
        return not self.table[self.state]
