"""A restore survives a bad record (#11): crafted record streams through the restore writer.

Each bad record kind costs exactly its own file: the file is reported (an error naming it and the
problem) and not restored, the files before and after it are restored byte-identical, and nothing
is left behind: no temporary file, no hidden carrier, no open descriptor.
"""

from __future__ import annotations

import gc
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import lz4.frame
import pytest
import zstandard

from filed.codecs import compressor, new_hasher
from filed.restore import HIDDEN_PREFIX, TEMP_PREFIX, RestoreStats, RestoreWriter
from filed.restore_checks import MAX_CHUNK_SIZE
from protocol import codec
from protocol.attributes import FileAttributes, FileType, encode_attributes
from protocol.records import Record, Stream, pack_data, unpack_data

CHUNK = 4096
MTIME = 1_600_000_000_123_456_789


def attributes(
    path: bytes,
    size: int = 0,
    *,
    kind: FileType = FileType.REGULAR,
    mode: int = 0o644,
    uid: int | None = None,
    gid: int | None = None,
    compression: str = "",
    digest: str = "",
    link_index: int = 0,
) -> bytes:
    type_bits = {
        FileType.REGULAR: stat.S_IFREG,
        FileType.DIRECTORY: stat.S_IFDIR,
        FileType.HARDLINK: stat.S_IFREG,
    }[kind]
    return encode_attributes(
        FileAttributes(
            path,
            kind,
            type_bits | mode,
            os.geteuid() if uid is None else uid,
            os.getegid() if gid is None else gid,
            size,
            MTIME,
            MTIME,
            MTIME,
            link_index=link_index,
            compression=compression,
            digest_algorithm=digest,
        )
    )


def file_records(
    index: int,
    path: bytes,
    content: bytes,
    *,
    compression: str = "gzip6",
    digest: str = "SHA256",
    **kw: object,
) -> list[Record]:
    """A regular file as the backup writes it: attributes, data chunks, digest."""
    out = [
        Record(
            index,
            Stream.ATTRIBUTES,
            attributes(path, len(content), compression=compression, digest=digest, **kw),
        )
    ]  # type: ignore[arg-type]
    pack = compressor(compression) if compression else None
    for offset in range(0, len(content), CHUNK):
        chunk = content[offset : offset + CHUNK]
        if pack is None:
            out.append(Record(index, Stream.DATA, pack_data(offset, chunk)))
        else:
            out.append(Record(index, Stream.COMPRESSED_DATA, pack_data(offset, pack(chunk))))
    if digest:
        hasher = new_hasher(digest)
        hasher.update(content)
        out.append(Record(index, Stream.DIGEST, codec.pack((digest, hasher.digest()))))
    return out


BEFORE = bytes(range(256)) * 40  # 10 KiB: three chunks
AFTER = b"after\n" * 3000


def stream(bad: list[Record]) -> list[Record]:
    """A good file, the bad one (file index 2, /src/bad), a good file after it."""
    return [*file_records(1, b"/src/before", BEFORE), *bad, *file_records(3, b"/src/after", AFTER)]


