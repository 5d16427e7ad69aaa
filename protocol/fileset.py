"""The FileSet as the Director sends it to the File Daemon (paths as bytes)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

SIGNATURES = ("MD5", "SHA1", "SHA256", "SHA512", "XXH128")
LZ4_HC_LEVEL: Final = 9  # lz4.frame's COMPRESSIONLEVEL_MINHC: LZ4HC streams decompress as plain LZ4
COMPRESSION_NAMES: Final = "GZIP, GZIP1..GZIP9, LZ4, LZ4HC or ZSTD"


def parse_compression(value: str) -> tuple[str, int | None]:
    """A FileSet's `Compression =` value as (codec, level); the one place that knows the names.
    The config model, the Director and the File Daemon all use it."""
    lower = value.strip().lower()
    if lower == "gzip":
        return "gzip6", None
    if lower.startswith("gzip") and len(lower) == 5 and lower[4] in "123456789":
        return lower, None
    if lower in ("lz4", "zstd"):
        return lower, None
    if lower == "lz4hc":
        return "lz4", LZ4_HC_LEVEL
    if lower == "lzo":
        raise ValueError(
            "Compression = LZO is not available in Strongroom; use LZ4 (the same speed class); the choices are "
            f"{COMPRESSION_NAMES}"
        )
    raise ValueError(f"unknown Compression {value!r} (use {COMPRESSION_NAMES})")


class OptionsSpec(BaseModel):
    """One `Options { … }` block; the first block whose patterns match a file decides for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    signature: str | None = None
    compression: str | None = None  # the codec: gzip1..gzip9, lz4, zstd
    compression_level: int | None = None  # a codec level other than its default (LZ4HC)
    one_fs: bool = True
    sparse: bool = False
    hard_links: bool = True
    xattr_support: bool = True
    acl_support: bool = True
    no_atime: bool = False
    mtime_only: bool = False
    recurse: bool = True
    exclude: bool = False
    ignore_case: bool = False
    wild: tuple[str, ...] = ()
    wild_dir: tuple[str, ...] = ()
    wild_file: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    regex_dir: tuple[str, ...] = ()
    regex_file: tuple[str, ...] = ()

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.upper()
        if upper not in SIGNATURES:
            raise ValueError(f"unknown Signature {value!r} (use {', '.join(SIGNATURES)})")
        return upper

    @model_validator(mode="before")
    @classmethod
    def _compression(cls, data: Any) -> Any:
        """`compression` is the codec the File Daemon uses and names in each file's attributes;
        a configured name (GZIP, GZIP1..9, LZ4, LZ4HC, ZSTD) becomes a codec and a level."""
        if (
            isinstance(data, dict)
            and data.get("compression") is not None
            and "compression_level" not in data
        ):
            codec, level = parse_compression(str(data["compression"]))
            data = {**data, "compression": codec, "compression_level": level}
        return data

    @property
    def has_patterns(self) -> bool:
        return bool(
            self.wild
            or self.wild_dir
            or self.wild_file
            or self.regex
            or self.regex_dir
            or self.regex_file
        )


class IncludeSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    files: tuple[bytes, ...]
    options: tuple[OptionsSpec, ...] = ()
    exclude_dir_containing: tuple[str, ...] = ()


class FileSetSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    include: tuple[IncludeSpec, ...] = ()
    exclude: tuple[bytes, ...] = ()
