"""The backup walk by descriptor (#13): a directory swapped for a symlink is never followed.

Real trees on disk. The walk is a generator, so the test pauses it at a chosen record and swaps a
directory of the FileSet for a symlink to a directory outside it, then lets it go on: nothing of
the outside directory may be read (no content, no path), and what the walk still records is what
was inside the FileSet. One race (between a directory's stat and its open) has no record to pause
at: a wrapper around os.stat does the swap right after the real stat returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from filed.backup import BackupReader
from protocol import codec
from protocol.attributes import FileType, decode_attributes
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.records import DATA_STREAMS, Record, Stream, unpack_data

SECRET = b"SECRET outside the FileSet\n"


def _fileset(src: Path) -> FileSetSpec:
    return FileSetSpec(
        name="fs", include=(IncludeSpec(files=(os.fsencode(src),), options=(OptionsSpec(),)),)
    )


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """src/{1first, dir/{f1,f2,f3,sub/{g1,g2}}, zlast}; outside/ has the same names, secret."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    for root, content in ((src, b"inside %s\n"), (outside, SECRET)):
        (root / "sub").mkdir(parents=True)
        for name in ("f1", "f2", "f3", "sub/g1", "sub/g2"):
            (root / name).write_bytes(content.replace(b"%s", name.encode()))
    (src / "dir").mkdir()
    for name in ("f1", "f2", "f3", "sub"):
        (src / name).rename(src / "dir" / name)
    (src / "1first").write_bytes(b"first\n")
    (src / "zlast").write_bytes(b"last\n")
    return src, outside


def _swap(directory: Path, outside: Path) -> None:
    """Replace `directory` by a symlink to `outside` (the real one moves aside, as `mv` would)."""
    directory.rename(directory.with_name(directory.name + ".moved"))
    directory.symlink_to(outside)


def _walk_with_pause(
    src: Path, pause_at: bytes, action: Callable[[], None]
) -> tuple[list[Record], BackupReader]:
    reader = BackupReader(_fileset(src))
    records: list[Record] = []
    for record in reader.records():
        records.append(record)
        if (
            record.stream == Stream.ATTRIBUTES
            and decode_attributes(record.payload).path == pause_at
        ):
            action()
    return records, reader


def _paths(records: list[Record]) -> list[bytes]:
    return [decode_attributes(r.payload).path for r in records if r.stream == Stream.ATTRIBUTES]


def _data(records: list[Record]) -> bytes:
    return b"".join(bytes(unpack_data(r.payload)[1]) for r in records if r.stream in DATA_STREAMS)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_walk_records_the_same_paths_in_the_same_order(trees: tuple[Path, Path]) -> None:
    src, _outside = trees
    odd = src / os.fsdecode(b"caf\xe9")  # not UTF-8: the name travels as its bytes
    odd.write_bytes(b"x")
    (src / "link").symlink_to("dir/f1")
    records = list(BackupReader(_fileset(src)).records())
    base = os.fsencode(src)
    assert _paths(records) == [
        base + p
        for p in (
            b"",
            b"/1first",
            b"/caf\xe9",
            b"/dir",
            b"/dir/f1",
            b"/dir/f2",
            b"/dir/f3",
            b"/dir/sub",
            b"/dir/sub/g1",
            b"/dir/sub/g2",
            b"/link",
            b"/zlast",
        )
    ]
    link = [decode_attributes(r.payload) for r in records if r.stream == Stream.ATTRIBUTES][-2]
    assert (link.type, link.link_target) == (FileType.SYMLINK, b"dir/f1")


def test_a_directory_swapped_before_it_is_reached_is_recorded_as_the_symlink(
    trees: tuple[Path, Path],
) -> None:
    src, outside = trees
    records, reader = _walk_with_pause(
        src, os.fsencode(src / "1first"), lambda: _swap(src / "dir", outside)
    )
    assert SECRET not in _data(records)
    attrs = [decode_attributes(r.payload) for r in records if r.stream == Stream.ATTRIBUTES]
    (swapped,) = [a for a in attrs if a.path == os.fsencode(src / "dir")]
    assert swapped.type == FileType.SYMLINK
    assert not [a for a in attrs if a.path.startswith(os.fsencode(src / "dir") + b"/")]
    assert reader.stats.errors == 0


