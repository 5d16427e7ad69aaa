"""Names with `../`, `/`, `;`, `$()`, backticks and newlines: refused wherever a name is accepted (#13)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import msgpack
import pytest

from common.config import ConfigError
from common.config.loader import read_source, resource_name
from common.config.schema import collect
from director.config import JobResource
from protocol.errors import DecodeError
from protocol.jobs import SdLabel, VolumeAssignment
from protocol.messages import decode_message
from protocol.names import MAX_NAME_LENGTH, check_name, name_problem
from storaged.control import _label

HOSTILE = [
    "../x",
    "/abs",
    "a/b",
    "..",
    ".",
    "x;rm -rf /",
    "$(id)",
    "`id`",
    "a\nb",
    "a\0b",
    "a'b",
    'a"b',
    "a|b",
    "a&b",
    "a>b",
    "*",
    "é",
    " lead",
    "trail ",
    "x" * (MAX_NAME_LENGTH + 1),
    "",
]
LEGAL = ["Full-0001", "vol:1.2_3", "x" * MAX_NAME_LENGTH, "a..b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    assert name_problem(name) is not None
    assert name_problem(name, volume=True) is not None
    with pytest.raises(ValueError, match="illegal volume name"):
        check_name(name, "volume name", volume=True)


@pytest.mark.parametrize("name", LEGAL)
def test_legal_names_pass(name: str) -> None:
    assert name_problem(name) is None and name_problem(name, volume=True) is None


def test_resource_names_may_hold_inner_spaces_volume_names_may_not() -> None:
    assert name_problem("Windows All Drives") is None
    assert name_problem("Windows All Drives", volume=True) is not None


@pytest.mark.parametrize("name", ["../../etc/x", "/etc/passwd", "a\nb"])
def test_a_message_with_an_illegal_volume_name_does_not_decode(name: str) -> None:
    body = {
        "t": "sd_label",
        "volume_name": name,
        "pool_name": "p",
        "pool_type": "Backup",
        "media_type": "File",
        "device": "d",
    }
    with pytest.raises(DecodeError, match="volume_name"):
        decode_message(msgpack.packb(body))
    with pytest.raises(ValueError, match="illegal volume name"):
        VolumeAssignment(
            volume_name=name, media_id=1, pool_name="p", pool_type="Backup", media_type="File"
        )


def test_the_sd_label_handler_refuses_a_path_outside_its_archive_directory(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "link").symlink_to(tmp_path)
    device = SimpleNamespace(name="d", media_type="File", archive=archive)
    sd = SimpleNamespace(registry=SimpleNamespace(devices={"d": device}))
    for name in ("../escape", "link/x", "/abs"):
        msg = SdLabel.model_construct(
            volume_name=name, pool_name="p", pool_type="Backup", media_type="File", device="d"
        )  # as a peer could send it without our decoder
        reply = _label(sd, msg)  # type: ignore[arg-type]
        assert getattr(reply, "code", None) == 3915, reply
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]


@pytest.mark.parametrize("name", ["x;id", "../up", "a$(id)"])
def test_a_resource_name_that_is_not_legal_fails_the_configuration(
    tmp_path: Path, name: str
) -> None:
    conf = tmp_path / "bareos-dir.conf"
    conf.write_text(f'Job {{\n  Name = "{name}"\n}}\n')
    source = read_source(conf, {"job": "Job"})
    raw = source.by_type["Job"][0]
    with pytest.raises(ConfigError, match="Name"):
        resource_name(raw, collect(JobResource, raw, source.warnings))
