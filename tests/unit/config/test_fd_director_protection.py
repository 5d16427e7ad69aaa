"""Per-Director `Allowed Script Dir` and `Allowed Job Command` in the File Daemon's Director
resources (#13): a job command (and a client script) runs only when the Client resource's lists
and its Director's lists both admit it (the stricter wins), decided from a real configuration
file."""

from __future__ import annotations

from pathlib import Path

import pytest

from filed.config import FileDaemonConfig, load_client_config
from filed.protection import director_refusal


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """Scripts in /scripts, /scripts/backup-only, and one outside both."""
    scripts = tmp_path / "scripts"
    (scripts / "backup-only").mkdir(parents=True)
    for path in (scripts / "any.sh", scripts / "backup-only" / "dump.sh", tmp_path / "other.sh"):
        path.write_text("#!/bin/sh\n")
    return tmp_path


def _load(site: Path, client: str, directors: dict[str, str]) -> FileDaemonConfig:
    conf = site / "strongroom-fd.conf"
    text = f"Client {{\n  Name = c-fd\n  TLS Enable = no\n{client}}}\n"
    for name, lines in directors.items():
        text += f'Director {{\n  Name = {name}\n  Password = "x"\n  TLS Enable = no\n{lines}}}\n'
    conf.write_text(text)
    loaded = load_client_config(conf)
    assert not [w for w in loaded.warnings if "Allowed" in str(w)], loaded.warnings
    return loaded.config


def test_the_directives_load_on_a_director(site: Path) -> None:
    config = _load(
        site,
        "",
        {
            "main-dir": f'  Allowed Script Dir = "{site}/scripts"\n'
            '  Allowed Job Command = "backup"\n'
            '  Allowed Job Command = "runscript"\n'
        },
    )
    director = config.directors["main-dir"]
    assert director.allowed_script_dir == (site / "scripts",)
    assert director.allowed_job_command == ("backup", "runscript")


def test_a_director_restricts_itself_only(site: Path) -> None:
    config = _load(
        site,
        "",
        {"backup-dir": f'  Allowed Script Dir = "{site}/scripts/backup-only"\n', "main-dir": ""},
    )
    anywhere = f"{site}/other.sh --now"
    assert director_refusal(config, "main-dir", "runscript", anywhere) is None
    assert director_refusal(config, "main-dir", "runscript", "echo hi; id") is None
    assert (
        director_refusal(config, "backup-dir", "runscript", f"{site}/scripts/backup-only/dump.sh")
        is None
    )
    refusal = director_refusal(config, "backup-dir", "runscript", anywhere)
    assert refusal is not None
    assert "Director backup-dir's Allowed Script Dir" in refusal
    assert "other.sh" in refusal
    shell = director_refusal(config, "backup-dir", "runscript", "echo hi; id")
    assert shell is not None and "shell syntax" in shell


def test_the_stricter_of_client_and_director_wins(site: Path) -> None:
    scripts = site / "scripts"
    config = _load(
        site,
        f'  Allowed Script Dir = "{scripts}"\n',
        {"narrow-dir": f'  Allowed Script Dir = "{scripts}/backup-only"\n', "wide-dir": ""},
    )
    # Inside both: runs for either Director.
    inner = f"{scripts}/backup-only/dump.sh"
    assert director_refusal(config, "narrow-dir", "runscript", inner) is None
    assert director_refusal(config, "wide-dir", "runscript", inner) is None
    # Inside the client's directory only: the narrow Director's list refuses it.
    outer = f"{scripts}/any.sh"
    assert director_refusal(config, "wide-dir", "runscript", outer) is None
    assert "Director narrow-dir's" in (
        director_refusal(config, "narrow-dir", "runscript", outer) or ""
    )
    # Outside the client's directory: no Director's list can let it through.
    other = f"{site}/other.sh"
    for director in ("narrow-dir", "wide-dir"):
        refusal = director_refusal(config, director, "runscript", other)
        assert refusal is not None and "this client's Allowed Script Dir" in refusal


def test_a_director_wide_open_cannot_widen_the_client(site: Path) -> None:
    config = _load(
        site,
        '  Allowed Job Command = "backup"\n  Allowed Job Command = "runscript"\n',
        {"main-dir": f'  Allowed Script Dir = "{site}/scripts"\n'},
    )
    # The Director's lists allow every job command, the client's only two of them.
    refusal = director_refusal(config, "main-dir", "restore")
    assert refusal is not None and "this client's Allowed Job Command" in refusal
    assert director_refusal(config, "main-dir", "backup") is None
    # A script: the client allows scripts, the Director only inside its directory.
    assert director_refusal(config, "main-dir", "runscript", f"{site}/scripts/any.sh") is None
    refusal = director_refusal(config, "main-dir", "runscript", f"{site}/other.sh")
    assert refusal is not None and "Director main-dir's Allowed Script Dir" in refusal


def test_job_commands_per_director(site: Path) -> None:
    config = _load(
        site,
        "",
        {"backup-dir": '  Allowed Job Command = "backup"\n', "main-dir": ""},
    )
    assert director_refusal(config, "backup-dir", "backup") is None
    for command in ("restore", "estimate", "runscript"):
        refusal = director_refusal(config, "backup-dir", command, "/usr/bin/true")
        assert refusal is not None and "Director backup-dir's Allowed Job Command" in refusal
        assert director_refusal(config, "main-dir", command, "/usr/bin/true") is None


def test_an_unknown_director_is_refused_and_no_configuration_allows_all(site: Path) -> None:
    config = _load(site, "", {"main-dir": ""})
    refusal = director_refusal(config, "rogue-dir", "runscript", "/usr/bin/true")
    assert refusal is not None and "rogue-dir" in refusal
    assert director_refusal(None, "main-dir", "runscript", "echo hi; id") is None