def test_a_directory_swapped_after_its_record_is_walked_as_it_was(
    trees: tuple[Path, Path],
) -> None:
    """Paused at the directory's own record: a walk by path would now list and read the outside
    directory through the symlink. By descriptor it lists the directory it recorded."""
    src, outside = trees
    records, _reader = _walk_with_pause(
        src, os.fsencode(src / "dir"), lambda: _swap(src / "dir", outside)
    )
    data = _data(records)
    assert SECRET not in data
    assert b"inside f1\n" in data and b"inside sub/g2\n" in data
    assert os.fsencode(src / "dir" / "sub" / "g2") in _paths(records)


@pytest.mark.parametrize("pause", ["dir/f1", "dir/sub/g1"])
def test_a_parent_swapped_mid_directory_does_not_lead_outside(
    trees: tuple[Path, Path], pause: str
) -> None:
    """Paused inside the directory (or below it): the rest of it is still read through the open
    descriptors, never through the symlink that now stands at its path."""
    src, outside = trees
    before = _open_fds()
    records, reader = _walk_with_pause(
        src, os.fsencode(src / pause), lambda: _swap(src / "dir", outside)
    )
    data = _data(records)
    assert SECRET not in data
    for name in ("f2", "f3", "sub/g2"):
        assert f"inside {name}\n".encode() in data, name
    assert _paths(records)[-1] == os.fsencode(src / "zlast")
    assert reader.stats.errors == 0 and _open_fds() == before


def test_a_directory_swapped_between_its_stat_and_its_open_is_not_entered(
    trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, outside = trees
    real_stat = os.stat

    def stat_then_swap(name: Any, *args: Any, **kw: Any) -> os.stat_result:
        result = real_stat(name, *args, **kw)
        if name == b"dir" and kw.get("dir_fd") is not None:
            _swap(src / "dir", outside)  # the attacker wins the race right here
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    records = list((reader := BackupReader(_fileset(src))).records())
    monkeypatch.undo()
    assert SECRET not in _data(records)
    assert not [p for p in _paths(records) if p.startswith(os.fsencode(src / "dir") + b"/")]
    assert reader.stats.warnings == [
        f"{src}/dir: is no longer a directory (replaced during the backup); not descending"
    ]
    assert _paths(records)[-1] == os.fsencode(src / "zlast")  # the rest of the tree is walked


def test_a_file_replaced_by_a_symlink_is_not_opened_through_it(
    trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, outside = trees
    real_stat = os.stat

    def stat_then_swap(name: Any, *args: Any, **kw: Any) -> os.stat_result:
        result = real_stat(name, *args, **kw)
        if name == b"zlast" and kw.get("dir_fd") is not None:
            (src / "zlast").unlink()
            (src / "zlast").symlink_to(outside / "f1")
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    records = list((reader := BackupReader(_fileset(src))).records())
    monkeypatch.undo()
    assert SECRET not in _data(records)
    assert reader.stats.errors == 1
    assert reader.stats.warnings[-1].startswith(f"{src}/zlast: cannot open: ")


def test_a_walk_stopped_midway_closes_its_directories(trees: tuple[Path, Path]) -> None:
    src, _outside = trees
    before = _open_fds()
    walk: Iterator[Record] = BackupReader(_fileset(src)).records()
    for record in walk:
        if record.stream == Stream.ATTRIBUTES and decode_attributes(record.payload).path.endswith(
            b"/sub/g1"
        ):
            break
    assert _open_fds() > before  # src, dir and sub are open
    walk.close()  # type: ignore[attr-defined]  # a generator: what a canceled job does
    assert _open_fds() == before


def test_xattrs_are_read_through_descriptors_and_never_through_a_symlink(tmp_path: Path) -> None:
    """A file with data and a directory give their xattrs through their open descriptor, an empty
    file through its directory's; a symlink to a file with xattrs records none of its target's."""
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "data").write_bytes(b"x")
    (src / "empty").write_bytes(b"")
    (src / "link").symlink_to(src / "data")
    try:
        for name in ("data", "empty", "dir"):
            os.setxattr(src / name, "user.which", name.encode())
    except OSError as exc:
        pytest.skip(f"no user xattrs here: {exc}")
    records = list(BackupReader(_fileset(src)).records())
    paths = {
        r.file_index: decode_attributes(r.payload).path
        for r in records
        if r.stream == Stream.ATTRIBUTES
    }
    found = {
        os.path.basename(paths[r.file_index]): codec.unpack(r.payload)
        for r in records
        if r.stream == Stream.XATTRS
    }
    assert found == {name: ((b"user.which", name),) for name in (b"data", b"empty", b"dir")}, found
