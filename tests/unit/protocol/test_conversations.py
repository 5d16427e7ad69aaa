"""The job conversations as tables: allowed messages move on, anything else is a ProtocolError."""

from __future__ import annotations

import pytest

from protocol.conversations import (
    DIRECTOR_FROM_FD,
    DIRECTOR_FROM_READING_SD,
    DIRECTOR_FROM_SD,
    ENDED,
    RUNNING,
    TABLES,
    Conversation,
)
from protocol.errors import ProtocolError
from protocol.jobs import AppendDone, AttributeBatch, JobEnd, JobMessage, JobProgress, Ok
from protocol.messages import MESSAGE_TYPES

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


def test_every_table_names_only_registered_messages() -> None:
    for name, table in TABLES.items():
        for state, moves in table.items():
            assert set(moves) <= set(MESSAGE_TYPES), (name, state)
            assert set(moves.values()) <= set(table), (name, state)
