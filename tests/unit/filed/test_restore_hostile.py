"""Restores that a hostile stream or a hostile local user tries to redirect (#13).

Every file is reached by descriptor: a symlink in the way (restored a moment ago, planted before
the restore, or swapped in while it runs) is refused, never followed, with `where=/` exactly as
with any other `where`; nothing is written outside, and the rest of the tree restores. Privileged
content is stripped unless the restore asks for it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from filed.control import default_where
from filed.restore import RestoreWriter
from protocol import codec
from protocol.attributes import FileAttributes, FileType, encode_attributes
from protocol.records import Record, Stream
from tests.unit.filed.test_restore_faults import (
    attributes,
    file_records,
    leftovers,
    open_fds,
    restore,
)


def _node(path: bytes, kind: FileType, mode: int, *, target: bytes = b"", rdev: int = 0) -> Record:
    return Record(
        9,
        Stream.ATTRIBUTES,
        encode_attributes(
            FileAttributes(
                path,
                kind,
                mode,
                os.geteuid(),
                os.getegid(),
                0,
                1,
                1,
                1,
                rdev=rdev,
                link_target=target,
            )
        ),
    )


def _symlink(index: int, path: bytes, target: bytes) -> Record:
    return Record(
        index,
        Stream.ATTRIBUTES,
        encode_attributes(
            FileAttributes(
                path,
                FileType.SYMLINK,
                stat.S_IFLNK | 0o777,
                os.geteuid(),
                os.getegid(),
                0,
                1,
                1,
                1,
                link_target=target,
            )
        ),
    )


def _dir(index: int, path: bytes) -> Record:
    return Record(index, Stream.ATTRIBUTES, attributes(path, kind=FileType.DIRECTORY, mode=0o755))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_a_symlink_in_the_stream_is_not_followed_by_the_next_file(
    tmp_path: Path, outside: Path
) -> None:
    where = tmp_path / "where"
    records = [
        _symlink(1, b"/a", os.fsencode(outside)),
        *file_records(2, b"/a/f", b"evil"),
        *file_records(3, b"/b/fine", b"ok"),
    ]
    writer = restore(records, where)
    assert list(outside.iterdir()) == []
    assert (where / "b" / "fine").read_bytes() == b"ok"
    assert os.readlink(where / "a") == str(outside)
    assert any("/a/f: refused" in f and "symlink" in f for f in writer.stats.failed), (
        writer.stats.failed
    )


@pytest.mark.parametrize("to_root", [False, True], ids=["where", "where=/"])
def test_a_directory_swapped_for_a_symlink_mid_restore_is_refused(
    tmp_path: Path, outside: Path, to_root: bool
) -> None:
    """A local user replaces a directory of the restored tree by a symlink between two files."""
    tree = tmp_path / "tree"
    base = os.fsencode(tree) if to_root else b"/home/alice"
    where = Path("/") if to_root else tmp_path / "where"
    restored = tree if to_root else where / "home" / "alice"
    writer = RestoreWriter(where)
    for record in [
        _dir(1, base),
        _dir(2, base + b"/docs"),
        *file_records(3, base + b"/docs/one", b"1"),
    ]:
        writer.feed(record)
    (restored / "docs").rename(restored / "docs.moved")
    (restored / "docs").symlink_to(outside)  # home/alice/docs -> out
    for record in [
        *file_records(4, base + b"/docs/evil", b"owned"),
        *file_records(5, base + b"/fine", b"ok"),
    ]:
        writer.feed(record)
    writer.finish()
    assert list(outside.iterdir()) == []
    assert (restored / "fine").read_bytes() == b"ok"
    # The directory was held by descriptor: its files follow it, wherever it was moved.
    assert (restored / "docs.moved" / "one").read_bytes() == b"1"
    assert (restored / "docs.moved" / "evil").read_bytes() == b"owned"
    # Its attributes, set at the end, are not set through the symlink that took its name.
    assert outside.stat().st_mtime_ns != 1_600_000_000_123_456_789
    assert writer.stats.errors == 1 and "symlink" in writer.stats.failed[0], writer.stats.failed


def test_a_planted_symlink_in_the_tree_is_refused_at_where_root(
    tmp_path: Path, outside: Path
) -> None:
    """Restoring to `/` gets no special case: a symlink where a directory was is refused."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "docs").symlink_to(outside)
    base = os.fsencode(tree)
    writer = restore(
        [*file_records(1, base + b"/docs/evil", b"x"), *file_records(2, base + b"/ok", b"y")],
        Path("/"),
    )
    assert list(outside.iterdir()) == []
    assert (tree / "ok").read_bytes() == b"y"
    assert writer.stats.errors == 1


def test_a_where_that_is_a_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "where").symlink_to(outside)
    writer = restore(file_records(1, b"/f", b"x"), tmp_path / "where")
    assert writer.rejected is not None and "symlink" in writer.rejected
    assert list(outside.iterdir()) == []


def test_a_where_below_a_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "link").symlink_to(outside)
    writer = restore(file_records(1, b"/f", b"x"), tmp_path / "link" / "where")
    assert writer.rejected is not None and "symlink" in writer.rejected
    assert list(outside.iterdir()) == []


