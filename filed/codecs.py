"""Per-chunk compression and whole-file digests, by the names FileSets and attributes use."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import lz4.frame
import xxhash
import zstandard


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


def new_hasher(algorithm: str) -> Hasher:
    if algorithm == "XXH128":
        return xxhash.xxh3_128()
    names = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
    if algorithm not in names:
        raise ValueError(f"unknown digest algorithm {algorithm!r}")
    return hashlib.new(names[algorithm], usedforsecurity=False)


def compressor(name: str, level: int | None = None) -> Callable[[bytes], bytes]:
    """Compress one chunk with the codec `name`; `level` overrides its default (LZ4HC is lz4 at
    an HC level: the same frames, decompressed as plain LZ4)."""
    if name.startswith("gzip"):
        gzip_level = int(name[4:] or 6)
        return lambda data: zlib.compress(data, gzip_level)
    if name == "lz4":
        lz4_level = level or 0
        return lambda data: bytes(lz4.frame.compress(data, compression_level=lz4_level))
    if name == "zstd":
        ctx = zstandard.ZstdCompressor(level=3)
        return lambda data: bytes(ctx.compress(data))
    raise ValueError(f"unknown compression {name!r}")


def decompressor(name: str) -> Callable[[Any], bytes]:
    if name.startswith("gzip"):
        return zlib.decompress
    if name == "lz4":
        return lambda data: bytes(lz4.frame.decompress(bytes(data)))
    if name == "zstd":
        ctx = zstandard.ZstdDecompressor()
        return lambda data: bytes(ctx.decompress(bytes(data)))
    raise ValueError(f"unknown compression {name!r}")
