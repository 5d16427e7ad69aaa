"""The Bareos resource syntax: every rule, and every error with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, parse_bool, parse_duration, parse_size
from common.config.parser import RawResource, normalize, parse_file, parse_source


def _parse(tmp_path: Path, text: str, name: str = "x.conf") -> list[RawResource]:
    path = tmp_path / name
    path.write_text(text)
    return parse_file(path)


def _values(resource: RawResource) -> dict[str, str]:
    return {d.key: d.text() for d in resource.directives}


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, text)
    return info.value


def test_resource_with_directives(tmp_path: Path) -> None:
    (res,) = _parse(tmp_path, "Client {\n  Name = fd1\n  Address = 10.0.0.1\n}\n")
    assert res.key == "client"
    assert _values(res) == {"name": "fd1", "address": "10.0.0.1"}
    assert res.loc.line == 1
    assert res.directives[1].loc.line == 3


def test_names_are_case_and_space_insensitive(tmp_path: Path) -> None:
    (res,) = _parse(
        tmp_path, "FILE daemon {\n Maximum Concurrent Jobs = 3\n maximumconcurrentjobs = 4\n}\n"
    )
    assert res.key == "filedaemon"
    assert [d.key for d in res.directives] == ["maximumconcurrentjobs"] * 2
    assert normalize("Maximum  Concurrent_Jobs") == normalize("maximumconcurrentjobs")


def test_comments_anywhere(tmp_path: Path) -> None:
    (res,) = _parse(
        tmp_path, "# header\nJob { # trailing\n  Name = a # after value\n# whole line\n}\n"
    )
    assert _values(res) == {"name": "a"}


def test_quoted_strings_keep_spaces_hashes_and_escapes(tmp_path: Path) -> None:
    text = 'Job {\n  Name = "nightly # not a comment"\n  Where = "a \\"quoted\\" \\\\ word"\n}\n'
    (res,) = _parse(tmp_path, text)
    assert _values(res) == {"name": "nightly # not a comment", "where": 'a "quoted" \\ word'}


def test_semicolons_separate_directives_and_blocks_nest(tmp_path: Path) -> None:
    text = "FileSet { Name = fs; Include { File = /etc; File = /home; Options { Signature = MD5 } } }\n"
    (res,) = _parse(tmp_path, text)
    assert _values(res) == {"name": "fs"}
    (include,) = res.blocks
    assert include.key == "include"
    assert [d.text() for d in include.directives] == ["/etc", "/home"]
    assert _values(include.blocks[0]) == {"signature": "MD5"}


def test_comma_lists(tmp_path: Path) -> None:
    (res,) = _parse(tmp_path, 'Storage {\n  Device = a, b , "c d"\n}\n')
    assert res.directives[0].item_texts() == ["a", "b", "c d"]


def test_unquoted_multiword_value(tmp_path: Path) -> None:
    (res,) = _parse(tmp_path, "Pool {\n  Volume Retention = 365 days\n}\n")
    assert _values(res) == {"volumeretention": "365 days"}


def test_include_file_and_glob(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.conf").write_text("Client { Name = a }\n")
    (tmp_path / "inc" / "b.conf").write_text("Client { Name = b }\n")
    (tmp_path / "one.conf").write_text("Name = included\n")
    res = _parse(tmp_path, "Job {\n  @one.conf\n}\n@inc/*.conf\n")
    assert [r.key for r in res] == ["job", "client", "client"]
    assert _values(res[0]) == {"name": "included"}
    assert res[0].directives[0].loc.file == tmp_path / "one.conf"
    assert [_values(r)["name"] for r in res[1:]] == ["a", "b"]


def test_include_command(tmp_path: Path) -> None:
    res = _parse(tmp_path, '@|"echo Client { Name = from-command }"\n')
    assert _values(res[0]) == {"name": "from-command"}


def test_directory_tree_is_read_in_sorted_order(tmp_path: Path) -> None:
    tree = tmp_path / "strongroom-dir.d"
    for kind, name in (("client", "b"), ("client", "a"), ("job", "j")):
        (tree / kind).mkdir(parents=True, exist_ok=True)
        (tree / kind / f"{name}.conf").write_text(f"{kind.title()} {{ Name = {name} }}\n")
    resources, files = parse_source(tree)
    assert [_values(r)["name"] for r in resources] == ["a", "b", "j"]
    assert [f.name for f in files] == ["a.conf", "b.conf", "j.conf"]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("Job {\n  Name = a\n", 1, "missing '}' to close Job"),
        ("Job {\n  Name =\n}\n", 2, "Name: missing value after '='"),
        ("Job {\n  Name a\n}\n", 2, "Name a: expected '=' (or '{' for a block)"),
        ('Job {\n  Name = "open\n}\n', 2, "unterminated quoted string"),
        ("Job {\n  = a\n}\n", 2, "expected a directive name, found '='"),
        ("Job\n", 1, "Job: expected '=' (or '{' for a block) after the name"),
        ("}\n", 1, "expected a resource name, found '}'"),
        ("Job {\n  Name = a {\n}\n}\n", 2, "unexpected '{' in a value"),
        ("Job {\n\n\n  @missing.conf\n}\n", 4, "included file"),
        ("@\n", 1, "'@' must be followed by a file name"),
        ('@|"false"\n', 1, "exited 1"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    err = _error(tmp_path, text)
    assert err.line == line
    assert err.file == tmp_path / "x.conf"
    assert needle in str(err)
    assert str(err).startswith(f"{tmp_path / 'x.conf'}:{line}: ")


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("@b.conf\n")
    (tmp_path / "b.conf").write_text("@a.conf\n")
    with pytest.raises(ConfigError, match="include cycle"):
        parse_file(tmp_path / "a.conf")


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        parse_source(tmp_path / "nope.conf")
    (tmp_path / "empty.d").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.conf files"):
        parse_source(tmp_path / "empty.d")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512", 512),
        ("100k", 102400),
        ("10 MB", 10_000_000),
        ("50G", 50 * 2**30),
        ("1.5 kb", 1500),
        ("2 TiB", 2 * 2**40),
    ],
)
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "ten", "5 parsecs", "-1"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30),
        ("30 seconds", 30),
        ("90 min", 5400),
        ("1h", 3600),
        ("365 days", 365 * 86400),
        ("1 week 2 days", 9 * 86400),
        ("1 month", 30 * 86400),
        ("1 year", 365 * 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3 fortnights", "days 3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|time unit"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True),
        ("Yes", True),
        ("true", True),
        ("on", True),
        ("no", False),
        ("FALSE", False),
        ("off", False),
    ],
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_bad_boolean() -> None:
    with pytest.raises(ValueError, match="yes or no"):
        parse_bool("maybe")
