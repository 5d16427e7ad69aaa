"""A restore thread's own umask (#14): files made with their final mode, the daemon's umask kept.

`exact_modes` gives the calling thread alone a umask of 0 while a block runs; the process's
other threads keep theirs. The restore writer then creates a plain file with its final mode and
skips the chmod; a file with a setuid, setgid or sticky bit, or a thread that cannot have its
own umask, still gets its mode set at the end. Either way the modes come back exact under the
daemons' umask of 027.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from common.runtime import DAEMON_UMASK
from filed import thread_umask
from filed.restore import RestoreWriter
from filed.thread_umask import exact_modes
from protocol import codec
from protocol.records import Record, Stream
from tests.support.trees import (
    ACL_ACCESS,
    ACL_DEFAULT,
    GROUP_OBJ,
    OTHER,
    SAMPLE_ACL,
    UNDEFINED,
    USER_OBJ,
    posix_acl,
)
from tests.unit.filed.test_restore_faults import file_records

T = TypeVar("T")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="unshare(CLONE_FS) is Linux's")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def in_thread(work: Callable[[], T]) -> T:
    """`work` run in a new thread (its umask state starts fresh), its result or exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # handed back to the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert out, "the thread did not finish"
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]  # type: ignore[no-any-return]


@pytest.fixture
def daemon_umask() -> Iterator[None]:
    """The process runs with the daemons' umask, as the File Daemon does."""
    old = os.umask(DAEMON_UMASK)
    try:
        yield
    finally:
        os.umask(old)


@linux_only
def test_the_block_has_umask_0_and_the_other_threads_keep_theirs(daemon_umask: None) -> None:
    inside, release = threading.Event(), threading.Event()

    def work() -> tuple[bool, int, int]:
        with exact_modes() as exact:
            seen = _umask()
            inside.set()
            release.wait(10)
        return exact, seen, _umask()

    result: list[tuple[bool, int, int]] = []
    worker = threading.Thread(target=lambda: result.append(work()))
    worker.start()
    assert inside.wait(10)
    try:
        assert _umask() == DAEMON_UMASK  # this thread, while the worker is in its block
    finally:
        release.set()
        worker.join(10)
    assert result == [(True, 0, DAEMON_UMASK)]


def test_a_thread_without_its_own_umask_changes_nothing(
    daemon_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_umask, "_unshare_fs", lambda: False)

    def work() -> tuple[bool, int]:
        with exact_modes() as exact:
            return exact, _umask()

    assert in_thread(work) == (False, DAEMON_UMASK)


MODES = (0o644, 0o755, 0o666, 0o444, 0o600, 0o4755, 0o2750, 0o1777)


def _restore(where: Path, records: list[Record]) -> tuple[RestoreWriter, list[int]]:
    """Restore `records` in a thread of its own: (the writer, the modes chmodded meanwhile)."""
    chmodded: list[int] = []
    real_chmod = os.chmod

    def chmod(target: Any, mode: int, **kw: Any) -> None:
        chmodded.append(mode)
        real_chmod(target, mode, **kw)

    def work() -> RestoreWriter:
        os.chmod = chmod  # type: ignore[assignment]  # counted, then put back below
        try:
            writer = RestoreWriter(where, privileged_content=True)
            writer.feed_batch(records)
            writer.finish()
        finally:
            os.chmod = real_chmod
        return writer

    return in_thread(work), chmodded


def _restore_modes(where: Path) -> tuple[dict[int, int], list[int]]:
    """Restore one file of each of MODES; (mode restored by mode asked, the modes chmodded)."""
    records: list[Record] = []
    for index, mode in enumerate(MODES, start=1):
        records += file_records(index, b"/src/f%o" % mode, b"data %o" % mode, mode=mode)
    writer, chmodded = _restore(where, records)
    assert writer.stats.errors == 0 and writer.stats.files == len(MODES)
    return {m: (where / "src" / f"f{m:o}").stat().st_mode & 0o7777 for m in MODES}, chmodded


@linux_only
def test_plain_files_get_their_mode_at_creation_under_the_daemon_umask(
    daemon_umask: None, tmp_path: Path
) -> None:
    modes, chmodded = _restore_modes(tmp_path / "where")
    expect = {m: m for m in MODES}
    if os.geteuid() != 0:  # a setgid bit on a file of a group one is not in is dropped
        expect[0o2750] = modes[0o2750]
    assert modes == expect
    special = [m for m in MODES if m & 0o7000]
    assert sorted(chmodded) == sorted(special)


def test_without_a_thread_umask_every_mode_is_still_exact(
    daemon_umask: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_umask, "_unshare_fs", lambda: False)
    modes, chmodded = _restore_modes(tmp_path / "where")
    for mode in MODES:
        if mode != 0o2750 or os.geteuid() == 0:
            assert modes[mode] == mode
    assert sorted(chmodded) == sorted(MODES)


