"""The File Daemon protects itself whatever its Director asks (#13), through the real daemons:
Bareos's `Allowed Job Command` on the FD's Director resource (here: backups only) and `Allowed
Script Dir` on its Client resource. A backup runs; a restore and a client script outside the
directory are refused by the File Daemon, and the job log says which list refused them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import Installation, _install
from tests.system.test_backup_restore import messages, run_job

JOB = "guarded"


def _guard(inst: Installation) -> None:
    root = inst.root
    scripts = root / "fd-scripts"
    scripts.mkdir()
    (scripts / "ok.sh").write_text("#!/bin/sh\necho allowed-script-ran\n")
    (scripts / "ok.sh").chmod(0o755)
    fd = root / "etc" / "strongroom-fd.d"
    director = fd / "director" / f"{inst.layout.director}.conf"
    director.write_text(
        director.read_text().replace(
            "}", '  Allowed Job Command = "backup"\n  Allowed Job Command = "runscript"\n}'
        )
    )
    client = fd / "client" / f"{inst.layout.client}.conf"
    client.write_text(client.read_text().replace("}", f'  Allowed Script Dir = "{scripts}"\n}}'))
    src = root / "guarded-src"
    src.mkdir()
    (src / "a.txt").write_text("kept\n")
    etc = root / "etc" / "strongroom-dir.d"
    (etc / "fileset" / "Guarded.conf").write_text(
        f'FileSet {{\n  Name = Guarded\n  Include {{\n    File = "{src}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{JOB}.conf").write_text(
        f"Job {{\n  Name = {JOB}\n  JobDefs = DefaultJob\n  FileSet = Guarded\n  Level = Full\n"
        f'  ClientRunBeforeJob = "{scripts}/ok.sh"\n'
        '  ClientRunAfterJob = "/bin/echo outside; id"\n}\n'
    )


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    yield from _install(tmp_path_factory.mktemp("guarded"), tls=True, before_start=_guard)


def test_a_backup_runs_and_only_the_allowed_script_does(guarded: Installation) -> None:
    row = run_job(guarded, f"run job={JOB} yes")
    text = messages(guarded)
    assert row["jobstatus"] in ("T", "W"), text
    assert "allowed-script-ran" in text
    assert "refused by the File Daemon" in text and "uses shell syntax" in text, text
    assert "this client's Allowed Script Dir" in text


def test_a_restore_is_refused_by_the_directors_allowed_job_command(
    guarded: Installation, tmp_path: Path
) -> None:
    backup = run_job(guarded, f"run job={JOB} yes")
    messages(guarded)
    row = run_job(guarded, f'restore jobid={backup["jobid"]} where="{tmp_path / "r"}" all done yes')
    text = messages(guarded)
    assert row["jobstatus"] == "E", text
    assert (
        "the restore command is not in Director test-dir's Allowed Job Command "
        "(backup, runscript)" in text
    ), text
    assert not (tmp_path / "r").exists()
