"""The catalog's directory tree: Path.ParentId, PathVisibility, browsing one directory, migration 2 -> 3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from director.catalog import Catalog, FileRow, NewJob
from director.catalog.schema import MIGRATIONS
from director.catalog.sqlite import parent_of
from director.jobs.attributes import split_path
from protocol.attributes import FileAttributes, FileType, encode_attributes


def _row(job_id: int, path: bytes, index: int, kind: FileType = FileType.REGULAR) -> FileRow:
    attrs = FileAttributes(
        path=path,
        type=kind,
        mode=0o644,
        uid=0,
        gid=0,
        size=0,
        atime_ns=0,
        mtime_ns=index,
        ctime_ns=0,
    )
    head, name = split_path(path, kind == FileType.DIRECTORY)
    return FileRow(job_id, head, name, index, encode_attributes(attrs), None)


def _catalog(tmp_path: Path) -> tuple[Catalog, int, int]:
    cat = Catalog(tmp_path / "c.db")
    cat.migrate()
    client, fs = cat.ensure_client("fd1"), cat.ensure_fileset("fs", "abc")
    full = cat.create_job(NewJob("j.1", "j", "B", "F", client, fs, None, 1.0))
    incr = cat.create_job(NewJob("j.2", "j", "B", "I", client, fs, None, 2.0))
    cat.insert_files(
        full,
        [
            _row(full, b"/srv/data", 1, FileType.DIRECTORY),
            _row(full, b"/srv/data/a", 2),
            _row(full, b"/srv/data/b", 3),
            _row(full, b"/srv/data/sub", 4, FileType.DIRECTORY),
            _row(full, b"/srv/data/sub/deep/x", 5),
        ],
    )
    cat.insert_files(
        incr,
        [
            _row(incr, b"/srv/data", 1, FileType.DIRECTORY),
            _row(incr, b"/srv/data/b", 2),
            _row(incr, b"/srv/data/a", 0),
        ],
    )  # b changed, a deleted
    return cat, full, incr


def test_parent_of() -> None:
    assert parent_of(b"/a/b/") == b"/a/"
    assert parent_of(b"/a/") == b"/"
    assert parent_of(b"/") is None
    assert parent_of(b"a/") is None
    assert parent_of(b"a/b/") == b"a/"


def test_browse_one_directory_of_a_job(tmp_path: Path) -> None:
    cat, full, _incr = _catalog(tmp_path)
    listing = cat.browse_directory([full], b"/srv/data/")
    assert [(e.name, e.path_id is not None) for e in listing] == [
        (b"sub/", True),
        (b"a", False),
        (b"b", False),
    ]
    sub, a, _b = listing
    assert sub.row is not None and sub.row.file_index == 4 and sub.row.name == b""
    assert a.row is not None and a.row.file_index == 2 and a.row.path == b"/srv/data/"
    # Parents of the FileSet's top are browsable, without a row of their own; so is a directory
    # that only leads to backed-up files (sub/deep/ has no directory row of its own).
    assert [(e.name, e.row) for e in cat.browse_directory([full], b"/")] == [(b"srv/", None)]
    assert [e.name for e in cat.browse_directory([full], b"/srv")] == [b"data/"]
    assert [e.name for e in cat.browse_directory([full], b"/srv/data/sub/")] == [b"deep/"]
    assert [e.name for e in cat.browse_directory([full], b"/srv/data/sub/deep/")] == [b"x"]
    assert cat.browse_directory([full], b"/nowhere/") == []
    assert [e.name for e in cat.browse_directory([full], b"/srv/data/", limit=2, offset=1)] == [
        b"a",
        b"b",
    ]
    cat.close()


def test_browse_a_chain_takes_the_newest_row_and_drops_deleted_files(tmp_path: Path) -> None:
    cat, full, incr = _catalog(tmp_path)
    listing = {e.name: e.row for e in cat.browse_directory([full, incr], b"/srv/data/")}
    assert set(listing) == {b"sub/", b"b"}  # a was deleted by the Incremental
    assert listing[b"b"] is not None and (listing[b"b"].job_id, listing[b"b"].file_index) == (
        incr,
        2,
    )
    # The Incremental alone shows only what it holds (and the deletion hides nothing of its own).
    assert [e.name for e in cat.browse_directory([incr], b"/srv/data/")] == [b"b"]
    cat.close()


def test_deleting_a_job_removes_its_visibility(tmp_path: Path) -> None:
    cat, full, incr = _catalog(tmp_path)
    cat.delete_job(full)
    assert cat.browse_directory([full], b"/srv/data/") == []
    assert [e.name for e in cat.browse_directory([incr], b"/srv/")] == [b"data/"]
    cat.close()


def test_migration_links_paths_of_an_older_catalog(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for version in (1, 2):
        for statement in MIGRATIONS[version].split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("INSERT INTO Version (VersionId) VALUES (2)")
    db.execute(
        "INSERT INTO Job (JobId, Job, Name, Type, Level, JobStatus) VALUES (1, 'j.1', 'j', 'B', 'F', 'T')"
    )
    db.execute("INSERT INTO Path (PathId, Path) VALUES (7, ?)", (b"/srv/data/",))
    db.execute(
        "INSERT INTO File (FileIndex, JobId, PathId, Name, LStat) VALUES (1, 1, 7, ?, ?)",
        (b"f", _row(1, b"/srv/data/f", 1).lstat),
    )
    db.close()
    cat = Catalog(path)
    cat.migrate()
    assert cat.version() == 3
    assert [e.name for e in cat.browse_directory([1], b"/")] == [b"srv/"]
    assert [e.name for e in cat.browse_directory([1], b"/srv/data/")] == [b"f"]
    cat.close()
