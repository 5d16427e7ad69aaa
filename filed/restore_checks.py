"""What the restore writer checks before it trusts a record: attributes, xattr lists, digests, chunks."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Final

import zstandard

from filed.codecs import Hasher, decompressor, new_hasher
from protocol import codec
from protocol.attributes import FileAttributes, FileType
from protocol.errors import DecodeError

MAX_ID: Final = 2**32 - 2  # uid_t / gid_t; 2**32 - 1 is (uid_t)-1, "leave unchanged" to chown


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


def open_codecs(attrs: FileAttributes) -> tuple[Hasher | None, Callable[[Any], bytes] | None]:
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
            raise FileFailed(f"unknown compression {attrs.compression!r} in its attributes") from exc
    if attrs.digest_algorithm:
        try:
            hasher = new_hasher(attrs.digest_algorithm)
        except ValueError as exc:
            raise FileFailed(f"unknown digest algorithm {attrs.digest_algorithm!r} in its attributes") from exc
    return hasher, decompress


def decompress_chunk(decompress: Callable[[Any], bytes] | None, chunk: memoryview, offset: int) -> bytes:
    if decompress is None:
        raise FileFailed("compressed data for a file whose attributes name no compression")
    try:
        return decompress(chunk)
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
        if (not isinstance(item, tuple) or len(item) != 2 or not all(isinstance(x, bytes) for x in item)
                or not item[0] or b"\0" in item[0]):
            raise FileFailed(f"malformed xattr list: entry {item!r:.60} is not [name, value]")
        out.append((item[0], item[1]))
    return out


def parse_digest(payload: bytes | memoryview) -> tuple[str, bytes]:
    """A DIGEST payload: msgpack [algorithm, digest]."""
    value = codec.unpack(payload)
    if (not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[0], str)
            or not isinstance(value[1], bytes)):
        raise FileFailed("malformed digest record")
    return value[0], value[1]
