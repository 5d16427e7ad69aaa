"""A volume that fails while a session writes its last block (the records still held and the end
label): those records go to the next volume with the label, none is lost, the job's JobMedia
points at where they are."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from protocol.jobs import JobMediaReport, JobMessage, VolumeUpdate
from storaged import sessions
from storaged import volume as vol
from storaged.appender import SessionWriter
from tests.unit.storaged.test_appender import failing_appender
from tests.unit.storaged.test_sessions_pipeline import (
    RecordingJob,
    _assignment,
    _batches,
    _job,
    _read_back,
    _source,
)


def _failing_segment(job: RecordingJob, err: int, direct: bool) -> sessions.Segment:
    """The job's first volume, whose first block write (the session's only block) fails with err."""
    assignment = _assignment(1)
    path = sessions._prepare_volume(job, assignment)
    appender = failing_appender(path, 1, err, direct)
    session = SessionWriter(appender, job.session_id, job.session_time)
    session.start(sessions._session_label(job, end=False))
    return sessions.Segment(assignment, session)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize(("err", "status"), [(errno.ENOSPC, "Full"), (errno.EIO, "Error")])
async def test_the_last_records_move_to_the_next_volume_with_the_end_label(
    tmp_path: Path, err: int, status: str, direct: bool
) -> None:
    job = _job(tmp_path, _assignment(1))
    job.volume_replies.put_nowait(_assignment(2))
    batches = _batches(2, per_batch=2, size=100)  # 8 small records: all in the last block

    await sessions.append_batches(job, _failing_segment(job, err, direct), _source(batches))

    expected = [(r.file_index, r.stream, bytes(r.payload)) for batch in batches for r in batch]
    assert _read_back(tmp_path, ["Full-0001", "Full-0002"]) == expected
    media = [m for m in job.told if isinstance(m, JobMediaReport)]
    assert [(m.volume_name, m.first_index, m.last_index) for m in media] == [("Full-0002", 1, 4)]
    updates = {m.volume_name: m.status for m in job.told if isinstance(m, VolumeUpdate)}
    assert updates["Full-0001"] == status
    warnings = [m.text for m in job.told if isinstance(m, JobMessage) and m.level == "warning"]
    assert any("the session ends on the next volume" in text for text in warnings), warnings
    (_start, end) = vol.VolumeReader(tmp_path / "Full-0002").sessions()
    assert end.status == "T" and end.files == 4
    assert (end.first_index, end.last_index) == (1, 4)
