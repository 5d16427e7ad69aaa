"""The restore writer's fast path (#14): files made under their own name, the directory kept open.

A file whose name is free is created there (O_EXCL) instead of under a temporary name renamed over
it; the directory files arrive in stays open between them; the file is truncated only when its
data does not end at its size. None of it may cost exactness or the descriptor discipline: sizes,
holes and attributes come back exact, and a directory swapped for a symlink between two of its
files is never followed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from filed.restore import RestoreWriter
from protocol.attributes import FileType
from protocol.records import Record, Stream, pack_data
from tests.unit.filed.test_restore_faults import MTIME, attributes, file_records, leftovers


def restore(records: list[Record], where: Path) -> RestoreWriter:
    writer = RestoreWriter(where)
    writer.feed_batch(records)
    writer.finish()
    return writer


def test_files_of_interleaved_directories_land_in_their_own(tmp_path: Path) -> None:
    where = tmp_path / "where"
    records: list[Record] = []
    names = [(d, n) for n in range(5) for d in ("a", "b", "a/c")]  # the directory changes each file
    for index, (d, n) in enumerate(names, start=1):
        records += file_records(index, b"/src/%s/f%d" % (d.encode(), n), b"%s-%d" % (d.encode(), n))
    writer = restore(records, where)
    assert writer.stats.errors == 0 and writer.stats.files == len(names)
    for d, n in names:
        path = where / "src" / d / f"f{n}"
        assert path.read_bytes() == f"{d}-{n}".encode()
        assert path.stat().st_mtime_ns == MTIME and path.stat().st_mode & 0o7777 == 0o644
    assert leftovers(where) == []


def test_a_trailing_hole_and_data_past_the_size_give_the_exact_size(tmp_path: Path) -> None:
    where = tmp_path / "where"
    hole = 8 * 1024 * 1024
    records = [
        # a sparse file: 4 KiB of data, then a hole up to its size
        Record(1, Stream.ATTRIBUTES, attributes(b"/src/sparse", hole)),
        Record(1, Stream.DATA, pack_data(0, b"s" * 4096)),
        # data that ends exactly at the size: nothing to truncate
        Record(2, Stream.ATTRIBUTES, attributes(b"/src/exact", 5)),
        Record(2, Stream.DATA, pack_data(0, b"exact")),
        # more data than the size (the file grew while it was read): cut at the size
        Record(3, Stream.ATTRIBUTES, attributes(b"/src/grew", 3)),
        Record(3, Stream.DATA, pack_data(0, b"grown")),
    ]
    writer = restore(records, where)
    assert writer.stats.errors == 0
    sparse = where / "src" / "sparse"
    assert sparse.stat().st_size == hole
    assert sparse.stat().st_blocks * 512 < hole // 2  # the hole stays a hole
    with sparse.open("rb") as f:
        assert f.read(4096) == b"s" * 4096
        f.seek(hole - 10)
        assert f.read() == bytes(10)
    assert (where / "src" / "exact").read_bytes() == b"exact"
    assert (where / "src" / "grew").read_bytes() == b"gro"


def test_an_existing_file_is_replaced_whole_through_a_temporary_name(tmp_path: Path) -> None:
    where = tmp_path / "where"
    old = where / "src" / "f"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old and longer than the new one")
    old.chmod(0o600)
    inode = old.stat().st_ino
    writer = restore(file_records(1, b"/src/f", b"new"), where)
    assert writer.stats.errors == 0
    assert old.read_bytes() == b"new" and old.stat().st_mode & 0o7777 == 0o644
    assert old.stat().st_ino != inode  # a new file renamed over the old one, never rewritten
    assert leftovers(where) == []


def test_a_directory_swapped_for_a_symlink_between_its_files_is_not_followed(
    tmp_path: Path,
) -> None:
    where = tmp_path / "where"
    outside = tmp_path / "outside"
    outside.mkdir()
    writer = RestoreWriter(where)
    writer.feed_batch(file_records(1, b"/src/d/one", b"one"))
    moved = tmp_path / "where" / "moved"
    (where / "src" / "d").rename(moved)
    (where / "src" / "d").symlink_to(outside)  # a local user swaps the directory mid-restore
    writer.feed_batch(file_records(2, b"/src/d/two", b"two"))
    writer.feed_batch(file_records(3, b"/src/e/three", b"three"))
    writer.finish()
    assert list(outside.iterdir()) == []  # nothing written through the symlink
    assert (moved / "one").read_bytes() == b"one"
    assert (moved / "two").read_bytes() == b"two"  # into the directory it opened, wherever it is
    assert (where / "src" / "e" / "three").read_bytes() == b"three"
    assert (where / "src" / "d").is_symlink()


def test_the_open_directory_is_closed_with_the_writer(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    writer = restore(file_records(1, b"/src/d/f", b"x"), tmp_path / "where")
    assert writer.stats.files == 1
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory another group needs root")
def test_owner_and_group_are_exact_in_a_setgid_directory(tmp_path: Path) -> None:
    """A new file takes a setgid directory's group: the chown a file already owned right can
    skip must not be skipped there."""
    where = tmp_path / "where"
    shared = where / "src" / "shared"
    shared.mkdir(parents=True)
    os.chown(shared, -1, 4321)
    shared.chmod(0o2775)
    egid = os.getegid()
    records = [
        *file_records(1, b"/src/shared/mine", b"m", gid=egid),
        *file_records(2, b"/src/shared/theirs", b"t", gid=4321),
        *file_records(3, b"/src/plain", b"p", uid=1234, gid=5678),
        *file_records(4, b"/src/root", b"r"),
    ]
    writer = restore(records, where)
    assert writer.stats.errors == 0 and writer.stats.warning_count == 0
    owners = {
        name: (os.lstat(path).st_uid, os.lstat(path).st_gid)
        for name, path in [
            ("mine", shared / "mine"),
            ("theirs", shared / "theirs"),
            ("plain", where / "src" / "plain"),
            ("root", where / "src" / "root"),
        ]
    }
    assert owners == {
        "mine": (0, egid),
        "theirs": (0, 4321),
        "plain": (1234, 5678),
        "root": (0, egid),
    }


def test_a_directory_after_its_files_is_merged_without_another_mkdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup sends a directory's record after its contents: the directory was made for them
    and is open, so its record only brings the attributes set at the end (one mkdir each)."""
    where = tmp_path / "where"
    records = [
        *file_records(1, b"/src/d/f", b"in d"),
        Record(2, Stream.ATTRIBUTES, attributes(b"/src/d", kind=FileType.DIRECTORY, mode=0o751)),
        Record(3, Stream.ATTRIBUTES, attributes(b"/src", kind=FileType.DIRECTORY, mode=0o750)),
    ]
    made: list[bytes] = []
    real_mkdir = os.mkdir

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        made.append(os.fsencode(path))
        real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir)
    writer = restore(records, where)
    assert writer.stats.errors == 0 and writer.stats.files == 3
    assert sorted(made) == [b"d", b"src", b"where"]
    assert (where / "src" / "d" / "f").read_bytes() == b"in d"
    for path, mode in ((where / "src" / "d", 0o751), (where / "src", 0o750)):
        assert path.stat().st_mode & 0o7777 == mode and path.stat().st_mtime_ns == MTIME
