"""`%` codes substituted into `sh -c` command lines are shell-quoted: no extra command runs (#13).

Names are held to Bareos's rule at load, but a value also comes from elsewhere (volume lists, exit
texts, a configuration written before the rule): whatever it holds, it reaches the command as one
word. Hooks also get every value in environment variables.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.scripts import run_command
from director.jobs.control import JobControl
from director.jobs.hooks import hook_environment
from director.jobs.scripts import substitute

HOSTILE = [
    "../x",
    "/abs",
    "a;touch {m}",
    "$(touch {m})",
    "`touch {m}`",
    "a\ntouch {m}",
    "a'b\"c",
    "x && touch {m}",
    "| touch {m}",
    "--option",
    "*",
    " spaced out ",
]


def _job(client: str, name: str = "nightly", volumes: tuple[str, ...] = ()) -> JobControl:
    jcr = JobControl(
        job_id=7,
        unique=f"{name}.2026-01-02_03.04.05_07",
        name=name,
        job_type="B",
        level="F",
        resource=SimpleNamespace(run_on_status_change=()),  # type: ignore[arg-type]  # only what hooks read
        client=client,
        fileset="fs",
        pool="Full",
        storage="File",
        priority=10,
        allow_mixed=False,
        sched_time=time.time(),
    )
    jcr.volumes = list(volumes)
    return jcr


@pytest.mark.parametrize("template", HOSTILE)
async def test_a_hostile_value_is_one_word_and_runs_nothing(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    value = template.format(m=marker)
    jcr = _job(client=value, name=value, volumes=(value, "Full-0001"))
    command = substitute("printf '<%%s>' %c %n %v %e", jcr, "dir", exit_status=value)
    status, output = await run_command(command, timeout=10)
    assert status == 0, output
    assert output == f"<{value}><{value}><{value},Full-0001><{value}>"
    assert not marker.exists()


def test_safe_values_read_as_they_always_did() -> None:
    jcr = _job(client="web-fd", volumes=("Full-0001", "Full-0002"))
    assert substitute("/usr/bin/notify %c %n %v 100%%", jcr, "dir") == (
        "/usr/bin/notify web-fd nightly Full-0001,Full-0002 100%"
    )


def test_hooks_get_every_value_in_the_environment() -> None:
    env = hook_environment(_job(client="a;b"), "R", "T", {"event": "job_status"})
    assert env["STRONGROOM_CLIENT"] == "a;b" and env["STRONGROOM_NAME"] == "nightly"
    assert env["STRONGROOM_STATUS"] == "T" and env["STRONGROOM_OLD_STATUS"] == "R"
    assert env["STRONGROOM_LEVEL"] == "F" and env["STRONGROOM_TYPE"] == "B"
