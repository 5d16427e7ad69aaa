"""The job conversations as tables: allowed messages move on, anything else is a ProtocolError."""

from __future__ import annotations

import pytest

from protocol.conversations import (
    CONNECTED,
    DIRECTOR_FROM_FD,
    DIRECTOR_FROM_READING_SD,
    DIRECTOR_FROM_SD,
    ENDED,
    FD_ACCURATE_LIST,
    FD_FROM_APPENDING_SD,
    FD_FROM_DIRECTOR,
    FD_FROM_READING_SD,
    IDLE,
    OPENING,
    READING,
    RECEIVED,
    RECEIVING,
    RECORDS,
    RUNNING,
    SD_FROM_APPENDING_PEER,
    SD_FROM_WRITING_SD,
    SENDING,
    SET_UP,
    TABLES,
    Conversation,
    Table,
    UnexpectedMessage,
    kind_of,
)
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
    JobMessage,
    JobProgress,
    Ok,
    RunScriptCommand,
)
from protocol.messages import MESSAGE_TYPES, Message, StatusRequest
from protocol.records import Record, Stream

END = JobEnd(code=3099, job="j", status="T", files=1, bytes=2)


def test_a_backup_storage_conversation_runs_to_its_end() -> None:
    talk = Conversation("sd", DIRECTOR_FROM_SD)
    for msg in (
        AttributeBatch(job="j", records=((1, 1, b"a"),)),
        JobMessage(job="j", level="info", text="x", time=1.0),
    ):
        assert talk.receive(msg) == RUNNING
    assert talk.receive(END) == ENDED and talk.ended
    with pytest.raises(ProtocolError, match="unexpected 'jmsg' in state 'ended'"):
        talk.receive(JobMessage(job="j", level="info", text="late", time=2.0))


@pytest.mark.parametrize(
    ("table", "stray"),
    [
        (DIRECTOR_FROM_FD, AttributeBatch(job="j", records=())),
        (
            DIRECTOR_FROM_READING_SD,
            AttributeBatch(job="j", records=()),
        ),  # a restore's SD writes no files
        (DIRECTOR_FROM_SD, JobProgress(job="j", files=1, bytes=2, current_file=b"/x")),
        (DIRECTOR_FROM_SD, Ok(code=3000, text="OK")),
        (DIRECTOR_FROM_FD, AppendDone(code=3000, files=1, bytes=2)),
    ],
)
def test_an_unexpected_message_names_the_conversation_and_state(
    table: object, stray: object
) -> None:
    talk = Conversation("Director <- peer (test)", table)  # type: ignore[arg-type]
    with pytest.raises(
        ProtocolError, match=r"Director <- peer \(test\): unexpected .* in state 'running'"
    ):
        talk.receive(stray)  # type: ignore[arg-type]


def test_every_table_names_only_registered_messages_signals_and_records() -> None:
    kinds = set(MESSAGE_TYPES) | {s.name for s in Signal} | {RECORDS}
    for name, table in TABLES.items():
        for state, moves in table.items():
            assert set(moves) <= kinds, (name, state)
            assert set(moves.values()) <= set(table), (name, state)


def test_kinds_are_message_types_signal_names_and_records() -> None:
    assert kind_of(CancelJob(job="j")) == "cancel"
    assert kind_of(Signal.EOD) == "EOD"
    assert kind_of([Record(1, Stream.ATTRIBUTES, b"a")]) == RECORDS


# -- the File Daemon's side ------------------------------------------------------------------------

SETUP = FdJobSetup(job_id=1, job="j", job_type="B", level="F")
STORAGE = FdStorage(address="sd", port=9103, key="k")


def test_a_backup_command_conversation_runs_to_its_end() -> None:
    talk = Conversation("fd", FD_FROM_DIRECTOR, IDLE)
    steps = [
        (StatusRequest(), IDLE),
        (SETUP, SET_UP),
        (FdEstimate(), SET_UP),
        (STORAGE, CONNECTED),
        (RunScriptCommand(command="true"), CONNECTED),
        (FdBackup(), RUNNING),
        (CancelJob(job="j"), RUNNING),
        (Signal.TERMINATE, ENDED),
    ]
    for event, state in steps:
        assert talk.receive(event) == state, event
    assert talk.ended


@pytest.mark.parametrize(
    ("state", "stray", "kind"),
    [
        (IDLE, FdBackup(), "fd_backup"),  # no job set up
        (IDLE, FdStorage(address="sd", port=9103, key="k"), "fd_storage"),
        (IDLE, AccurateBatch(entries=()), "accurate"),  # only right after an accurate setup
        (SET_UP, FdRestore(where=b"/tmp/r"), "fd_restore"),  # the Storage Daemon is not reached yet
        (SET_UP, SETUP, "fd_job"),  # one job per connection
        (CONNECTED, Signal.EOD, "EOD"),
        (RUNNING, StatusRequest(), "status"),  # a running job hears only cancel
        (RUNNING, FdBackup(), "fd_backup"),
        (ENDED, CancelJob(job="j"), "cancel"),
    ],
)
def test_the_file_daemon_refuses_a_command_out_of_place(
    state: str, stray: Message | Signal, kind: str
) -> None:
    talk = Conversation("File Daemon <- Director", FD_FROM_DIRECTOR, state)
    with pytest.raises(UnexpectedMessage) as info:
        talk.receive(stray)
    exc = info.value
    assert (exc.conversation, exc.state, exc.kind) == ("File Daemon <- Director", state, kind)
    assert str(exc).startswith(f"File Daemon <- Director: unexpected {kind!r} in state {state!r}")
    assert talk.state == state  # a refused event does not move the conversation


