"""An Incremental without Accurate: the walk sends what changed since the previous job's start
(mtime, or ctime unless `mtime only`), every directory, and nothing the FileSet excludes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from filed.backup import BackupReader
from protocol.attributes import decode_attributes
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.records import Stream

SINCE = 1_700_000_000 * 10**9
BEFORE = SINCE - 3600 * 10**9
AFTER = SINCE + 3600 * 10**9


def _sent(root: Path, since_ns: int, *options: OptionsSpec) -> set[str]:
    fileset = FileSetSpec(
        name="fs", include=(IncludeSpec(files=(os.fsencode(root),), options=options),)
    )
    reader = BackupReader(fileset, level="Incremental", since_ns=since_ns)
    return {
        os.fsdecode(decode_attributes(r.payload).path)[len(str(root)) :]
        for r in reader.records()
        if r.stream == Stream.ATTRIBUTES
    }


def _tree(root: Path) -> None:
    for d in ("a", "a/b", "c"):
        (root / d).mkdir(parents=True)
    for name in ("a/old", "a/b/old", "c/old", "a/new", "c/new.tmp", "old.tmp"):
        (root / name).write_bytes(b"x")
    for name in ("a/old", "a/b/old", "c/old", "old.tmp", "c/new.tmp"):
        os.utime(root / name, ns=(BEFORE, BEFORE))
    os.utime(root / "a/new", ns=(AFTER, AFTER))
    os.utime(root / "c/new.tmp", ns=(AFTER, AFTER))


def test_only_what_changed_and_every_directory(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _tree(root)
    # ctime is now for every file (they were just made): since now, only mtime can tell.
    assert _sent(root, time.time_ns() + 10**9, OptionsSpec(mtime_only=True)) == {
        "",
        "/a",
        "/a/b",
        "/c",
        # nothing else: a/new and c/new.tmp have mtimes in the future of SINCE but not of now
    }
    assert _sent(root, SINCE, OptionsSpec(mtime_only=True)) == {
        "",
        "/a",
        "/a/b",
        "/c",
        "/a/new",
        "/c/new.tmp",
    }


def test_ctime_counts_unless_mtime_only(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _tree(root)
    # Every file's ctime is after SINCE (made just now): without mtime only, all of them go.
    sent = _sent(root, SINCE, OptionsSpec())
    assert sent >= {"/a/old", "/a/b/old", "/c/old", "/old.tmp", "/a/new", "/c/new.tmp"}


def test_excluded_files_are_not_sent_even_when_changed(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _tree(root)
    excluded = OptionsSpec(wild=("*.tmp",), exclude=True)
    sent = _sent(root, SINCE, excluded, OptionsSpec(mtime_only=True))
    assert sent == {"", "/a", "/a/b", "/c", "/a/new"}
