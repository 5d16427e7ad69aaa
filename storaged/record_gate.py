"""What a File Daemon (or a Storage Daemon replicating a copy) may put on a volume: the records
of files, in file-index order, and nothing the Storage Daemon writes itself (#13)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from protocol.records import Record, Stream
from storaged.jobs import SdJobError

# The records of one file that follow its attributes, with the same file index.
FILE_CONTENT: Final = frozenset(
    {
        Stream.DATA,
        Stream.COMPRESSED_DATA,
        Stream.DIGEST,
        Stream.XATTRS,
        Stream.ACL_ACCESS,
        Stream.ACL_DEFAULT,
    }
)
# A volume record header holds the file index as a signed 32-bit integer.
MAX_FILE_INDEX: Final = 2**31 - 1


class RecordRefused(SdJobError):
    """A sender put a record into an append session that no File Daemon produces; the job ends E."""

    def __init__(self, job: str, sender: str, number: int, record: Record, reason: str) -> None:
        super().__init__(
            f"Job {job}: the {sender} sent record {number} of the session "
            f"(file index {record.file_index}, stream {stream_name(record.stream)}), which "
            f"the Storage Daemon refuses: {reason}; the session ends here and the "
            f"{number - 1} records before it are kept"
        )
        self.number = number
        self.record = record
        self.reason = reason


def stream_name(stream: int) -> str:
    try:
        return f"{stream} {Stream(stream).name}"
    except ValueError:
        return f"{stream} (unknown)"


class RecordGate:
    """Admits an append session's records while they have the shape a File Daemon's backup has.

    A file is its ATTRIBUTES record followed by its content records (FILE_CONTENT), all with its
    file index; indexes never go back; accurate mode's DELETED records carry file index 0.
    Refused: negative indexes (the volume's own labels), JOB_START (restore streams only), any
    other stream, index 0 for anything but DELETED, an index that goes back, content for a file
    whose attributes were not sent, a second ATTRIBUTES for one file, an index beyond 32 bits.
    """

    def __init__(self, job: str, sender: str = "File Daemon") -> None:
        self.job = job
        self.sender = sender
        self.last = 0  # the file index of the newest ATTRIBUTES admitted
        self.admitted = 0  # records admitted so far

    def admit(self, batch: Sequence[Record]) -> tuple[Sequence[Record], RecordRefused | None]:
        """The records of `batch` up to the first refused one, and why that one is refused."""
        last = self.last
        for n, record in enumerate(batch):
            index, stream = record.file_index, record.stream
            if index == last:
                if stream in FILE_CONTENT:
                    continue
            elif index > last and stream == Stream.ATTRIBUTES and index <= MAX_FILE_INDEX:
                last = index
                continue
            reason = refusal(index, stream, last)
            if reason is None:
                continue
            self.last = last
            self.admitted += n
            refused = RecordRefused(self.job, self.sender, self.admitted + 1, record, reason)
            return batch[:n], refused
        self.last = last
        self.admitted += len(batch)
        return batch, None


def refusal(index: int, stream: int, last: int) -> str | None:
    """Why a record off the fast path of `RecordGate.admit` is refused, or None when it is not.
    `last` is the file index of the newest attributes admitted."""
    if stream == Stream.DELETED:
        return None if index == 0 else "DELETED records (accurate mode) carry file index 0"
    if stream == Stream.JOB_START:
        return "JOB_START records belong to restore streams, which the Storage Daemon sends"
    if stream != Stream.ATTRIBUTES and stream not in FILE_CONTENT:
        return "no File Daemon produces this stream"
    if index < 0:
        return "negative file indexes are the volume's own labels (volume, session start/end)"
    if index == 0:
        return "file index 0 is not a file (only DELETED records carry it)"
    if index > MAX_FILE_INDEX:
        return f"file indexes end at {MAX_FILE_INDEX}"
    if index < last:
        return f"file indexes go back (the previous file was {last})"
    if stream == Stream.ATTRIBUTES:
        return f"file {index} already had its attributes"
    return f"file {index} sent {Stream(stream).name} before its attributes"
