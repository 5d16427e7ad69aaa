"""The accurate list in bounded memory (#14): lookups, seen marks, the deleted paths, its cost.

Real files: the paths file lives in a real directory, the backup walk runs over a real tree.
"""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest

from filed.accurate import LARGE_DIRECTORY, AccurateEntry, AccurateList, _Table
from filed.backup import BackupReader
from protocol.attributes import FileType, decode_attributes
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.records import Stream


def _entries(n: int, seed: int = 7) -> list[tuple[bytes, int, int, int, int]]:
    rng = random.Random(seed)
    paths = {
        b"/data/d%03d/%s" % (rng.randrange(1000), rng.randbytes(12).hex().encode())
        for _ in range(n)
    }
    return [(p, i, i + 1, i * 3, 0o100644 + i % 3) for i, p in enumerate(sorted(paths))]


def test_every_path_is_found_with_its_fields_and_others_are_not(tmp_path: Path) -> None:
    entries = _entries(20_000)
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    accurate = AccurateList(tmp_path)
    try:
        for start in range(0, len(shuffled), 2000):  # as AccurateBatch messages arrive
            accurate.add(shuffled[start : start + 2000])
        assert len(accurate) == len(entries)
        for path, mtime, ctime, size, mode in entries:
            assert accurate.get(path) == AccurateEntry(mtime, ctime, size, mode), path
        for path, *_ in entries[:500]:
            assert accurate.get(path + b"x") is None
            assert accurate.get(path[:-1]) is None
        assert accurate.get(b"") is None
    finally:
        accurate.close()


def test_a_path_sent_twice_keeps_its_last_fields_and_one_seen_mark(tmp_path: Path) -> None:
    accurate = AccurateList(tmp_path)
    try:
        accurate.add([(b"/a", 1, 1, 1, 1), (b"/b", 2, 2, 2, 2)])
        accurate.add([(b"/a", 9, 9, 9, 9)])
        assert len(accurate) == 3 and accurate.get(b"/a") == AccurateEntry(9, 9, 9, 9)
        index = accurate.lookup(b"/a")
        assert index is not None
        accurate.mark_seen(index)
        assert [p for p, _ in accurate.unseen()] == [b"/b"]  # /a is not "deleted" by its twin
    finally:
        accurate.close()


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
@pytest.mark.parametrize("cache_entries", [1, 32_768])
def test_the_unseen_paths_come_by_directory_then_as_they_came_with_their_fields(
    tmp_path: Path, order: str, cache_entries: int
) -> None:
    """Whether every directory stays read or each lookup reads its directory again, the walk's
    marks hold and only the paths never seen come back."""
    entries = _entries(5000)
    if order == "shuffled":
        random.Random(2).shuffle(entries)
    accurate = AccurateList(tmp_path, cache_entries=cache_entries)
    try:
        for start in range(0, len(entries), 700):
            accurate.add(entries[start : start + 700])
        gone = set(random.Random(3).sample([e[0] for e in entries], 300))
        walk = entries[:]
        random.Random(4).shuffle(walk)  # directories visited again and again
        for path, mtime, ctime, size, mode in walk:
            if path not in gone:
                assert accurate.find(path) == (accurate.lookup(path), mtime, ctime, size, mode)
                index = accurate.lookup(path)
                assert index is not None
                accurate.mark_seen(index)
        expected = [(e[0], AccurateEntry(*e[1:])) for e in entries if e[0] in gone]
        # by directory; stable: as they came within one
        expected.sort(key=lambda item: item[0][: item[0].rfind(b"/") + 1])
        assert list(accurate.unseen()) == expected
    finally:
        accurate.close()


