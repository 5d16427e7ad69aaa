"""What the restore writer checks before it trusts a record: attributes, xattr lists, digests, chunks."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Final

import lz4.frame
import zstandard

from filed.codecs import Hasher, new_hasher
from protocol import codec
from protocol.attributes import FileAttributes, FileType
from protocol.errors import DecodeError

MAX_ID: Final = 2**32 - 2  # uid_t / gid_t; 2**32 - 1 is (uid_t)-1, "leave unchanged" to chown
# The most one compressed chunk may expand to when its codec does not declare its size: the largest
# block a volume holds (storaged.volume.MAX_BLOCK_DATA), so no chunk a backup wrote is larger. A
# crafted chunk that would expand further fails its file instead of filling memory.
MAX_CHUNK_SIZE: Final = 64 * 1024 * 1024

# Decompresses one chunk to at most `limit` bytes, or raises (ChunkTooLarge, or a codec's error).
Decompress = Callable[[Any, int], bytes]


class FileFailed(Exception):
    """One file cannot be restored; the text says why. The writer reports it and goes on."""


# What a bad record of one file may raise while it is restored: the file is reported and skipped.
FILE_ERRORS: Final = (FileFailed, OSError, DecodeError, ValueError, OverflowError)

# What the decompressors raise for a chunk that is not what its codec wrote: zlib.error, lz4's
# RuntimeError, zstandard's ZstdError, and ValueError for a chunk of the wrong type.
_CHUNK_ERRORS: Final = (zlib.error, RuntimeError, zstandard.ZstdError, ValueError)


def reason(exc: BaseException) -> str:
    """The part of an error worth telling the operator (an OSError's strerror, not its repr)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class ChunkTooLarge(FileFailed):
    """A compressed chunk that would expand past its limit."""


def _inflate_zlib(chunk: Any, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(chunk, limit + 1)
    if len(data) > limit:
        raise ChunkTooLarge(f"expands to more than {limit} bytes")
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return data


def _declared(size: int, limit: int) -> int:
    """The limit for a chunk whose codec declares `size` bytes (a negative size: none declared)."""
    if size > limit:
        raise ChunkTooLarge(f"declares {size} bytes, more than a chunk may hold ({limit})")
    return limit if size < 0 else size


def _inflate_lz4(chunk: Any, limit: int) -> bytes:
    size = lz4.frame.get_frame_info(chunk)["content_size"]  # 0: not declared
    limit = _declared(size or -1, limit)
    inflater = lz4.frame.LZ4FrameDecompressor()
    data = bytes(inflater.decompress(chunk, max_length=limit + 1))
    if len(data) > limit:
        raise ChunkTooLarge(f"expands to more than {limit} bytes")
    if not inflater.eof:
        raise RuntimeError("incomplete or truncated frame")
    if size and len(data) != size:
        raise RuntimeError(f"expands to {len(data)} bytes, not the {size} its frame declares")
    return data


def _inflate_zstd(chunk: Any, limit: int) -> bytes:
    inflater = zstandard.ZstdDecompressor()
    size = zstandard.frame_content_size(chunk)  # -1: not declared
    limit = _declared(size, limit)
    if size >= 0:
        return bytes(
            inflater.decompress(chunk)
        )  # zstd writes into exactly the declared size, or fails
    try:
        return bytes(inflater.decompress(chunk, max_output_size=limit))
    except zstandard.ZstdError:
        with inflater.stream_reader(
            chunk
        ) as reader:  # too large, or corrupt? (the failure path only)
            if len(reader.read(limit + 1)) > limit:
                raise ChunkTooLarge(f"expands to more than {limit} bytes") from None
        raise


def decompressor(name: str) -> Decompress:
    """The bounded decompressor for a compression name as attributes carry it (filed.codecs)."""
    if name.startswith("gzip"):
        return _inflate_zlib
    if name == "lz4":
        return _inflate_lz4
    if name == "zstd":
        return _inflate_zstd
    raise ValueError(f"unknown compression {name!r}")


def open_codecs(attrs: FileAttributes) -> tuple[Hasher | None, Decompress | None]:
    """The digest and decompressor the attributes name; FileFailed for anything no restore can honour."""
    for what, value in (("uid", attrs.uid), ("gid", attrs.gid)):
        if not 0 <= value <= MAX_ID:
            raise FileFailed(f"owner {what} {value} is out of range")
    if attrs.type != FileType.REGULAR:
        return None, None
    hasher = decompress = None
    if attrs.compression:
        try:
            decompress = decompressor(attrs.compression)
        except ValueError as exc:
            raise FileFailed(
                f"unknown compression {attrs.compression!r} in its attributes"
            ) from exc
    if attrs.digest_algorithm:
        try:
            hasher = new_hasher(attrs.digest_algorithm)
        except ValueError as exc:
            raise FileFailed(
                f"unknown digest algorithm {attrs.digest_algorithm!r} in its attributes"
            ) from exc
    return hasher, decompress


def decompress_chunk(
    decompress: Decompress | None, chunk: memoryview, offset: int, limit: int = MAX_CHUNK_SIZE
) -> bytes:
    """One chunk's data, at most `limit` bytes (less when its codec declares its size); FileFailed
    for a chunk that is corrupt or would expand further."""
    if decompress is None:
        raise FileFailed("compressed data for a file whose attributes name no compression")
    try:
        return decompress(chunk, limit)
    except ChunkTooLarge as exc:
        raise FileFailed(f"compressed chunk at offset {offset} {exc}") from exc
    except _CHUNK_ERRORS as exc:
        raise FileFailed(f"corrupt compressed chunk at offset {offset}: {exc}") from exc


def parse_xattrs(payload: bytes | memoryview) -> list[tuple[bytes, bytes]]:
    """An XATTRS payload: a msgpack list of [name, value] pairs of bytes, names non-empty, no NUL."""
    try:
        items = codec.unpack(payload)
    except DecodeError as exc:
        raise FileFailed(f"malformed xattr list: {exc}") from exc
    if not isinstance(items, tuple):
        raise FileFailed(f"malformed xattr list: a {type(items).__name__}, not a list")
    out: list[tuple[bytes, bytes]] = []
    for item in items:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not all(isinstance(x, bytes) for x in item)
            or not item[0]
            or b"\0" in item[0]
        ):
            raise FileFailed(f"malformed xattr list: entry {item!r:.60} is not [name, value]")
        out.append((item[0], item[1]))
    return out


def parse_digest(payload: bytes | memoryview) -> tuple[str, bytes]:
    """A DIGEST payload: msgpack [algorithm, digest]."""
    value = codec.unpack(payload)
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not isinstance(value[1], bytes)
    ):
        raise FileFailed("malformed digest record")
    return value[0], value[1]
