"""The Director's configuration model: defaults, JobDefs inheritance, references, warnings vs errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, render_resource
from director.config import load_director_config

BASE = """\
Director {
  Name = dir1
  Password = "dir-secret"
  Maximum Concurrent Jobs = 5
}
Catalog { Name = cat; dbname = strongroom }
Messages { Name = Standard; console = all }
Client { Name = fd1; Address = 127.0.0.1; Password = "fd-secret" }
Storage { Name = File; Address = 127.0.0.1; Password = "sd-secret"; Device = FileStorage; Media Type = File }
Pool { Name = Full; Pool Type = Backup; Maximum Volume Bytes = 50G; Volume Retention = 365 days; Label Format = "Full-" }
FileSet {
  Name = fs
  Include {
    Options { Signature = SHA256; Compression = ZSTD }
    File = /etc
  }
  Exclude { File = /etc/shadow }
}
JobDefs {
  Name = base
  Type = Backup
  Level = Incremental
  Client = fd1
  FileSet = fs
  Pool = Full
  Storage = File
  Messages = Standard
  Priority = 10
}
JobDefs { Name = child; JobDefs = base; Priority = 5 }
"""


def _load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "strongroom-dir.conf"
    path.write_text(BASE + extra)
    return load_director_config(path)


def _error(tmp_path: Path, extra: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, extra)
    return info.value


def _line_of(extra: str, needle: str) -> int:
    text = BASE + extra
    return text[: text.index(needle, len(BASE))].count("\n") + 1


def test_values_are_typed(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "Job { Name = j; JobDefs = base }\n")
    config = loaded.config  # type: ignore[attr-defined]
    assert config.director.maximum_concurrent_jobs == 5
    assert config.pools["Full"].maximum_volume_bytes == 50 * 2**30
    assert config.pools["Full"].volume_retention == 365 * 86400
    (include,) = config.filesets["fs"].include
    assert include.file == ("/etc",)
    assert include.options[0].signature == "SHA256"
    assert config.filesets["fs"].exclude[0].file == ("/etc/shadow",)
    assert config.director.password.get_secret_value() == "dir-secret"
    assert loaded.warnings == ()  # type: ignore[attr-defined]


def test_jobdefs_inheritance_is_transitive_and_the_job_wins(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "Job { Name = j; JobDefs = child; Level = Full }\n")
    job = loaded.config.jobs["j"]  # type: ignore[attr-defined]
    assert job.type == "Backup"  # from base, two levels up
    assert job.priority == 5  # from child
    assert job.level == "Full"  # the job's own value
    assert job.client == "fd1"


def test_jobdefs_cycle(tmp_path: Path) -> None:
    extra = "JobDefs { Name = a; JobDefs = b }\nJobDefs { Name = b; JobDefs = a }\nJob { Name = j; JobDefs = a }\n"
    assert "JobDefs cycle" in str(_error(tmp_path, extra))


@pytest.mark.parametrize(
    ("extra", "needle", "directive"),
    [
        ("Job { Name = j; JobDefs = base; Client = nosuch }\n", "nosuch", "Client"),
        ("Job { Name = j; JobDefs = nosuch }\n", "nosuch", "JobDefs"),
        ("Job { Name = j; JobDefs = base; FileSet = nofs }\n", "nofs", "FileSet"),
        ("Job { Name = j; JobDefs = base; Pool = nopool }\n", "nopool", "Pool"),
        ("Job { Name = j; JobDefs = base; Schedule = never }\n", "never", "Schedule"),
    ],
)
def test_dangling_references_fail_at_load(
    tmp_path: Path, extra: str, needle: str, directive: str
) -> None:
    err = _error(tmp_path, extra)
    assert needle in str(err)
    assert err.directive == directive
    assert err.line == _line_of(extra, "Job {")


def test_unknown_directive_is_an_error_with_its_line(tmp_path: Path) -> None:
    extra = "Job {\n  Name = j\n  JobDefs = base\n  Frobnicate = yes\n}\n"
    err = _error(tmp_path, extra)
    assert err.line == _line_of(extra, "Frobnicate")
    assert str(err).endswith("Frobnicate: unknown directive in Job resource")


def test_unimplemented_bareos_directive_is_a_warning(tmp_path: Path) -> None:
    extra = "Job {\n  Name = j\n  JobDefs = base\n  Spool Data = yes\n}\n"
    loaded = _load(tmp_path, extra)
    (warning,) = loaded.warnings  # type: ignore[attr-defined]
    assert warning.line == _line_of(extra, "Spool Data")
    assert warning.directive == "Spool Data"
    assert "not implemented" in warning.message


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("Pool { Name = p2; Maximum Volume Bytes = lots }\n", "not a size"),
        ("Pool { Name = p2; Volume Retention = forever }\n", "not a duration"),
        ("Pool { Name = p2; Recycle = perhaps }\n", "not a boolean"),
        ("Pool { Name = p2; Maximum Volume Jobs = many }\n", "Maximum Volume Jobs"),
        ("Pool { Name = p2; Name = p3 }\n", "given twice"),
        ("Client { Name = fd2; Password = x }\n", "required directive 'Address' missing"),
    ],
)
def test_bad_values_name_the_directive_and_line(tmp_path: Path, extra: str, needle: str) -> None:
    err = _error(tmp_path, extra)
    assert needle in str(err)
    assert err.line == _line_of(extra, extra.split("\n", maxsplit=1)[0][:6])


def test_job_without_type(tmp_path: Path) -> None:
    assert "has no Type" in str(_error(tmp_path, "Job { Name = j; Client = fd1 }\n"))


def test_two_directors_are_an_error(tmp_path: Path) -> None:
    assert "Director" in str(_error(tmp_path, "Director { Name = dir2; Password = x }\n"))


def test_rendered_resource_redacts_passwords(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "")
    text = render_resource(loaded.config.clients["fd1"], "Client")  # type: ignore[attr-defined]
    assert "fd-secret" not in text
    assert "Address = 127.0.0.1" in text or 'Address = "127.0.0.1"' in text


def test_the_directory_tree_form(tmp_path: Path) -> None:
    tree = tmp_path / "strongroom-dir.d"
    chunks = {
        "director": "Director { Name = dir1; Password = p }\n",
        "client": 'Client { Name = fd1; Address = localhost; Password = "x" }\n',
        "messages": "Messages { Name = Standard }\n",
    }
    for kind, text in chunks.items():
        (tree / kind).mkdir(parents=True)
        (tree / kind / f"{kind}.conf").write_text(text)
    loaded = load_director_config(tree)
    assert set(loaded.config.clients) == {"fd1"}
    assert len(loaded.files) == 3