def test_a_where_writable_by_others_is_refused(tmp_path: Path) -> None:
    where = tmp_path / "where"
    where.mkdir()
    where.chmod(0o777)
    writer = restore(file_records(1, b"/f", b"x"), where)
    assert writer.rejected is not None and "writable by others" in writer.rejected
    assert list(where.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to give a directory to another uid")
def test_a_where_someone_else_made_in_a_sticky_shared_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = shared / "restores"
    planted.mkdir(mode=0o755)
    os.chown(planted, 54321, 54321)
    writer = restore(file_records(1, b"/f", b"x"), planted)
    assert writer.rejected is not None and "uid 54321" in writer.rejected


def test_a_relative_where_is_refused(tmp_path: Path) -> None:
    writer = restore([], Path("relative/where"))
    assert writer.rejected is not None and "absolute" in writer.rejected


def test_the_default_where_is_under_the_working_directory_and_private(tmp_path: Path) -> None:
    where = default_where(tmp_path / "work")
    assert where == tmp_path / "work" / "restores"
    writer = restore(file_records(1, b"/etc/f", b"x"), where)
    assert writer.stats.errors == 0
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "work").stat().st_mode) == 0o700
    assert (where / "etc" / "f").read_bytes() == b"x"


def test_hardlinks_to_unrestored_indexes_fail_alone(tmp_path: Path) -> None:
    link = Record(2, Stream.ATTRIBUTES, attributes(b"/h", kind=FileType.HARDLINK, link_index=77))
    writer = restore(
        [*file_records(1, b"/a", b"a"), link, *file_records(3, b"/b", b"b")], tmp_path / "w"
    )
    assert (tmp_path / "w" / "a").read_bytes() == b"a" and (
        tmp_path / "w" / "b"
    ).read_bytes() == b"b"
    assert not (tmp_path / "w" / "h").exists()
    assert writer.stats.errors == 1 and "file index 77" in writer.stats.failed[0]


@pytest.mark.parametrize(
    "name", [b"/../../escape", b"/a/\0/b", b"/" + b"n" * 4096, b"/d/" + b"x" * 300]
)
def test_hostile_names_cost_only_their_file(tmp_path: Path, name: bytes) -> None:
    before = open_fds()
    where = tmp_path / "w"
    writer = restore([*file_records(1, name, b"bad"), *file_records(2, b"/ok", b"ok")], where)
    assert (where / "ok").read_bytes() == b"ok"
    assert writer.stats.errors == 1, writer.stats.failed
    assert not (tmp_path / "escape").exists()
    assert leftovers(tmp_path) == [] and open_fds() == before


def test_a_deep_path_restores_with_a_bounded_number_of_descriptors(tmp_path: Path) -> None:
    before = open_fds()
    deep = b"/" + b"a/" * 300 + b"deep"
    writer = RestoreWriter(tmp_path / "w")
    for record in file_records(1, deep, b"x"):
        writer.feed(record)
    assert (
        open_fds() < before + 40
    )  # the directories held open are capped (restore_paths.DIR_CACHE)
    writer.finish()
    assert writer.stats.errors == 0, writer.stats.failed
    assert open_fds() == before


def test_privileged_content_is_stripped_away_from_where_root(tmp_path: Path) -> None:
    xattrs = Record(
        1,
        Stream.XATTRS,
        codec.pack(
            [[b"trusted.x", b"1"], [b"security.capability", b"\x01"], [b"user.note", b"kept"]]
        ),
    )
    records = file_records(1, b"/suid", b"#!", mode=0o4755)
    records.insert(1, xattrs)
    records.append(
        _node(b"/dev-null", FileType.CHAR_DEVICE, stat.S_IFCHR | 0o666, rdev=os.makedev(1, 3))
    )
    records += file_records(3, b"/sgid", b"x", mode=0o2750)
    writer = restore(records, tmp_path / "w")
    assert stat.S_IMODE((tmp_path / "w" / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "w" / "sgid").stat().st_mode) == 0o750
    assert not (tmp_path / "w" / "dev-null").exists()
    notes = "\n".join(writer.stats.warnings)
    assert "setuid/setgid bits not restored" in notes and "device node not restored" in notes
    assert "privileged xattrs not restored: trusted.x, security.capability" in notes
    assert writer.stats.errors == 0
    assert "trusted.x" not in os.listxattr(tmp_path / "w" / "suid")


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root")
def test_privileged_content_is_restored_when_asked(tmp_path: Path) -> None:
    records = [
        *file_records(1, b"/suid", b"#!", mode=0o4755),
        _node(b"/dev-null", FileType.CHAR_DEVICE, stat.S_IFCHR | 0o666, rdev=os.makedev(1, 3)),
    ]
    writer = restore(records, tmp_path / "w", privileged_content=True)
    assert writer.stats.errors == 0, writer.stats.failed
    assert stat.S_IMODE((tmp_path / "w" / "suid").stat().st_mode) == 0o4755
    assert stat.S_ISCHR((tmp_path / "w" / "dev-null").lstat().st_mode)


def test_another_client_is_stripped_even_at_where_root(tmp_path: Path) -> None:
    base = os.fsencode(tmp_path / "tree")
    writer = restore(
        file_records(1, base + b"/suid", b"#!", mode=0o4755), Path("/"), same_client=False
    )
    assert stat.S_IMODE((tmp_path / "tree" / "suid").stat().st_mode) == 0o755
    assert writer.policy.strip


def test_the_same_client_at_where_root_restores_verbatim(tmp_path: Path) -> None:
    base = os.fsencode(tmp_path / "tree")
    writer = restore(file_records(1, base + b"/suid", b"#!", mode=0o4755), Path("/"))
    assert stat.S_IMODE((tmp_path / "tree" / "suid").stat().st_mode) == 0o4755
    assert not writer.policy.strip


def test_attributes_of_a_fifo_go_through_its_descriptor(tmp_path: Path) -> None:
    writer = restore([_node(b"/fifo", FileType.FIFO, stat.S_IFIFO | 0o640)], tmp_path / "w")
    assert writer.stats.errors == 0, writer.stats.failed
    st = (tmp_path / "w" / "fifo").lstat()
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime_ns == 1
