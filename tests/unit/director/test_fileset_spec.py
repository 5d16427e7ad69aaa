"""The FileSet from configuration to the wire: every Options directive arrives, and what `-t`
accepts is what the File Daemon runs (Recurse = no was sent as true; LZO/LZ4HC failed at start)."""

from __future__ import annotations

from pathlib import Path

import lz4.frame
import pytest

from common.config import ConfigError
from director.config import load_director_config
from director.fileset_spec import fileset_spec
from filed.codecs import compressor, decompressor
from protocol.fileset import LZ4_HC_LEVEL, FileSetSpec, OptionsSpec, parse_compression

BASE = """\
Director { Name = dir1; Password = "p" }
Catalog { Name = cat; dbname = strongroom }
Messages { Name = Standard; console = all }
FileSet {
  Name = fs
  Include {
    Options { %s }
    File = /etc
  }
}
"""


def _spec(tmp_path: Path, options: str) -> FileSetSpec:
    path = tmp_path / "strongroom-dir.conf"
    path.write_text(BASE % options)
    config = load_director_config(path).config
    return fileset_spec(config.filesets["fs"])


def test_recurse_no_reaches_the_file_daemon(tmp_path: Path) -> None:
    (include,) = _spec(tmp_path, "Recurse = no").include
    assert include.options[0].recurse is False
    (include,) = _spec(tmp_path, "Signature = MD5").include
    assert include.options[0].recurse is True


def test_every_wire_option_is_copied_from_the_configuration(tmp_path: Path) -> None:
    options = (
        "Signature = SHA1; Compression = GZIP3; One FS = no; Sparse = yes; Hard Links = no; "
        "XattrSupport = no; AclSupport = no; No Atime = yes; Mtime Only = yes; Recurse = no; "
        'Ignore Case = yes; Wild = "*.o"'
    )
    (include,) = _spec(tmp_path, options).include
    spec = include.options[0]
    assert spec == OptionsSpec(
        signature="SHA1",
        compression="gzip3",
        one_fs=False,
        sparse=True,
        hard_links=False,
        xattr_support=False,
        acl_support=False,
        no_atime=True,
        mtime_only=True,
        recurse=False,
        ignore_case=True,
        wild=("*.o",),
    )


@pytest.mark.parametrize(
    ("name", "codec", "level"),
    [
        ("GZIP", "gzip6", None),
        ("gzip9", "gzip9", None),
        ("LZ4", "lz4", None),
        ("LZ4HC", "lz4", LZ4_HC_LEVEL),
        ("zstd", "zstd", None),
    ],
)
def test_every_accepted_compression_runs(
    tmp_path: Path, name: str, codec: str, level: int | None
) -> None:
    (include,) = _spec(tmp_path, f"Compression = {name}").include
    spec = include.options[0]
    assert (spec.compression, spec.compression_level) == (codec, level)
    data = b"strongroom " * 10_000
    packed = compressor(codec, level)(data)
    assert decompressor(codec)(packed) == data  # the restore side needs only the codec name
    if name == "LZ4HC":
        assert lz4.frame.decompress(packed) == data


def test_lzo_is_refused_at_load_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _spec(tmp_path, "Compression = LZO")
    text = str(info.value)
    assert (
        "LZO is not available" in text
        and "strongroom-dir.conf" in text
        and "strongroom-dir.conf:7:" in text
    )


def test_one_list_of_names() -> None:
    with pytest.raises(ValueError, match="unknown Compression 'brotli'"):
        parse_compression("brotli")
    assert parse_compression(" GZIP ") == ("gzip6", None)
