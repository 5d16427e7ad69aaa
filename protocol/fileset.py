"""The FileSet as the Director sends it to the File Daemon (paths as bytes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

SIGNATURES = ("MD5", "SHA1", "SHA256", "SHA512", "XXH128")


class OptionsSpec(BaseModel):
    """One `Options { … }` block; the first block whose patterns match a file decides for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    signature: str | None = None
    compression: str | None = None
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

    @field_validator("compression")
    @classmethod
    def _compression(cls, value: str | None) -> str | None:
        if value is None:
            return None
        lower = value.lower()
        if lower == "gzip":
            return "gzip6"
        if lower in ("lz4", "zstd") or (lower.startswith("gzip") and lower[4:] in "123456789" and len(lower) == 5):
            return lower
        raise ValueError(f"unknown Compression {value!r} (use GZIP, GZIP1..GZIP9, LZ4 or ZSTD)")

    @property
    def has_patterns(self) -> bool:
        return bool(self.wild or self.wild_dir or self.wild_file or self.regex or self.regex_dir or self.regex_file)


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
