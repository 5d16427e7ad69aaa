"""Job mechanics through the real daemons: volumes filling up, cancel, scheduled start, the one-time key."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from common.auth import authenticate_initiator
from common.daemon import client_ssl_context
from common.net import Limits, dial
from director.config import load_director_config
from protocol.errors import AuthenticationFailed
from protocol.messages import Hello
from tests.support.trees import compare_trees
from tests.system.conftest import Installation
from tests.system.test_backup_restore import messages, run, run_job


@pytest.fixture(scope="module")
def configured(installation: Installation) -> Installation:
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    data = installation.root / "jobdata"
    (data / "big").mkdir(parents=True)
    for n in range(6):
        (data / "big" / f"random-{n}.bin").write_bytes(os.urandom(700_000))
    (data / "slow").mkdir()
    for n in range(200):
        (data / "slow" / f"chunk-{n:03d}").write_bytes(os.urandom(1_000_000))
    (etc / "pool" / "Tiny.conf").write_text(
        'Pool {\n  Name = Tiny\n  Pool Type = Backup\n  Maximum Volume Bytes = 1M\n  Label Format = "Tiny-"\n}\n'
    )
    (etc / "fileset" / "Big.conf").write_text(
        f'FileSet {{\n  Name = Big\n  Include {{\n    File = "{data / "big"}"\n  }}\n}}\n'
    )
    (etc / "fileset" / "Slow.conf").write_text(
        f"FileSet {{\n  Name = Slow\n  Include {{\n    Options {{\n      Signature = SHA512\n      Compression = GZIP9\n"
        f'    }}\n    File = "{data / "slow"}"\n  }}\n}}\n'
    )
    (etc / "job" / "tiny.conf").write_text(
        "Job {\n  Name = tiny\n  JobDefs = DefaultJob\n  FileSet = Big\n  Pool = Tiny\n  Full Backup Pool = Tiny\n}\n"
    )
    (etc / "job" / "slow.conf").write_text(
        "Job {\n  Name = slow\n  JobDefs = DefaultJob\n  FileSet = Slow\n}\n"
    )
    (reply,) = run(installation, "reload")
    assert "reloaded" in str(reply), reply
    return installation


def test_full_volumes_roll_over_and_restore_spans_them(configured: Installation) -> None:
    inst = configured
    row = run_job(inst, "run job=tiny level=Full yes")
    assert row["jobstatus"] == "T", messages(inst)
    (vols,) = run(inst, "list volumes pool=Tiny")
    tiny = [v for v in vols["volumes"] if v["pool"] == "Tiny"]
    assert len(tiny) >= 4
    assert [v["volstatus"] for v in tiny[:-1]] == ["Full"] * (len(tiny) - 1)
    assert all(v["volbytes"] <= 1024 * 1024 + 1024 * 1024 + 300_000 for v in tiny)
    where = inst.root / "restores" / "tiny"
    restored = run_job(inst, f'restore jobid={row["jobid"]} where="{where}" all yes')
    assert restored["jobstatus"] == "T", messages(inst)
    src = inst.root / "jobdata" / "big"
    assert compare_trees(src, where / str(src).lstrip("/")) == []


def test_cancel_a_running_backup(configured: Installation) -> None:
    inst = configured
    (started,) = run(inst, "run job=slow level=Full yes")
    jobid = started["run"]["jobid"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (status,) = run(inst, f"status job={jobid}")
        if status["job"]["jobstatus"] == "R" and status["job"]["jobfiles"]:
            break
        time.sleep(0.1)
    (canceled,) = run(inst, f"cancel jobid={jobid}")
    assert "marked to be canceled" in canceled["cancel"]["message"]
    run(inst, f"wait jobid={jobid}")
    (listed,) = run(inst, f"list jobid={jobid}")
    assert listed["jobs"][0]["jobstatus"] == "A"
    # both daemons let go of the job
    (sd,) = run(inst, "status storage")
    assert sd["storage"]["running_jobs"] == []
    (fd,) = run(inst, "status client")
    assert fd["client"]["running_jobs"] == []


def test_scheduled_job_waits_and_can_be_canceled(configured: Installation) -> None:
    inst = configured
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    (started,) = run(inst, f'run job=tiny level=Full when="{when}" yes')
    jobid = started["run"]["jobid"]
    (status,) = run(inst, f"status job={jobid}")
    assert status["job"]["jobstatus"] == "t"
    assert status["job"]["wait_reason"]["code"] == "start_time"
    run(inst, f"cancel jobid={jobid}")
    (listed,) = run(inst, f"list jobid={jobid}")
    assert listed["jobs"][0]["jobstatus"] == "A"


def test_storage_refuses_a_data_session_without_the_job_key(configured: Installation) -> None:
    inst = configured
    loaded = load_director_config(inst.layout.root / "etc" / "strongroom-dir.d").config
    storage = next(iter(loaded.storages.values()))

    async def attempt() -> None:
        conn = await dial(
            "127.0.0.1", storage.port, client_ssl_context(loaded.director, storage), Limits()
        )
        try:
            await authenticate_initiator(
                conn, Hello(role="job", name="no-such-job.2026", version="t"), "GUESS-KEY"
            )
        finally:
            await conn.close()

    with pytest.raises(AuthenticationFailed, match="1999"):
        asyncio.run(attempt())
    for _ in range(50):  # the refusal is logged after the anti-probing delay
        if "authentication_failed" in inst.log("strongroom-sd"):
            break
        time.sleep(0.1)
    assert "authentication_failed" in inst.log("strongroom-sd")


def test_run_scripts_before_and_after(configured: Installation) -> None:
    inst = configured
    etc = inst.layout.root / "etc" / "strongroom-dir.d"
    marks = inst.root / "script-marks"
    marks.mkdir(exist_ok=True)
    (etc / "job" / "scripted.conf").write_text(
        "Job {\n  Name = scripted\n  JobDefs = DefaultJob\n  FileSet = Big\n"
        f"  Run Before Job = \"sh -c 'echo %i %l %n > {marks}/before'\"\n"
        f"  RunScript {{\n    Command = \"sh -c 'echo %e %F > {marks}/after'\"\n    Runs When = After\n  }}\n}}\n"
        'Job {\n  Name = refused\n  JobDefs = DefaultJob\n  FileSet = Big\n  Run Before Job = "false"\n}\n'
    )
    run(inst, "reload")
    row = run_job(inst, "run job=scripted level=Full yes")
    assert row["jobstatus"] == "T", messages(inst)
    assert (marks / "before").read_text().split() == [str(row["jobid"]), "Full", "scripted"]
    assert (marks / "after").read_text().split() == ["OK", str(row["jobfiles"])]
    failed = run_job_status(inst, "run job=refused level=Full yes")
    assert failed["jobstatus"] == "E"
    assert failed["jobfiles"] == 0
    assert "non-zero status" in messages(inst)


def run_job_status(inst: Installation, line: str) -> dict[str, object]:
    (started,) = run(inst, line)
    jobid = started["run"]["jobid"]
    run(inst, f"wait jobid={jobid}")
    (listed,) = run(inst, f"list jobid={jobid}")
    return dict(listed["jobs"][0])


def test_a_damaged_append_volume_is_marked_error_and_replaced(configured: Installation) -> None:
    from storaged.volume import VolumeReader

    inst = configured
    (vols,) = run(inst, "list volumes pool=Full")
    appendable = [
        v["volumename"]
        for v in vols["volumes"]
        if v["pool"] == "Full"
        and v["volstatus"] == "Append"
        and (inst.layout.storage_dir / v["volumename"]).exists()
        and v["volblocks"] > 2
    ]
    assert appendable, vols
    victim = inst.layout.storage_dir / appendable[0]
    offsets = sorted({r.position.offset for r in VolumeReader(victim).records()})
    raw = bytearray(victim.read_bytes())
    raw[offsets[1] : offsets[1] + 4] = b"XXXX"
    victim.write_bytes(bytes(raw))
    row = run_job(inst, "run job=scripted level=Full yes")
    assert row["jobstatus"] == "T", messages(inst)
    (after,) = run(inst, "list volumes pool=Full")
    status = {v["volumename"]: v["volstatus"] for v in after["volumes"]}
    assert status[appendable[0]] == "Error"
    assert "marking it Error" in messages(inst)
