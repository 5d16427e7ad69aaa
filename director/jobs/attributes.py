"""Turn attribute/digest/deleted records from the Storage Daemon into batched catalog File rows."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from director.catalog import FileRow
from protocol.attributes import decode_attributes
from protocol.codec import unpack
from protocol.records import Stream

FLUSH_ROWS: Final = 2000


def split_path(path: bytes, is_dir: bool) -> tuple[bytes, bytes]:
    """Bareos File rows: a directory is (path + '/', ''); a file is (dirname + '/', basename)."""
    if is_dir:
        return (path if path.endswith(b"/") else path + b"/"), b""
    head, tail = os.path.split(path)
    return (head if head.endswith(b"/") else head + b"/"), tail


class AttributeSink:
    """Collects File rows for one job and inserts them in batches off the event loop."""

    def __init__(self, insert: Callable[[int, Sequence[FileRow]], Awaitable[None]], job_id: int) -> None:
        self._insert = insert  # CatalogService.insert_files: on the catalog thread
        self.job_id = job_id
        self._rows: dict[int, FileRow] = {}
        self._deleted: list[FileRow] = []
        self.files = 0
        self._last_index = 0

    def add(self, file_index: int, stream: int, payload: bytes) -> None:
        if stream == Stream.ATTRIBUTES:
            attrs = decode_attributes(payload)
            path, name = split_path(attrs.path, attrs.type == 2)
            self._rows[file_index] = FileRow(job_id=self.job_id, path=path, name=name, file_index=file_index,
                                             lstat=payload, digest=None)
            self.files += 1
            self._last_index = file_index
        elif stream == Stream.DIGEST:
            row = self._rows.get(file_index)
            if row is not None:
                algorithm, digest = unpack(payload)
                self._rows[file_index] = dataclasses.replace(row, digest=f"{algorithm}:{bytes(digest).hex()}")
        elif stream == Stream.DELETED:
            attrs = decode_attributes(payload)
            path, name = split_path(attrs.path, False)
            self._deleted.append(FileRow(job_id=self.job_id, path=path, name=name, file_index=0,
                                         lstat=payload, digest=None))

    async def maybe_flush(self) -> None:
        if len(self._rows) + len(self._deleted) >= FLUSH_ROWS:
            await self.flush(final=False)

    async def flush(self, final: bool = True) -> None:
        """Insert everything except (unless final) the newest file, which may still get its digest."""
        keep: dict[int, FileRow] = {}
        if not final and self._last_index in self._rows:
            keep[self._last_index] = self._rows.pop(self._last_index)
        rows = list(self._rows.values()) + self._deleted
        self._rows, self._deleted = keep, []
        if rows:
            await self._insert(self.job_id, rows)