def _open_files() -> dict[str, str]:
    """What this process has open: descriptor -> target."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the listing's own descriptor
            continue
    return found


def test_the_paths_go_to_an_unlinked_file_in_the_given_directory(tmp_path: Path) -> None:
    before = _open_files()
    accurate = AccurateList(tmp_path)
    try:
        accurate.add(_entries(100))
        targets = [t for fd, t in _open_files().items() if fd not in before]
        assert any(t.startswith(f"{tmp_path}/") and t.endswith(" (deleted)") for t in targets), (
            targets
        )
        assert list(tmp_path.iterdir()) == []  # nothing left behind, even if the daemon is killed
    finally:
        accurate.close()
    assert _open_files() == before


def test_memory_per_path_is_bounded(tmp_path: Path) -> None:
    """Python memory of 100,000 entries in 1,000 directories (the entries are on disk): under 8
    bytes each, the seen byte and each directory's place. A dict of AccurateEntry took
    about 450 bytes per path, a table of every path in arrays about 56."""
    entries = _entries(100_000)
    tracemalloc.start()
    try:
        accurate = AccurateList(tmp_path)
        start, _ = tracemalloc.get_traced_memory()
        accurate.add(entries)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    accurate.close()
    assert (used - start) / len(entries) < 8, (used - start) / len(entries)


def _fileset(src: Path) -> FileSetSpec:
    return FileSetSpec(
        name="fs", include=(IncludeSpec(files=(os.fsencode(src),), options=(OptionsSpec(),)),)
    )


def test_the_walk_marks_seen_and_reports_deleted_paths_from_the_list(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for name in ("keep", "change", "remove", "also-removed"):
        (src / "d" / name).write_text(name)
    accurate = AccurateList(tmp_path)
    try:
        for r in BackupReader(_fileset(src)).records():
            if r.stream == Stream.ATTRIBUTES:
                a = decode_attributes(r.payload)
                accurate.add([(a.path, a.mtime_ns, a.ctime_ns, a.size, a.mode)])
        (src / "d" / "change").write_text("changed!")
        (src / "d" / "remove").unlink()
        (src / "d" / "also-removed").unlink()
        (src / "d" / "added").write_text("new")
        reader = BackupReader(_fileset(src), level="Incremental", since_ns=0, accurate=accurate)
        records = list(reader.records())
    finally:
        accurate.close()
    sent = [decode_attributes(r.payload) for r in records if r.stream == Stream.ATTRIBUTES]
    assert sorted(os.path.basename(a.path) for a in sent if a.type != FileType.DIRECTORY) == [
        b"added",
        b"change",
    ]
    deleted = [decode_attributes(r.payload) for r in records if r.stream == Stream.DELETED]
    assert [d.path for d in deleted] == [
        os.fsencode(src / "d" / "also-removed"),
        os.fsencode(src / "d" / "remove"),
    ]
    assert all(d.type == FileType.DELETED and d.mode & 0o100000 for d in deleted)
    assert reader.stats.deleted == 2


@pytest.mark.parametrize("cache_entries", [1, 32_768])
def test_a_large_directory_is_a_table_with_the_same_answers(
    tmp_path: Path, cache_entries: int
) -> None:
    """Above LARGE_DIRECTORY entries a directory is read into typed arrays: the same fields, the
    same misses, a later twin replacing an earlier one, the same deleted paths."""
    n = LARGE_DIRECTORY * 3
    entries = [(b"/spool/new/%07d.eml" % i, i, i + 1, i * 7, 0o100600) for i in range(n)]
    twins = [(b"/spool/new/%07d.eml" % i, 9, 9, 9, 0o100644) for i in range(0, n, 1000)]
    accurate = AccurateList(tmp_path, cache_entries=cache_entries)
    try:
        for start in range(0, n, 2000):
            accurate.add(entries[start : start + 2000])
        accurate.add(twins)
        assert isinstance(accurate._directory(b"/spool/new/"), _Table)
        latest = {e[0]: e for e in entries} | {t[0]: t for t in twins}
        gone = {b"/spool/new/%07d.eml" % i for i in range(5, n, 997)}
        for path, (_, mtime, ctime, size, mode) in latest.items():
            assert accurate.get(path) == AccurateEntry(mtime, ctime, size, mode), path
            if path not in gone:
                index = accurate.lookup(path)
                assert index is not None
                accurate.mark_seen(index)
        assert accurate.get(b"/spool/new/missing.eml") is None
        assert accurate.get(b"/spool/new/0000001.em") is None
        unseen = list(accurate.unseen())
    finally:
        accurate.close()
    assert sorted(unseen) == sorted((p, AccurateEntry(*latest[p][1:])) for p in gone)


def test_a_large_directory_costs_typed_arrays_not_a_dict(tmp_path: Path) -> None:
    """A directory of 100,000 entries read back: under 80 bytes an entry (a dict of tuples took
    about 350)."""
    n = 100_000
    accurate = AccurateList(tmp_path)
    try:
        accurate.add((b"/spool/%08d" % i, i, i, i, 0o100600) for i in range(n))
        tracemalloc.start()
        try:
            start, _ = tracemalloc.get_traced_memory()
            assert accurate.find(b"/spool/00000007") == (7, 7, 7, 7, 0o100600)
            used, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        accurate.close()
    assert (used - start) / n < 80, (used - start) / n