def _restore_one(where: Path, records: list[Record]) -> tuple[int, list[int]]:
    """Restore one file /src/f: (its mode, the modes chmodded)."""
    writer, chmodded = _restore(where, records)
    assert writer.stats.errors == 0 and writer.stats.files == 1, writer.stats
    return (where / "src" / "f").stat().st_mode & 0o7777, chmodded


@linux_only
def test_a_default_acl_on_the_directory_does_not_cost_the_mode(
    daemon_umask: None, tmp_path: Path
) -> None:
    """A default ACL, not the umask, masks the mode a file is made with: there, the mode is set
    at the end as before."""
    src = tmp_path / "where" / "src"
    src.mkdir(parents=True)
    default = posix_acl(
        [(USER_OBJ, 7, UNDEFINED), (GROUP_OBJ, 5, UNDEFINED), (OTHER, 0, UNDEFINED)]
    )
    try:
        os.setxattr(src, ACL_DEFAULT, default)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs on {tmp_path}: {exc.strerror}")
    mode, chmodded = _restore_one(tmp_path / "where", file_records(1, b"/src/f", b"x", mode=0o644))
    assert mode == 0o644 and chmodded == [0o644]


@linux_only
@pytest.mark.skipif(os.geteuid() != 0, reason="chowning a directory to another group is root's")
def test_a_file_that_changes_group_is_made_0600_and_gets_its_mode_at_the_end(
    daemon_umask: None, tmp_path: Path
) -> None:
    """In a setgid directory of another group the file is made in that group; its final mode
    must not apply to that group while its data arrives."""
    where = tmp_path / "where"
    (where / "src").mkdir(parents=True)
    os.chown(where / "src", 0, 4242)
    os.chmod(where / "src", 0o2755)
    made: list[int] = []
    real_open = os.open

    def opening(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT:
            made.append(mode)
        return real_open(path, flags, mode, **kw)

    records = file_records(1, b"/src/f", b"secret", mode=0o640, gid=0)
    os.open = opening  # type: ignore[assignment]  # counted, then put back below
    try:
        mode, chmodded = _restore_one(where, records)
    finally:
        os.open = real_open
    assert made == [0o600] and chmodded == [0o640]
    assert mode == 0o640 and (where / "src" / "f").stat().st_gid == 0


@linux_only
@pytest.mark.parametrize(
    "acl_record",
    [
        Record(1, Stream.ACL_ACCESS, SAMPLE_ACL),
        Record(1, Stream.XATTRS, codec.pack([(ACL_ACCESS.encode(), SAMPLE_ACL)])),  # by name
    ],
    ids=["acl-record", "acl-among-xattrs"],
)
def test_a_file_with_an_access_acl_gets_its_mode_before_its_acl(
    daemon_umask: None, tmp_path: Path, acl_record: Record
) -> None:
    """Until its ACL is set at the end, a file's mode bits would stand in for the ACL's mask:
    the file goes back to 0600 when its ACL arrives, as its own record or among its xattrs.
    SAMPLE_ACL: user::rw- user:1234:r-- group::r-- mask::r-- other::---, mode 0640."""
    records = file_records(1, b"/src/f", b"x", mode=0o640)
    records.insert(1, acl_record)  # before the data, as a backup sends it
    probe = tmp_path / "probe"
    probe.touch()
    try:
        os.setxattr(probe, ACL_ACCESS, SAMPLE_ACL)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs on {tmp_path}: {exc.strerror}")
    mode, chmodded = _restore_one(tmp_path / "where", records)
    assert mode == 0o640 and chmodded == [0o640]
    assert os.getxattr(tmp_path / "where" / "src" / "f", ACL_ACCESS) == SAMPLE_ACL


@linux_only
def test_a_file_no_chown_will_touch_gets_its_mode_at_creation(
    daemon_umask: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon without privileges cannot give a file another owner: the file stays its own,
    as after the end, so it may have its final mode from the start."""
    real_init = RestoreWriter.__init__

    def unprivileged(self: RestoreWriter, *args: Any, **kw: Any) -> None:
        real_init(self, *args, **kw)
        self.policy = dataclasses.replace(self.policy, privileged=False)

    monkeypatch.setattr(RestoreWriter, "__init__", unprivileged)
    records = file_records(1, b"/src/f", b"x", mode=0o640, uid=os.geteuid() + 1)
    mode, chmodded = _restore_one(tmp_path / "where", records)
    assert mode == 0o640 and chmodded == []
    assert (tmp_path / "where" / "src" / "f").stat().st_uid == os.geteuid()


@linux_only
@pytest.mark.parametrize(("error", "exact"), [(errno.ENOTSUP, True), (errno.EIO, False)])
def test_a_directory_whose_acls_cannot_be_read(
    daemon_umask: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: int,
    exact: bool,
) -> None:
    """No xattrs on the file system: no default ACL either. Any other failure to tell: the
    careful answer, the mode set at the end."""

    def listxattr(*args: Any, **kw: Any) -> list[str]:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "listxattr", listxattr)
    mode, chmodded = _restore_one(tmp_path / "where", file_records(1, b"/src/f", b"x"))
    assert mode == 0o644 and chmodded == ([] if exact else [0o644])
