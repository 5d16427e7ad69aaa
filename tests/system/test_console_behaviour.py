"""What the console says is what happened (#15), through srconsole and the real daemons: unknown
names refused, `wait` on an ended job, a restore chain, the Messages destinations, `list joblog`."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.trees import compare_trees
from tests.system.conftest import Installation, _install
from tests.system.test_backup_restore import run

DELIVER = (
    '#!/bin/sh\n# a Mail/Operator Command for tests: "== <args>" and the message body, appended to <kind>.out\n'
    'kind=$1\nshift\n{{ echo "== $*"; cat; echo "=="; }} >> "{out}/$kind.out"\n'
)


def _configure(inst: Installation) -> None:
    etc = inst.root / "etc" / "strongroom-dir.d"
    out = inst.root / "routed"
    out.mkdir()
    deliver = out / "deliver.sh"
    deliver.write_text(DELIVER.format(out=out))
    deliver.chmod(0o755)
    data = inst.root / "chain-src"
    data.mkdir()
    (etc / "messages" / "Routed.conf").write_text(
        "Messages {\n  Name = Routed\n"
        f'  Mail Command = "{deliver} mail %r %i %e %n"\n'
        f'  Operator Command = "{deliver} operator %r %i %j"\n'
        "  console = all, !skipped, !saved\n  catalog = all\n"
        f'  append = "{out / "append.log"}" = all, !skipped\n'
        f'  file = "{out / "errors.log"}" = error, fatal\n'
        "  mail = ops@example.com = all\n"
        "  mail on error = oncall@example.com = all\n"
        "  mail on success = happy@example.com = all\n"
        "  operator = operator@example.com = error, fatal\n}\n"
    )
    (etc / "fileset" / "Chain.conf").write_text(
        f'FileSet {{\n  Name = Chain\n  Include {{\n    File = "{data}"\n  }}\n}}\n'
    )
    (etc / "job" / "chain.conf").write_text(
        "Job {\n  Name = chain\n  JobDefs = DefaultJob\n  FileSet = Chain\n  Messages = Routed\n}\n"
        "Job {\n  Name = refused\n  JobDefs = DefaultJob\n  FileSet = Chain\n  Messages = Routed\n"
        '  Run Before Job = "false"\n}\n'
    )


@pytest.fixture(scope="module")
def console_inst(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from _install(tmp_path_factory.mktemp("console"), tls=True, before_start=_configure)


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Mail and operator commands run after the job is announced done: wait for their files."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _job(inst: Installation, line: str) -> tuple[int, str]:
    (started,) = run(inst, line)
    assert "run" in started, started
    jobid = int(started["run"]["jobid"])
    run(inst, f"wait jobid={jobid}")
    (listed,) = run(inst, f"list jobid={jobid}")
    return jobid, str(listed["jobs"][0]["jobstatus"])


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("run job=nosuch yes", "no job named 'nosuch' (known: "),
        ("run job=chain fileset=NoSuchFileSet yes", "no fileset named 'NoSuchFileSet'"),
        ("run job=chain pool=NoSuchPool yes", "no pool named 'NoSuchPool'"),
        ("run job=chain storage=NoSuchStorage yes", "no storage named 'NoSuchStorage'"),
        ("run job=chain client=nosuch-fd yes", "no client named 'nosuch-fd'"),
        (
            "restore client=test-fd fileset=NoSuchFileSet all where=/tmp/x yes",
            "no fileset named 'NoSuchFileSet'",
        ),
        (
            "restore client=test-fd restorejob=NoSuchRestore all where=/tmp/x yes",
            "no restore job named 'NoSuchRestore'",
        ),
        (
            "restore client=test-fd restorejob=chain all where=/tmp/x yes",
            "no restore job named 'chain'",
        ),
        (
            "restore client=test-fd storage=NoSuchStorage all where=/tmp/x yes",
            "no storage named 'NoSuchStorage'",
        ),
        ("restore client=nosuch all where=/tmp/x yes", "no client named 'nosuch'"),
        ("estimate job=nosuch", "no job named 'nosuch'"),
        ("estimate job=chain fileset=NoSuchFileSet", "no fileset named 'NoSuchFileSet'"),
        ("list jobs job=nosuch", "no job named 'nosuch'"),
        ("list jobs client=nosuch", "no client named 'nosuch'"),
        ("list volumes pool=NoSuchPool", "no pool named 'NoSuchPool'"),
        (
            "label storage=NoSuchStorage pool=Full volume=V-1",
            "no storage named 'NoSuchStorage' (known: File)",
        ),
        ("label storage=File pool=NoSuchPool volume=V-1", "no pool named 'NoSuchPool'"),
    ],
)
def test_unknown_names_are_refused(console_inst: Installation, line: str, refusal: str) -> None:
    result = console_inst.console(line)
    assert result.returncode == 1, result.stdout + result.stderr
    assert refusal in result.stdout, result.stdout
    assert "Job queued" not in result.stdout


def test_wait_after_the_job_ended_reports_its_status(console_inst: Installation) -> None:
    inst = console_inst
    (inst.root / "chain-src" / "first.txt").write_text("first\n")
    (started,) = run(inst, "run job=chain level=Full yes")
    jobid = started["run"]["jobid"]
    run(
        inst, f"wait jobid={jobid}"
    )  # the job has ended: the next wait finds it in the catalog only
    ok = inst.console(f"wait jobid={jobid}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"JobId={jobid} " in ok.stdout and "JobStatus=T (Terminated normally)" in ok.stdout
    (failed,) = run(inst, "run job=refused level=Full yes")
    bad_id = failed["run"]["jobid"]
    run(inst, f"wait jobid={bad_id}")
    bad = inst.console(f"wait jobid={bad_id}")
    assert bad.returncode != 0
    assert "JobStatus=E" in bad.stdout, bad.stdout
    missing = inst.console("wait jobid=999999")
    assert missing.returncode != 0 and "not in the catalog" in missing.stdout


def test_restore_chain_of_an_incremental_after_a_differential(console_inst: Installation) -> None:
    inst = console_inst
    src = inst.root / "chain-src"
    (src / "full-only.txt").write_text("in the Full\n")
    (src / "changed.txt").write_text("v1\n")
    (src / "deleted-later.txt").write_text("goes away\n")
    full, status = _job(inst, "run job=chain level=Full yes")
    assert status == "T"
    time.sleep(1.1)  # mtimes and ctimes must move past the Full's start
    (src / "changed.txt").write_text("v2 in the Differential\n")
    (src / "diff-new.txt").write_text("new in the Differential\n")
    diff, status = _job(inst, "run job=chain level=Differential yes")
    assert status == "T"
    time.sleep(1.1)
    (src / "incr-new.txt").write_text("new in the Incremental\n")
    incr, status = _job(inst, "run job=chain level=Incremental yes")
    assert status == "T"
    state_at_incr = inst.root / "state-at-incr"
    shutil.copytree(src, state_at_incr, symlinks=True)
    shutil.copystat(src, state_at_incr)
    time.sleep(1.1)
    (src / "after.txt").write_text("after the chain's end\n")
    later, status = _job(inst, "run job=chain level=Incremental yes")
    assert status == "T"

    where = inst.root / "restores" / "chain"
    result = inst.console(f'restore jobid={incr} select all where="{where}" done yes', "wait")
    assert f"You have selected the following JobIds: {full},{diff},{incr}" in result.stdout, (
        result.stdout
    )
    assert later not in (full, diff, incr)
    restored = where / str(src).lstrip("/")
    assert compare_trees(state_at_incr, restored) == []
    assert not (restored / "after.txt").exists()

    exact = inst.root / "restores" / "exact"
    result = inst.console(f'restore jobid={incr} all where="{exact}" yes', "wait")
    assert f"You have selected the following JobIds: {incr}" in result.stdout, result.stdout
    assert sorted(p.name for p in (exact / str(src).lstrip("/")).iterdir()) == ["incr-new.txt"]


def test_messages_destinations_receive_what_their_filters_allow(console_inst: Installation) -> None:
    inst = console_inst
    out = inst.root / "routed"
    for name in ("append.log", "errors.log", "mail.out", "operator.out"):
        (out / name).unlink(missing_ok=True)
    good, status = _job(inst, "run job=chain level=Full yes")
    assert status == "T"
    bad, status = _job(inst, "run job=refused level=Full yes")
    assert status == "E"
    _wait_for(
        lambda: (
            (out / "mail.out").exists()
            and (out / "mail.out").read_text().count("\n== ") >= 2
            and "oncall@example.com" in (out / "mail.out").read_text()
            and "happy@example.com" in (out / "mail.out").read_text()
        ),
        "the mails",
    )
    _wait_for((out / "operator.out").exists, "the operator message")

    appended = (out / "append.log").read_text()
    assert (
        f"JobId {good}: Status" in appended and f"JobId {bad}: Status" in appended
    )  # info, both jobs

    errors = (
        out / "errors.log"
    ).read_text()  # `file`: this job's error messages only, begun afresh
    assert f"JobId {bad}:" in errors and "non-zero status" in errors
    assert "Status " not in errors and f"JobId {good}:" not in errors

    mail = (out / "mail.out").read_text()
    headers = [line for line in mail.splitlines() if line.startswith("== ") and line != "=="]
    assert f"== ops@example.com {good} OK chain" in headers
    assert f"== ops@example.com {bad} Error refused" in headers
    assert f"== happy@example.com {good} OK chain" in headers
    assert f"== oncall@example.com {bad} Error refused" in headers
    assert not any(
        h.startswith(f"== happy@example.com {bad} ")
        or h.startswith(f"== oncall@example.com {good} ")
        for h in headers
    )
    assert f"JobId {good}: Backup report" in mail or "Backup OK" in mail

    operator = (out / "operator.out").read_text()
    assert f"== operator@example.com {bad} " in operator and "non-zero status" in operator
    assert f"== operator@example.com {good} " not in operator and "Status " not in operator

    (shown,) = run(inst, "messages")  # console = all, !skipped, !saved
    assert any(m["jobid"] == bad and "non-zero status" in m["text"] for m in shown["messages"])


def test_list_joblog_after_messages_were_read(console_inst: Installation) -> None:
    inst = console_inst
    jobid, status = _job(inst, "run job=chain level=Full yes")
    assert status == "T"
    run(inst, "messages")
    (again,) = run(inst, "messages")
    assert again["messages"] == []
    (log,) = run(inst, f"list joblog jobid={jobid}")
    texts = [row["logtext"] for row in log["joblog"]]
    assert any("Status R -> T" in t for t in texts), texts
    assert any("Backup report" in t or "Termination:" in t for t in texts), texts
    text = inst.console(f"list joblog jobid={jobid}")
    assert text.returncode == 0 and "Termination:" in text.stdout, text.stdout
    assert json.dumps(log)  # JSON-able
    assert os.path.exists(inst.root / "routed" / "append.log")