def open_fds() -> int:
    """Descriptors open now; garbage left by earlier tests is collected first, so that closing it
    during a test does not count as a difference."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.startswith(".strongroom")]


def restore(records: Iterable[Record], where: Path, **kw: object) -> RestoreWriter:
    writer = RestoreWriter(where, **kw)  # type: ignore[arg-type]
    for record in records:
        writer.feed(record)
    writer.finish()
    return writer


def _corrupt_last_chunk(records: list[Record]) -> list[Record]:
    last = max(i for i, r in enumerate(records) if r.stream == Stream.COMPRESSED_DATA)
    offset = int.from_bytes(bytes(records[last].payload[:8]), "big")
    records[last] = Record(
        records[last].file_index, Stream.COMPRESSED_DATA, pack_data(offset, b"not a chunk")
    )
    return records


def _then(records: list[Record], keep: int, *extra: Record) -> list[Record]:
    return [*records[:keep], *extra]


def _with_record(stream_: Stream, payload: bytes) -> Callable[[], list[Record]]:
    def make() -> list[Record]:
        records = file_records(2, b"/src/bad", b"x" * 10000)
        records.insert(1, Record(2, stream_, payload))
        return records

    return make


BAD_RECORDS: dict[str, tuple[Callable[[], list[Record]], str]] = {
    "corrupt gzip chunk": (
        lambda: _corrupt_last_chunk(file_records(2, b"/src/bad", b"y" * 10000)),
        "corrupt compressed chunk at offset 8192",
    ),
    "corrupt lz4 chunk": (
        lambda: _corrupt_last_chunk(file_records(2, b"/src/bad", b"y" * 10000, compression="lz4")),
        "corrupt compressed chunk",
    ),
    "corrupt zstd chunk": (
        lambda: _corrupt_last_chunk(file_records(2, b"/src/bad", b"y" * 10000, compression="zstd")),
        "corrupt compressed chunk",
    ),
    "unknown codec": (
        lambda: [
            Record(2, Stream.ATTRIBUTES, attributes(b"/src/bad", 10, compression="lzma9")),
            Record(2, Stream.COMPRESSED_DATA, pack_data(0, b"whatever")),
        ],
        "unknown compression 'lzma9'",
    ),
    "unknown digest": (
        lambda: [
            Record(2, Stream.ATTRIBUTES, attributes(b"/src/bad", 3, digest="CRC99")),
            Record(2, Stream.DATA, pack_data(0, b"abc")),
            Record(2, Stream.DIGEST, codec.pack(("CRC99", b"\0\0"))),
        ],
        "unknown digest algorithm 'CRC99'",
    ),
    "uid out of range": (
        lambda: file_records(2, b"/src/bad", b"u" * 100, uid=2**40),
        "owner uid 1099511627776",
    ),
    "gid out of range": (lambda: file_records(2, b"/src/bad", b"g" * 100, gid=-5), "owner gid -5"),
    "uid -1": (lambda: file_records(2, b"/src/bad", b"g" * 100, uid=2**32 - 1), "out of range"),
    "xattrs not a list": (_with_record(Stream.XATTRS, codec.pack(5)), "malformed xattr list"),
    "xattrs not msgpack": (_with_record(Stream.XATTRS, b"\xc1"), "malformed xattr list"),
    "xattr without value": (
        _with_record(Stream.XATTRS, codec.pack([[b"user.a"]])),
        "malformed xattr list",
    ),
    "xattr value not bytes": (
        _with_record(Stream.XATTRS, codec.pack([[b"user.a", 5]])),
        "malformed xattr list",
    ),
    "xattr name with NUL": (
        _with_record(Stream.XATTRS, codec.pack([[b"user.a\0b", b"v"]])),
        "malformed xattr list",
    ),
    "digest mismatch": (
        lambda: _then(
            file_records(2, b"/src/bad", b"d" * 100),
            -1,
            Record(2, Stream.DIGEST, codec.pack(("SHA256", b"\0" * 32))),
        ),
        "SHA256 digest mismatch",
    ),
    "malformed digest": (
        lambda: _then(
            file_records(2, b"/src/bad", b"d" * 100), -1, Record(2, Stream.DIGEST, codec.pack(5))
        ),
        "malformed digest record",
    ),
    "compressed data, no codec": (
        lambda: _then(
            file_records(2, b"/src/bad", b"n" * 10, compression=""),
            1,
            Record(2, Stream.COMPRESSED_DATA, pack_data(0, b"zz")),
        ),
        "name no compression",
    ),
    "data shorter than its offset": (
        lambda: _then(
            file_records(2, b"/src/bad", b"s" * 10, compression=""),
            1,
            Record(2, Stream.DATA, b"\0\0"),
        ),
        "shorter than its offset",
    ),
}


@pytest.fixture
def no_leaks(tmp_path: Path) -> Iterator[None]:
    """No descriptor opened by the test outlives it, and nothing hidden stays under tmp_path."""
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() == before
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("kind", list(BAD_RECORDS))
def test_a_bad_record_costs_only_its_file(tmp_path: Path, kind: str) -> None:
    make, problem = BAD_RECORDS[kind]
    where = tmp_path / "where"
    writer = restore(stream(make()), where)
    src = where / "src"
    assert (src / "before").read_bytes() == BEFORE
    assert (src / "after").read_bytes() == AFTER
    assert not (src / "bad").exists()
    assert writer.stats.errors == 1, writer.stats.failed
    assert writer.stats.files == 2
    (failure,) = writer.stats.failed
    assert (
        failure.startswith("/src/bad: ") and problem in failure and failure.endswith("not restored")
    ), failure


@pytest.mark.usefixtures("no_leaks")
def test_malformed_attributes_are_one_error_and_their_records_are_dropped(tmp_path: Path) -> None:
    bad = [
        Record(2, Stream.ATTRIBUTES, b"\x93\x01\x02\x03"),
        Record(2, Stream.DATA, pack_data(0, b"x")),
        Record(2, Stream.DIGEST, codec.pack(("SHA256", b""))),
    ]
    writer = restore(stream(bad), tmp_path / "where")
    assert writer.stats.failed == ["file index 2: malformed file attributes record; not restored"]
    assert (tmp_path / "where" / "src" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
def test_records_without_attributes_are_reported_once_per_file(tmp_path: Path) -> None:
    orphans = [
        Record(7, Stream.DATA, pack_data(0, b"x")),
        Record(7, Stream.DATA, pack_data(1, b"y")),
    ]
    records = [
        *file_records(1, b"/src/before", BEFORE),
        *orphans,
        *file_records(3, b"/src/after", AFTER),
    ]
    writer = restore(records, tmp_path / "where")
    assert writer.stats.failed == [
        "record for file index 7 arrived without its attributes; dropped"
    ]
    assert (tmp_path / "where" / "src" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize(
    "kind", ["corrupt gzip chunk", "digest mismatch", "malformed digest", "xattrs not a list"]
)
def test_replace_always_keeps_the_old_file_when_the_new_one_fails(
    tmp_path: Path, kind: str
) -> None:
    where = tmp_path / "where"
    old = where / "src" / "bad"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"the good old content\n")
    old.chmod(0o640)
    os.utime(old, ns=(1, 2))
    writer = restore(stream(BAD_RECORDS[kind][0]()), where, replace="always")
    assert writer.stats.errors == 1
    assert old.read_bytes() == b"the good old content\n"
    st = old.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime_ns == 2
    assert (where / "src" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
def test_replace_always_replaces_whole_files_of_every_kind(tmp_path: Path) -> None:
    where = tmp_path / "where"
    src = where / "src"
    src.mkdir(parents=True)
    (src / "before").write_bytes(b"old, and longer than nothing" * 1000)
    (src / "after").symlink_to("/nonexistent")  # a symlink in the way is replaced, not followed
    writer = restore(
        stream(file_records(2, b"/src/bad", b"fine after all")), where, replace="always"
    )
    assert writer.stats.errors == 0, writer.stats.failed
    assert (src / "before").read_bytes() == BEFORE
    assert not (src / "after").is_symlink() and (src / "after").read_bytes() == AFTER
    assert (src / "bad").read_bytes() == b"fine after all"
    assert (src / "before").stat().st_mtime_ns == MTIME


@pytest.mark.usefixtures("no_leaks")
def test_policy_kept_files_count_as_done(tmp_path: Path) -> None:
    where = tmp_path / "where"
    (where / "src").mkdir(parents=True)
    (where / "src" / "before").write_bytes(b"keep me")
    writer = restore(stream(file_records(2, b"/src/bad", b"b")), where, replace="never")
    assert (where / "src" / "before").read_bytes() == b"keep me"
    assert (writer.stats.files, writer.stats.skipped, writer.stats.errors) == (3, 1, 0)


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"regex_where": "!a(!b!"}, "bad regexwhere expression '!a(!b!': missing )"),
        ({"regex_where": "!src!$2!"}, "invalid group reference 2"),
        ({"regex_where": "!nosecond"}, "use !from!to!"),
        ({"replace": "sometimes"}, "unknown replace policy 'sometimes'"),
    ],
)
def test_a_job_level_error_rejects_the_restore_before_writing(
    tmp_path: Path, options: dict[str, str], problem: str
) -> None:
    where = tmp_path / "where"
    writer = restore(stream(file_records(2, b"/src/bad", b"b")), where, **options)
    assert writer.rejected is not None and problem in writer.rejected
    assert writer.stats.failed == [writer.rejected]
    assert (writer.stats.files, writer.stats.errors) == (0, 1)
    assert not where.exists()


def test_an_impossible_where_rejects_the_restore(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    writer = restore(stream([]), tmp_path / "file" / "where")
    assert writer.rejected is not None and "cannot create" in writer.rejected
    assert writer.stats.errors == 1


@pytest.mark.usefixtures("no_leaks")
def test_a_valid_regex_where_still_maps(tmp_path: Path) -> None:
    writer = restore(
        stream(file_records(2, b"/src/bad", b"b")), tmp_path / "where", regex_where="!^/src/!/dst/!"
    )
    assert writer.stats.errors == 0
    assert (tmp_path / "where" / "dst" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
def test_directory_attributes_are_set_even_when_the_last_file_fails(tmp_path: Path) -> None:
    where = tmp_path / "where"
    records = [
        Record(1, Stream.ATTRIBUTES, attributes(b"/src", kind=FileType.DIRECTORY, mode=0o750)),
        *file_records(2, b"/src/good", b"good"),
        *_corrupt_last_chunk(file_records(3, b"/src/last", b"l" * 10000)),
    ]
    writer = restore(records, where)
    assert writer.stats.errors == 1
    st = (where / "src").stat()
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime_ns == MTIME
    assert sorted(p.name for p in (where / "src").iterdir()) == ["good"]


@pytest.mark.usefixtures("no_leaks")
def test_a_failed_directory_keeps_its_contents_but_not_its_attributes(tmp_path: Path) -> None:
    where = tmp_path / "where"
    records = [
        Record(1, Stream.ATTRIBUTES, attributes(b"/src", kind=FileType.DIRECTORY, mode=0o755)),
        Record(1, Stream.XATTRS, codec.pack(7)),
        *file_records(2, b"/src/good", b"good"),
    ]
    writer = restore(records, where)
    assert writer.stats.failed == ["/src: malformed xattr list: a int, not a list; not restored"]
    assert (where / "src" / "good").read_bytes() == b"good"
    assert writer.stats.files == 1


@pytest.mark.usefixtures("no_leaks")
def test_hidden_carriers_are_removed_whatever_fails(tmp_path: Path) -> None:
    where = tmp_path / "where"
    records = [
        *file_records(1, b"/src/carrier", b"shared data"),
        Record(
            2, Stream.ATTRIBUTES, attributes(b"/src/link", kind=FileType.HARDLINK, link_index=1)
        ),
        *file_records(3, b"/src/unclaimed", b"nobody links me"),
        *_corrupt_last_chunk(file_records(4, b"/src/last", b"l" * 10000)),
    ]
    writer = restore(records, where, hidden_indexes=((0, 1), (0, 3)))
    assert (where / "src" / "link").read_bytes() == b"shared data"
    assert sorted(p.name for p in (where / "src").iterdir()) == ["link"]
    assert not [p for p in where.iterdir() if p.name.startswith(HIDDEN_PREFIX.decode())]
    assert writer.stats.errors == 1 and writer.stats.files == 1


@pytest.mark.usefixtures("no_leaks")
def test_a_hardlink_to_a_failed_file_is_reported(tmp_path: Path) -> None:
    where = tmp_path / "where"
    records = [
        *_corrupt_last_chunk(file_records(1, b"/src/first", b"f" * 10000)),
        Record(
            2, Stream.ATTRIBUTES, attributes(b"/src/second", kind=FileType.HARDLINK, link_index=1)
        ),
    ]
    writer = restore(records, where)
    assert writer.stats.errors == 2
    assert "file index 1) was not restored" in writer.stats.failed[1]
    assert list((where / "src").iterdir()) == []


@pytest.mark.usefixtures("no_leaks")
def test_abort_discards_the_file_being_written(tmp_path: Path) -> None:
    where = tmp_path / "where"
    old = where / "src" / "bad"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    fds = open_fds()
    writer = RestoreWriter(where)
    for record in [
        *file_records(1, b"/src/before", BEFORE),
        *file_records(2, b"/src/bad", b"n" * 10000)[:2],
    ]:
        writer.feed(record)
    assert (
        open_fds() > fds and len(leftovers(where)) == 1
    )  # the file's, and directories held by descriptor
    stats = writer.abort("the Storage Daemon failed")
    assert old.read_bytes() == b"old"
    assert (where / "src" / "before").read_bytes() == BEFORE
    assert stats.failed == [
        "/src/bad: the Storage Daemon failed before its data was complete; not restored"
    ]
    writer.feed(file_records(3, b"/src/after", AFTER)[0])  # a closed writer takes nothing more
    writer.close()
    assert not (where / "src" / "after").exists()


@pytest.mark.usefixtures("no_leaks")
def test_a_dropped_writer_closes_its_descriptor_and_removes_its_files(tmp_path: Path) -> None:
    where = tmp_path / "where"
    writer = RestoreWriter(where, hidden_indexes=((0, 1),))
    for record in [
        *file_records(1, b"/src/carrier", b"c"),
        *file_records(2, b"/src/bad", b"n" * 10000)[:2],
    ]:
        writer.feed(record)
    # the finished carrier, and the file being written (under its own name: nothing was there)
    assert len(leftovers(where)) == 1 and (where / "src" / "bad").exists()
    del writer
    assert not (where / "src" / "bad").exists()


@pytest.mark.usefixtures("no_leaks")
def test_with_block_aborts_on_an_exception(tmp_path: Path) -> None:
    where = tmp_path / "where"
    writers: list[RestoreWriter] = []

    def fail_half_way() -> None:
        with RestoreWriter(where) as writer:
            writers.append(writer)
            for record in file_records(1, b"/src/bad", b"n" * 10000)[:2]:
                writer.feed(record)
            raise KeyError("the caller failed")

    with pytest.raises(KeyError):
        fail_half_way()
    assert writers[0].stats.errors == 1
    assert not (where / "src" / "bad").exists()


@pytest.mark.usefixtures("no_leaks")
def test_an_unforeseen_failure_costs_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(payload: bytes | memoryview) -> tuple[int, memoryview]:
        if b"boom" in bytes(payload):
            raise KeyError("boom")
        return unpack_data(payload)

    monkeypatch.setattr("filed.restore.unpack_data", explode)
    writer = restore(
        stream(file_records(2, b"/src/bad", b"boom", compression="")), tmp_path / "where"
    )
    assert writer.stats.failed == ["/src/bad: internal error: KeyError('boom'); not restored"]
    assert (tmp_path / "where" / "src" / "after").read_bytes() == AFTER


def test_temporary_names_are_hidden_and_distinct() -> None:
    assert TEMP_PREFIX.startswith(b".strongroom-") and not TEMP_PREFIX.startswith(HIDDEN_PREFIX)


@pytest.mark.usefixtures("no_leaks")
def test_directories_merge_or_replace_a_file(tmp_path: Path) -> None:
    where = tmp_path / "where"
    (where / "src" / "keep").mkdir(parents=True)
    (where / "src" / "keep" / "old").write_text("old")
    (where / "src" / "was-a-file").write_text("in the way")
    records = [
        Record(1, Stream.ATTRIBUTES, attributes(b"/src/keep", kind=FileType.DIRECTORY, mode=0o751)),
        Record(
            2,
            Stream.ATTRIBUTES,
            attributes(b"/src/was-a-file", kind=FileType.DIRECTORY, mode=0o705),
        ),
    ]
    writer = restore(records, where, replace="always")
    assert writer.stats.errors == 0, writer.stats.failed
    assert (where / "src" / "keep" / "old").read_text() == "old"
    assert stat.S_IMODE((where / "src" / "keep").stat().st_mode) == 0o751
    assert stat.S_IMODE((where / "src" / "was-a-file").stat().st_mode) == 0o705


def test_stats_count_every_note_and_keep_the_first_texts() -> None:
    stats = RestoreStats(keep=3)
    for i in range(10):
        stats.error(f"e{i}")
        stats.warn(f"w{i}")
        stats.warn(f"v{i}")
    assert (stats.errors, stats.failed) == (10, ["e0", "e1", "e2"])
    assert (stats.warning_count, stats.warnings) == (20, ["w0", "v0", "w1"])


# -- decompression is bounded (#11) --------------------------------------------------------------


def _chunk_file(index: int, path: bytes, compression: str, size: int, chunk: bytes) -> list[Record]:
    return [
        Record(index, Stream.ATTRIBUTES, attributes(path, size, compression=compression)),
        Record(index, Stream.COMPRESSED_DATA, pack_data(0, chunk)),
    ]


MIB = 1024 * 1024
BOMBS: dict[str, tuple[str, bytes, str]] = {
    "gzip": ("gzip6", zlib.compress(b"\0" * (2 * MIB)), f"expands to more than {MIB} bytes"),
    "lz4, size declared": (
        "lz4",
        lz4.frame.compress(b"\0" * (2 * MIB)),
        f"declares {2 * MIB} bytes, more than",
    ),
    "lz4, no size": (
        "lz4",
        lz4.frame.compress(b"\0" * (2 * MIB), store_size=False),
        f"expands to more than {MIB} bytes",
    ),
    "zstd, size declared": (
        "zstd",
        zstandard.ZstdCompressor().compress(b"\0" * (2 * MIB)),
        f"declares {2 * MIB} bytes, more than",
    ),
    "zstd, no size": (
        "zstd",
        zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * (2 * MIB)),
        f"expands to more than {MIB} bytes",
    ),
}


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("kind", list(BOMBS))
def test_a_chunk_expanding_past_the_limit_costs_its_file(tmp_path: Path, kind: str) -> None:
    compression, chunk, problem = BOMBS[kind]
    where = tmp_path / "where"
    writer = RestoreWriter(where, max_chunk_size=MIB)
    for record in [
        *file_records(1, b"/src/before", BEFORE),
        *_chunk_file(2, b"/src/bomb", compression, 2 * MIB, chunk),
        *file_records(3, b"/src/after", AFTER),
    ]:
        writer.feed(record)
    stats = writer.finish()
    (failure,) = stats.failed
    assert failure.startswith(
        f"/src/bomb: compressed chunk at offset 0 {problem}"
    ) and failure.endswith("; not restored")
    assert not (where / "src" / "bomb").exists()
    assert (where / "src" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("compression", ["gzip6", "lz4", "zstd"])
def test_a_chunk_at_the_limit_is_restored(tmp_path: Path, compression: str) -> None:
    content = bytes(range(256)) * (MIB // 256)
    records = file_records(1, b"/src/f", content, compression=compression)
    writer = RestoreWriter(
        tmp_path / "where", max_chunk_size=4096
    )  # file_records writes 4 KiB chunks
    for record in records:
        writer.feed(record)
    assert writer.finish().failed == []
    assert (tmp_path / "where" / "src" / "f").read_bytes() == content


@pytest.mark.usefixtures("no_leaks")
def test_a_declared_size_past_the_default_limit_fails_before_anything_is_allocated(
    tmp_path: Path,
) -> None:
    chunk = zstandard.ZstdCompressor().compress(b"\0" * (MAX_CHUNK_SIZE + 1))
    writer = RestoreWriter(tmp_path / "where")
    for record in _chunk_file(1, b"/src/bomb", "zstd", MAX_CHUNK_SIZE + 1, chunk):
        writer.feed(record)
    assert writer.finish().failed == [
        f"/src/bomb: compressed chunk at offset 0 declares {MAX_CHUNK_SIZE + 1} "
        f"bytes, more than a chunk may hold ({MAX_CHUNK_SIZE}); not restored"
    ]


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("compression", ["gzip6", "lz4", "zstd"])
def test_a_truncated_chunk_is_corrupt(tmp_path: Path, compression: str) -> None:
    records = file_records(1, b"/src/f", b"t" * 4096, compression=compression, digest="")
    attrs, data = records
    truncated = Record(1, Stream.COMPRESSED_DATA, bytes(data.payload)[:-4])
    writer = RestoreWriter(tmp_path / "where")
    for record in (attrs, truncated):
        writer.feed(record)
    (failure,) = writer.finish().failed
    assert failure.startswith("/src/f: corrupt compressed chunk at offset 0"), failure
