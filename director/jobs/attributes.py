"""Turn attribute/digest/deleted records from the Storage Daemon into batched catalog File rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from director.catalog import FileRow
from protocol.attributes import FileType, path_and_type
from protocol.codec import unpack
from protocol.records import Stream

FLUSH_ROWS: Final = 2000


def split_path(path: bytes, is_dir: bool) -> tuple[bytes, bytes]:
    """Bareos File rows: a directory is (path + '/', ''); a file is (dirname + '/', basename)."""
    if is_dir:
        return (path if path.endswith(b"/") else path + b"/"), b""
    cut = path.rfind(b"/") + 1
    head, tail = path[:cut], path[cut:]
    if not head:
        return b"/", tail  # os.path.split gives b"" for a name without a directory
    if head.endswith(b"//") and head.strip(b"/"):
        head = (
            head.rstrip(b"/") + b"/"
        )  # as os.path.split: repeated slashes trimmed, unless all slashes
    return head, tail


class AttributeSink:
    """Collects File rows for one job and inserts them in batches off the event loop.

    Rows wait as lists (a digest fills one in place) and become FileRow objects once, at flush."""

    def __init__(
        self, insert: Callable[[int, Sequence[FileRow]], Awaitable[None]], job_id: int
    ) -> None:
        self._insert = insert  # CatalogService.insert_files: on the catalog thread
        self.job_id = job_id
        self._rows: dict[int, list[Any]] = {}  # file index -> [path, name, lstat, digest]
        self._deleted: list[FileRow] = []
        self.files = 0
        self._last_index = 0

    def add(self, file_index: int, stream: int, payload: bytes) -> None:
        if stream == Stream.ATTRIBUTES:
            full, kind = path_and_type(payload)
            path, name = split_path(full, kind == FileType.DIRECTORY)
            self._rows[file_index] = [path, name, payload, None]
            self.files += 1
            self._last_index = file_index
        elif stream == Stream.DIGEST:
            row = self._rows.get(file_index)
            if row is not None:
                algorithm, digest = unpack(payload)
                row[3] = f"{algorithm}:{bytes(digest).hex()}"
        elif stream == Stream.DELETED:
            path, name = split_path(path_and_type(payload)[0], False)
            self._deleted.append(
                FileRow(
                    job_id=self.job_id,
                    path=path,
                    name=name,
                    file_index=0,
                    lstat=payload,
                    digest=None,
                )
            )

    async def maybe_flush(self) -> None:
        if len(self._rows) + len(self._deleted) >= FLUSH_ROWS:
            await self.flush(final=False)

    async def flush(self, final: bool = True) -> None:
        """Insert everything except (unless final) the newest file, which may still get its digest."""
        keep: dict[int, list[Any]] = {}
        if not final and self._last_index in self._rows:
            keep[self._last_index] = self._rows.pop(self._last_index)
        job_id = self.job_id
        rows = [
            FileRow(job_id, path, name, index, lstat, digest)
            for index, (path, name, lstat, digest) in self._rows.items()
        ]
        rows += self._deleted
        self._rows, self._deleted = keep, []
        if rows:
            await self._insert(self.job_id, rows)