def test_check_does_not_move_and_enter_does() -> None:
    talk = Conversation("fd", FD_FROM_DIRECTOR, SET_UP)
    assert talk.check(STORAGE) == CONNECTED and talk.state == SET_UP
    talk.enter(CONNECTED)
    assert talk.state == CONNECTED
    with pytest.raises(ValueError, match="no state 'nowhere'"):
        talk.enter("nowhere")


def test_the_accurate_list_ends_with_its_EOD() -> None:
    talk = Conversation("acc", FD_ACCURATE_LIST, RECEIVING)
    assert talk.receive(AccurateBatch(entries=((b"/a", 1, 2, 3, 4),))) == RECEIVING
    assert talk.receive(Signal.EOD) == RECEIVED and talk.ended
    talk = Conversation("acc", FD_ACCURATE_LIST, RECEIVING)
    assert talk.receive(Signal.TERMINATE) == ENDED and talk.ended  # abandoned, not complete
    talk = Conversation("acc", FD_ACCURATE_LIST, RECEIVING)
    with pytest.raises(UnexpectedMessage, match="unexpected 'fd_storage' in state 'receiving'"):
        talk.receive(STORAGE)


def test_data_sessions_as_the_file_daemon_hears_them() -> None:
    append = Conversation("append", FD_FROM_APPENDING_SD, OPENING)
    assert append.receive(Ok(code=3000, text="OK data")) == SENDING
    with pytest.raises(UnexpectedMessage, match="unexpected 'ok' in state 'sending'"):
        append.receive(Ok(code=3000, text="again"))
    assert append.receive(AppendDone(code=3000, files=1, bytes=2)) == ENDED

    read = Conversation("read", FD_FROM_READING_SD, OPENING)
    with pytest.raises(UnexpectedMessage, match="unexpected 'records' in state 'opening'"):
        read.receive([Record(1, Stream.ATTRIBUTES, b"a")])
    assert read.receive(Ok(code=3000, text="OK data")) == READING
    assert read.receive([Record(1, Stream.ATTRIBUTES, b"a")]) == READING
    with pytest.raises(UnexpectedMessage, match="unexpected 'BREAK' in state 'reading'"):
        read.receive(Signal.BREAK)
    assert read.receive(Signal.EOD) == ENDED


def test_an_append_session_as_the_storage_daemon_hears_it() -> None:
    """From a File Daemon or the reading SD of a remote copy: AppendOpen, batches, EOD."""
    talk = Conversation("sd", SD_FROM_APPENDING_PEER, OPENING)
    with pytest.raises(UnexpectedMessage, match="unexpected 'records' in state 'opening'"):
        talk.receive([Record(1, Stream.ATTRIBUTES, b"a")])
    assert talk.receive(AppendOpen()) == SENDING
    assert talk.receive([Record(1, Stream.ATTRIBUTES, b"a")]) == SENDING
    with pytest.raises(UnexpectedMessage, match="unexpected 'append_open' in state 'sending'"):
        talk.receive(AppendOpen())
    with pytest.raises(UnexpectedMessage, match="unexpected 'BREAK' in state 'sending'"):
        talk.receive(Signal.BREAK)
    assert talk.receive(Signal.EOD) == ENDED
    # The reading SD hears the writing SD as a File Daemon hears its SD on a backup.
    reading = Conversation("reading sd", SD_FROM_WRITING_SD, OPENING)
    assert reading.receive(Ok(code=3000, text="OK data")) == SENDING
    assert reading.receive(AppendDone(code=3000, files=1, bytes=2)) == ENDED


@pytest.mark.parametrize(
    "table",
    [
        FD_FROM_DIRECTOR,
        FD_ACCURATE_LIST,
        FD_FROM_APPENDING_SD,
        FD_FROM_READING_SD,
        SD_FROM_APPENDING_PEER,
        SD_FROM_WRITING_SD,
    ],
)
def test_every_file_daemon_state_is_reachable_and_leads_to_an_end(table: Table) -> None:
    start = next(iter(table))
    reached, todo = {start}, [start]
    while todo:
        for nxt in table[todo.pop()].values():
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert reached == set(table)
    assert ENDED in table and not table[ENDED]
    ends = {state for state, moves in table.items() if not moves}
    for state in set(table) - ends:  # from every state an end can be reached
        seen, todo = {state}, [state]
        while todo:
            for nxt in table[todo.pop()].values():
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & ends, state
