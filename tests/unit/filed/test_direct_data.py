"""Large restored files through O_DIRECT (filed/direct_data.py): exact bytes whatever the size's
alignment, holes, compression or a failure; the page-cache path where O_DIRECT is refused."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from unittest import mock

import pytest

from filed import direct_data
from filed.backup import BackupReader
from filed.direct_data import ALIGN, DIRECT_MIN, STAGE, DirectData
from tests.support.trees import compare_trees
from tests.unit.filed.test_roundtrip import _fileset, _restore

MIB = 1024 * 1024


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "probe").touch()
    try:
        os.close(os.open(root / "probe", os.O_RDONLY | os.O_DIRECT))
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        pytest.skip(f"the file system of {root} refuses O_DIRECT")
    (root / "probe").unlink()
    rng = random.Random(5)
    sizes = {
        "aligned": 2 * STAGE,
        "unaligned": STAGE + 3 * ALIGN + 17,
        "just-large": DIRECT_MIN,
        "small": DIRECT_MIN - 1,
        "odd": 3 * MIB - 1,
    }
    for name, size in sizes.items():
        (root / name).write_bytes(rng.randbytes(size))
    text = b"".join(b"line %d of a compressible file\n" % n for n in range(200_000))
    (root / "text").write_bytes(text)
    with (root / "sparse").open("wb") as f:  # data, a hole, data, a trailing hole
        f.write(rng.randbytes(2 * MIB))
        f.seek(5 * MIB)
        f.write(rng.randbytes(MIB + 5))
        f.truncate(9 * MIB)
    return root


@pytest.mark.parametrize("compression", [None, "LZ4"])
def test_large_files_restore_exactly_through_o_direct(
    tmp_path: Path, src: Path, compression: str | None
) -> None:
    reader = BackupReader(_fileset(src, sparse=True, signature="XXH128", compression=compression))
    records = list(reader.records())
    staged: list[int] = []
    begin = DirectData.begin

    def counting(self: DirectData, fd: int, size: int) -> bool:
        started = begin(self, fd, size)
        if started:
            staged.append(size)
        return started

    with mock.patch.object(DirectData, "begin", counting):
        writer = _restore(records, tmp_path / "restore")
    assert writer.stats.errors == 0, writer.stats.failed
    assert compare_trees(src, tmp_path / "restore" / str(src).lstrip("/")) == []
    # Every file of DIRECT_MIN bytes or more went through O_DIRECT, no smaller one did.
    large = sorted(p.stat().st_size for p in src.iterdir() if p.stat().st_size >= DIRECT_MIN)
    assert sorted(staged) == large


def test_a_file_system_that_refuses_o_direct_gets_the_page_cache(tmp_path: Path, src: Path) -> None:
    reader = BackupReader(_fileset(src, signature="XXH128"))
    records = list(reader.records())

    def refuse(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == direct_data.fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_fcntl(fd, cmd, arg)

    real_fcntl = direct_data.fcntl.fcntl
    with mock.patch.object(direct_data.fcntl, "fcntl", refuse):
        writer = _restore(records, tmp_path / "restore")
    assert writer.stats.errors == 0, writer.stats.failed
    assert compare_trees(src, tmp_path / "restore" / str(src).lstrip("/")) == []


def test_a_device_that_wants_another_alignment_gets_the_page_cache(
    tmp_path: Path, src: Path
) -> None:
    reader = BackupReader(_fileset(src, signature="XXH128"))
    records = list(reader.records())
    real_pwrite = os.pwrite

    def picky(fd: int, data: object, offset: int) -> int:
        if direct_data.fcntl.fcntl(fd, direct_data.fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    with mock.patch.object(direct_data.os, "pwrite", picky):
        writer = _restore(records, tmp_path / "restore")
    assert writer.stats.errors == 0, writer.stats.failed
    assert compare_trees(src, tmp_path / "restore" / str(src).lstrip("/")) == []


def test_a_failed_direct_write_loses_only_that_file(tmp_path: Path, src: Path) -> None:
    reader = BackupReader(_fileset(src, signature="XXH128"))
    records = list(reader.records())
    real_pwrite = os.pwrite

    def full(fd: int, data: object, offset: int) -> int:
        if direct_data.fcntl.fcntl(fd, direct_data.fcntl.F_GETFL) & os.O_DIRECT and offset > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    with mock.patch.object(direct_data.os, "pwrite", full):
        writer = _restore(records, tmp_path / "restore")
    restored = tmp_path / "restore" / str(src).lstrip("/")
    # The files with more than one stage of data failed, named, and left nothing behind.
    lost = sorted(n for n in os.listdir(src) if (src / n).stat().st_size > STAGE)
    failed = sorted(text.split(":")[0].rsplit("/", 1)[-1] for text in writer.stats.failed)
    assert failed == lost and len(lost) == 4, writer.stats.failed  # no Sparse: zeros are data
    assert all("No space left on device" in text for text in writer.stats.failed)
    assert sorted(os.listdir(restored)) == sorted(n for n in os.listdir(src) if n not in lost)
    for name in os.listdir(restored):
        assert (restored / name).read_bytes() == (src / name).read_bytes()


def test_direct_io_off_writes_through_the_page_cache(tmp_path: Path, src: Path) -> None:
    reader = BackupReader(_fileset(src, signature="XXH128"))
    records = list(reader.records())
    with mock.patch.object(DirectData, "_flush", side_effect=AssertionError("staged")):
        writer = _restore(records, tmp_path / "restore", direct_io=False)
    assert writer.stats.errors == 0, writer.stats.failed
    assert compare_trees(src, tmp_path / "restore" / str(src).lstrip("/")) == []
