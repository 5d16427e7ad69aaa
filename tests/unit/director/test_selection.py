"""Restore selection on a synthetic catalog: chains across Full/Diff/Incr and clients, file filters, bootstraps."""

from __future__ import annotations

from pathlib import Path

import pytest

from director.catalog import Catalog, FileRow, JobMediaRow, JobRow, NewJob
from director.restore.bootstrap import build_bootstrap, hardlink_carriers, ranges
from director.restore.selection import backup_chain, latest_files, live, select
from protocol.attributes import FileAttributes, FileType, encode_attributes


def _job(
    job_id: int,
    level: str,
    start: float,
    *,
    client: int = 1,
    fileset: int = 1,
    status: str = "T",
    type_: str = "B",
) -> JobRow:
    return JobRow(
        job_id,
        f"j.{job_id}",
        "j",
        type_,
        level,
        status,
        client,
        fileset,
        1,
        start,
        start,
        start + 1,
        0,
        0,
        0,
        0,
        job_id,
        1000,
        10,
        None,
        None,
    )


# (job id, level, start, client, status)
HISTORY = [
    (1, "F", 100, 1, "T"),
    (2, "I", 200, 1, "T"),
    (3, "D", 300, 1, "T"),
    (4, "I", 400, 1, "T"),
    (5, "I", 500, 1, "E"),
    (6, "I", 600, 1, "T"),
    (7, "F", 700, 1, "T"),
    (8, "I", 800, 1, "W"),
    (9, "F", 150, 2, "T"),
    (10, "I", 450, 2, "T"),
]
JOBS = [_job(i, lvl, t, client=c, status=s) for i, lvl, t, c, s in HISTORY]


@pytest.mark.parametrize(
    ("client", "before", "expected"),
    [
        (1, None, [7, 8]),  # newest Full, then its Incrementals (W counts as good)
        (
            1,
            650,
            [1, 3, 4, 6],
        ),  # Full, newest Diff, Incrementals after the Diff; the failed 5 is skipped
        (1, 350, [1, 3]),  # Diff replaces the Incrementals before it
        (1, 250, [1, 2]),
        (1, 99, []),  # nothing before the first Full
        (2, None, [9, 10]),  # another client's chain is independent
        (2, 200, [9]),
    ],
)
def test_chain_matrix(client: int, before: float | None, expected: list[int]) -> None:
    assert [j.job_id for j in backup_chain(JOBS, client, 1, before)] == expected


def test_other_filesets_and_types_are_ignored() -> None:
    jobs = [*JOBS, _job(20, "F", 900, fileset=2), _job(21, "F", 950, type_="R")]
    assert [j.job_id for j in backup_chain(jobs, 1, 1, None)] == [7, 8]
    assert [j.job_id for j in backup_chain(jobs, 1, 2, None)] == [20]


def _row(
    job: int, path: bytes, index: int, kind: FileType = FileType.REGULAR, link_index: int = 0
) -> FileRow:
    head, _, name = path.rpartition(b"/")
    attrs = FileAttributes(path, kind, 0o100644, 0, 0, 1, 0, 0, 0, link_index=link_index)
    if kind == FileType.DIRECTORY:
        return FileRow(job, path + b"/", b"", index, encode_attributes(attrs))
    return FileRow(job, head + b"/", name, index, encode_attributes(attrs))


def test_latest_version_wins_and_deletions_hide_files() -> None:
    full = [
        _row(1, b"/d", 1, FileType.DIRECTORY),
        _row(1, b"/d/a", 2),
        _row(1, b"/d/b", 3),
        _row(1, b"/d/sub", 4, FileType.DIRECTORY),
        _row(1, b"/d/sub/x", 5),
    ]
    incr = [
        _row(2, b"/d", 1, FileType.DIRECTORY),
        _row(2, b"/d/a", 2),
        _row(2, b"/d/b", 0),
        _row(2, b"/d/sub", 0),
    ]
    files = live(latest_files([(JOBS[0], full), (JOBS[1], incr)]))
    assert {p: r.job_id for p, r in files.items()} == {b"/d": 2, b"/d/a": 2}


def test_file_directory_and_regex_selection_keep_parents() -> None:
    rows = [
        _row(1, b"/etc", 1, FileType.DIRECTORY),
        _row(1, b"/etc/passwd", 2),
        _row(1, b"/etc/ssh", 3, FileType.DIRECTORY),
        _row(1, b"/etc/ssh/sshd_config", 4),
        _row(1, b"/etc/hosts", 5),
    ]
    files = latest_files([(JOBS[0], rows)])
    assert set(select(files, file=[b"/etc/ssh/sshd_config"])) == {
        b"/etc/ssh/sshd_config",
        b"/etc/ssh",
        b"/etc",
    }
    assert set(select(files, directory=[b"/etc/ssh"])) == {
        b"/etc/ssh",
        b"/etc/ssh/sshd_config",
        b"/etc",
    }
    assert set(select(files, fileregex=r"pass|host")) == {b"/etc/passwd", b"/etc/hosts", b"/etc"}
    assert set(select(files, file=[b"/etc/*ss*"])) == {
        b"/etc/passwd",
        b"/etc/ssh",
        b"/etc/ssh/sshd_config",
        b"/etc",
    }
    assert len(select(files)) == 5


def test_bootstrap_ranges_per_volume_and_hidden_carriers() -> None:
    assert ranges([9, 1, 2, 3, 7, 10]) == ((1, 3), (7, 7), (9, 10))
    rows = [
        _row(1, b"/l/a", 1),
        _row(1, b"/l/b", 2, FileType.HARDLINK, link_index=1),
        _row(1, b"/l/c", 3),
    ]
    selected = [rows[1], rows[2]]
    hidden = hardlink_carriers(selected, rows)
    assert hidden == {(1, 1)}
    media = [
        JobMediaRow(1, 1, "Vol-1", 1, 2, 1, 5, 100, 900, 800, 1, 1000),
        JobMediaRow(1, 2, "Vol-2", 2, 3, 1, 2, 20, 40, 20, 1, 1000),
    ]
    specs = build_bootstrap(selected, hidden, media, [1])
    assert [(s.volume_name, s.file_indexes) for s in specs] == [
        ("Vol-1", ((1, 2),)),
        ("Vol-2", ((2, 3),)),
    ]
    assert specs[0].start_addr == 100


def test_catalog_round_trip(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    cat.migrate()
    cat.migrate()  # idempotent
    client = cat.ensure_client("fd1")
    assert cat.ensure_client("fd1") == client
    fs = cat.ensure_fileset("fs", "abc")
    job_id = cat.create_job(NewJob("j.1", "j", "B", "F", client, fs, None, 1.0))
    cat.update_job(job_id, JobStatus="T", StartTime=5.0, JobFiles=2)
    rows = [_row(job_id, b"/a/\xff\nname", 1), _row(job_id, b"/a", 2, FileType.DIRECTORY)]
    cat.insert_files(job_id, rows)
    assert cat.list_files(job_id) == rows
    assert rows[0].full_path == b"/a/\xff\nname"
    last = cat.last_job("j", client, fs, ["F"])
    assert last is not None and last.job_id == job_id and last.client == "fd1"
    with pytest.raises(Exception, match="unknown Job column"):
        cat.update_job(job_id, Bogus=1)
    cat.close()
