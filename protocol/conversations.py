"""The job conversations as tables (in the style of h11's state machine): who may send what, when.

Each table says, for one side of one conversation, which message types the peer may send in each
state and which state each leads to. A message the table does not allow is an UnexpectedMessage (a
ProtocolError) that names the conversation, the state and the message: a daemon never drops an
unexpected message silently. Sans-IO: the daemons feed what they receive to `Conversation.receive`.

What a table lists is a *kind*: a message's TYPE, a signal's name (`EOD`, `TERMINATE`) or
`RECORDS`, a record batch on a data session. A state with no moves is an end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from protocol.errors import ProtocolError
from protocol.frames import Signal
from protocol.jobs import (
    AccurateBatch,
    AppendDone,
    AppendOpen,
    AttributeBatch,
    CancelJob,
    FdBackup,
    FdEstimate,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobEnd,
    JobMediaReport,
    JobMessage,
    JobProgress,
    JobStatusChange,
    Ok,
    RunScriptCommand,
    VolumeAssignment,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import ErrorReply, Message, StatusRequest
from protocol.records import Record

Table = Mapping[str, Mapping[str, str]]  # state -> kind (message TYPE, signal name) -> next state
Kind = type[Message] | Signal | str  # how a table is written: a message class, a signal, RECORDS
Event = Message | Signal | Sequence[Record]  # what a conversation receives

RUNNING: Final = "running"
ENDED: Final = "ended"
# The File Daemon's command conversation with its Director.
IDLE: Final = "idle"  # no job yet: status, scripts, cancel, or a job's setup
SET_UP: Final = "set_up"  # a job is set up: estimate, or reach the Storage Daemon
CONNECTED: Final = "connected"  # the Storage Daemon is reached: start the backup or restore
RECEIVING: Final = "receiving"  # the accurate list follows the job's setup, up to its EOD
RECEIVED: Final = "received"  # the accurate list is complete
# A data session with a Storage Daemon, as its File Daemon sees it.
OPENING: Final = "opening"  # the session was asked for; the SD says Ok or why not
SENDING: Final = "sending"  # the FD sends records, then EOD; the SD confirms what it stored
READING: Final = "reading"  # the SD sends record batches up to its EOD

RECORDS: Final = "records"  # a record batch on a data session (a frame that is no message)


def kind_of(event: Event) -> str:
    """What a table calls a received event: the message's TYPE, the signal's name, or RECORDS."""
    if isinstance(event, Signal):
        return event.name
    if isinstance(event, Message):
        return event.TYPE
    return RECORDS


def _key(kind: Kind) -> str:
    if isinstance(kind, Signal):
        return kind.name
    if isinstance(kind, str):
        return kind
    return kind.TYPE


def _table(states: dict[str, dict[Kind, str]]) -> Table:
    return MappingProxyType(
        {
            state: MappingProxyType({_key(kind): nxt for kind, nxt in moves.items()})
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

# What a File Daemon hears from a Director on its command connection. One connection serves one
# job at most: a job is set up, reaches its Storage Daemon and runs; status, client scripts and
# cancel come in any state before the job runs. A command the File Daemon refuses (answers with
# an ErrorReply) leaves the conversation where it was. TERMINATE ends it in any state.
_ANYTIME: Final[dict[Kind, str]] = {Signal.TERMINATE: ENDED}
_BEFORE_RUN: Final[tuple[type[Message], ...]] = (StatusRequest, RunScriptCommand, CancelJob)
FD_FROM_DIRECTOR: Final = _table(
    {
        IDLE: {**dict.fromkeys(_BEFORE_RUN, IDLE), FdJobSetup: SET_UP, **_ANYTIME},
        SET_UP: {
            **dict.fromkeys(_BEFORE_RUN, SET_UP),
            FdEstimate: SET_UP,
            FdStorage: CONNECTED,
            **_ANYTIME,
        },
        CONNECTED: {
            **dict.fromkeys(_BEFORE_RUN, CONNECTED),
            FdEstimate: CONNECTED,
            FdBackup: RUNNING,
            FdRestore: RUNNING,
            **_ANYTIME,
        },
        RUNNING: {CancelJob: RUNNING, **_ANYTIME},
        ENDED: {},
    }
)

# The accurate list a Director sends right after an accurate job's FdJobSetup: complete at its
# EOD (RECEIVED), abandoned by a TERMINATE (ENDED).
FD_ACCURATE_LIST: Final = _table(
    {
        RECEIVING: {AccurateBatch: RECEIVING, Signal.EOD: RECEIVED, Signal.TERMINATE: ENDED},
        RECEIVED: {},
        ENDED: {},
    }
)

# What a File Daemon hears from its Storage Daemon on a backup's data session (AppendOpen, then
# the records it sends and its EOD).
FD_FROM_APPENDING_SD: Final = _table(
    {
        OPENING: {Ok: SENDING, ErrorReply: ENDED},
        SENDING: {AppendDone: ENDED, ErrorReply: ENDED},
        ENDED: {},
    }
)

# What a File Daemon hears from its Storage Daemon on a restore's data session (after ReadOpen).
FD_FROM_READING_SD: Final = _table(
    {
        OPENING: {Ok: READING, ErrorReply: ENDED},
        READING: {RECORDS: READING, ErrorReply: ENDED, Signal.EOD: ENDED},
        ENDED: {},
    }
)

# What a Storage Daemon hears on an append data session, from a File Daemon (a backup) or from the
# reading Storage Daemon of a remote copy: AppendOpen, then record batches up to EOD.
SD_FROM_APPENDING_PEER: Final = _table(
    {
        OPENING: {AppendOpen: SENDING},
        SENDING: {RECORDS: SENDING, Signal.EOD: ENDED},
        ENDED: {},
    }
)

# What the reading Storage Daemon of a remote copy hears from the writing one: the same
# conversation as a File Daemon's backup session (Ok, then AppendDone once its EOD is stored).
SD_FROM_WRITING_SD: Final = FD_FROM_APPENDING_SD

TABLES: Final[Mapping[str, Table]] = MappingProxyType(
    {
        "Director <- Storage Daemon (job)": DIRECTOR_FROM_SD,
        "Director <- Storage Daemon (restore)": DIRECTOR_FROM_READING_SD,
        "Director <- File Daemon (job)": DIRECTOR_FROM_FD,
        "Storage Daemon <- Director (job)": SD_FROM_DIRECTOR,
        "File Daemon <- Director (commands)": FD_FROM_DIRECTOR,
        "File Daemon <- Director (accurate list)": FD_ACCURATE_LIST,
        "File Daemon <- Storage Daemon (backup data)": FD_FROM_APPENDING_SD,
        "File Daemon <- Storage Daemon (restore data)": FD_FROM_READING_SD,
        "Storage Daemon <- File Daemon or reading SD (append data)": SD_FROM_APPENDING_PEER,
        "reading Storage Daemon <- writing Storage Daemon (copy data)": SD_FROM_WRITING_SD,
    }
)


class UnexpectedMessage(ProtocolError):
    """A message, signal or record batch the conversation's table does not allow in its state."""

    def __init__(self, conversation: str, state: str, kind: str, allowed: tuple[str, ...]) -> None:
        listed = ", ".join(allowed) or "nothing"
        super().__init__(
            f"{conversation}: unexpected {kind!r} in state {state!r} (allowed: {listed})"
        )
        self.conversation = conversation
        self.state = state
        self.kind = kind
        self.allowed = allowed


class Conversation:
    """One side of one conversation: its table and where it stands."""

    def __init__(self, name: str, table: Table, state: str = RUNNING) -> None:
        if state not in table:
            raise ValueError(f"{name}: no state {state!r}")
        self.name = name
        self.table = table
        self.state = state

    def check(self, event: Event) -> str:
        """The state a received event leads to, without moving there; UnexpectedMessage when the
        table does not allow it here."""
        kind = kind_of(event)
        nxt = self.table[self.state].get(kind)
        if nxt is None:
            raise UnexpectedMessage(
                self.name, self.state, kind, tuple(sorted(self.table[self.state]))
            )
        return nxt

    def receive(self, event: Event) -> str:
        """Move on for a received event; one the table does not allow here is UnexpectedMessage."""
        self.state = self.check(event)
        return self.state

    def enter(self, state: str) -> None:
        """Move to a state `check` gave, once the event is handled (a refused command stays)."""
        if state not in self.table:
            raise ValueError(f"{self.name}: no state {state!r}")
        self.state = state

    @property
    def ended(self) -> bool:
        return not self.table[self.state]
