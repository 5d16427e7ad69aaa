"""The "failed COMMIT" row of the fault matrix (#11): a real Director whose catalog lives on a tiny
filesystem that fills up while a job ends. The job's final status is kept and written once space is
back; meanwhile new jobs are refused with a clear error in the console and in `status dir`; afterwards
the Director works again and the earlier jobs are still listed."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console import launcher
from console.admin import processes, write_installation
from tests.system.conftest import Installation, make_test_layout
from tests.system.test_backup_restore import run
from tests.system.test_engine import jobs_by_id, until

REFUSED = re.compile(
    r"the catalog is not writable: cannot write the state of \d+ job\(s\) and \d+ log line\(s\) "
    r"in the catalog (?P<path>\S+): database or disk is full; new jobs are refused until it is"
)


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """A Director alone (Admin jobs need no other daemon) with its catalog on an 8 MiB tmpfs."""
    root = tmp_path_factory.mktemp("catalogfault")
    mount = root / "catalogfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    layout = make_test_layout(root / "inst", tls=False)
    write_installation(layout)
    etc = layout.etc / "strongroom-dir.d"
    (etc / "catalog" / "MyCatalog.conf").write_text(
        f'Catalog {{\n  Name = MyCatalog\n  DB Driver = sqlite3\n  DB Name = "{mount / "catalog.db"}"\n}}\n'
    )
    ballast = mount / "ballast"
    # The filler job fills the catalog's filesystem as it runs, so that writing its own end fails.
    (etc / "job" / "faults.conf").write_text(
        "Job {\n  Name = quick\n  Type = Admin\n  Messages = Standard\n}\n"
        f"Job {{\n  Name = filler\n  Type = Admin\n  Messages = Standard\n"
        f'  Run Before Job = "cat /dev/zero > {ballast} 2>/dev/null; true"\n}}\n'
    )
    director = next(p for p in processes(layout.root) if p.prog == "strongroom-dir")
    try:
        pid = launcher.start(director)
        yield Installation(layout, {director.prog: pid})
    finally:
        launcher.stop(director.pid_file)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _catalog_row(mount: Path, job_id: int) -> tuple[str, float | None]:
    """JobStatus and EndTime as the catalog has them (`list jobs` shows the Director's live status)."""
    with contextlib.closing(
        sqlite3.connect(f"file:{mount / 'catalog.db'}?mode=ro", uri=True)
    ) as db:
        row = db.execute("SELECT JobStatus, EndTime FROM Job WHERE JobId=?", (job_id,)).fetchone()
    return str(row[0]), row[1]


def _catalog_state(inst: Installation) -> dict[str, Any]:
    (status,) = run(inst, "status dir")
    return dict(status["catalog"])


def test_a_full_catalog_disk_keeps_the_final_status_and_refuses_new_jobs(
    tiny_catalog: Installation,
) -> None:
    inst = tiny_catalog
    mount = inst.root.parent / "catalogfs"
    good = [r["run"]["jobid"] for r in run(inst, "run job=quick yes", "run job=quick yes")]
    for job_id in good:
        run(inst, f"wait jobid={job_id} timeout=60", timeout=70)
    assert all(jobs_by_id(inst)[job_id]["jobstatus"] == "T" for job_id in good)

    (started,) = run(inst, "run job=filler yes")
    filler = started["run"]["jobid"]
    state = until(
        lambda: (s := _catalog_state(inst)) and not s["writable"] and s,
        timeout=60,
        what="the Director to find its catalog unwritable",
    )
    assert REFUSED.fullmatch(state["error"]), state
    assert REFUSED.fullmatch(state["error"])["path"] == f"{mount / 'catalog.db'}"  # type: ignore[index]

    # new jobs are refused, in the console and in `status dir`
    result = inst.console("run job=quick yes")
    assert REFUSED.search(result.stdout), result.stdout
    (refused,) = run(inst, "run job=quick yes")
    assert (
        REFUSED.fullmatch(refused["message"]) and refused["data"]["error"] == refused["message"]
    ), refused
    status = inst.console("status dir").stdout
    assert re.search(r"^Catalog: " + REFUSED.pattern + "$", status, re.MULTILINE), status
    (messages,) = run(inst, "messages")
    texts = [m["text"] for m in messages["messages"]]
    assert any(REFUSED.match(t) and "keep their state in memory" in t for t in texts), texts

    # the filler's end is known to the Director but not yet in the catalog
    (in_memory,) = run(inst, f"status job={filler}")
    assert in_memory["job"]["jobstatus"] == "T"
    assert _catalog_row(mount, filler)[0] in ("C", "R")  # what was written before the disk filled

    (mount / "ballast").unlink()
    # the writer's next retry (at most 5 s away) writes the end; the job then lets go of its slots
    until(
        lambda: _catalog_row(mount, filler)[0] == "T",
        timeout=60,
        what="the filler's end in the catalog",
    )
    assert _catalog_state(inst) == {"writable": True, "error": None}
    (messages,) = run(inst, "messages")
    assert "the catalog is writable again; new jobs are accepted" in [
        m["text"] for m in messages["messages"]
    ]

    (again,) = run(inst, "run job=quick yes")
    run(inst, f"wait jobid={again['run']['jobid']} timeout=60", timeout=70)
    status_in_catalog, end_time = _catalog_row(mount, filler)
    assert status_in_catalog == "T" and end_time is not None
    rows = jobs_by_id(inst)
    assert {
        job_id: rows[job_id]["jobstatus"] for job_id in [*good, filler, again["run"]["jobid"]]
    } == dict.fromkeys([*good, filler, again["run"]["jobid"]], "T")
    log = inst.log("strongroom-dir")
    assert "catalog_unwritable" in log and "catalog_writable" in log
