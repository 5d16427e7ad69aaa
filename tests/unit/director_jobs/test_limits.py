"""Time limits of a job, with an injected clock: Max Start Delay, Max Run Sched Time, Max Run Time,
Max Wait Time and the expiration date."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from director.jobs import status as st
from director.jobs.control import JobControl
from director.jobs.engine import limit_problem

T0 = 1_800_000_000.0


def make(status: str = st.CREATED, started: float | None = None, **limits: Any) -> JobControl:
    resource = SimpleNamespace(
        max_start_delay=None, max_run_sched_time=None, max_run_time=None, max_wait_time=None
    )
    for key, value in limits.items():
        setattr(resource, key, value)
    jcr = JobControl(
        job_id=1,
        unique="j.1",
        name="j",
        job_type="B",
        level="F",
        resource=resource,
        client=None,
        fileset=None,
        pool=None,
        storage=None,
        priority=10,
        allow_mixed=False,
        sched_time=T0,
    )
    jcr.force_status(status)
    jcr.start_time = started
    return jcr


@pytest.mark.parametrize(
    ("jcr", "now", "expected"),
    [
        pytest.param(make(max_start_delay=60), T0 + 59, None, id="start-delay-not-yet"),
        pytest.param(
            make(max_start_delay=60), T0 + 61, ("A", "Max Start Delay"), id="start-delay-exceeded"
        ),
        pytest.param(
            make(st.RUNNING, T0 + 1, max_start_delay=60),
            T0 + 600,
            None,
            id="start-delay-ignored-once-started",
        ),
        pytest.param(
            make(st.RUNNING, T0 + 1, max_run_time=10), T0 + 12, ("A", "Max Run Time"), id="run-time"
        ),
        pytest.param(
            make(st.RUNNING, T0 + 1, max_run_time=10), T0 + 10, None, id="run-time-not-yet"
        ),
        pytest.param(make(max_run_time=10), T0 + 1000, None, id="run-time-needs-a-start"),
        pytest.param(
            make(max_run_sched_time=30),
            T0 + 31,
            ("A", "Max Run Sched Time"),
            id="run-sched-time-queued",
        ),
        pytest.param(
            make(st.RUNNING, T0 + 20, max_run_sched_time=30),
            T0 + 31,
            ("A", "Max Run Sched Time"),
            id="run-sched-time-running",
        ),
        pytest.param(
            make(st.TERMINATED, T0 + 1, max_run_time=1),
            T0 + 100,
            None,
            id="ended-jobs-are-left-alone",
        ),
    ],
)
def test_limits(jcr: JobControl, now: float, expected: tuple[str, str] | None) -> None:
    problem = limit_problem(jcr, now)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem[0] == expected[0] and expected[1] in problem[1]


def test_expiration_fails_a_job_that_has_not_started() -> None:
    jcr = make()
    jcr.expires = T0 + 5
    assert limit_problem(jcr, T0 + 4) is None
    status, reason = limit_problem(jcr, T0 + 6) or ("", "")
    assert status == st.ERROR and reason.startswith("expired")
    jcr.start_time = T0 + 1
    assert limit_problem(jcr, T0 + 6) is None


def test_max_wait_time_counts_only_time_spent_waiting_after_start() -> None:
    jcr = make(st.WAIT_SD, T0, max_wait_time=30)
    jcr.waited = 20.0
    jcr.wait_since = T0 + 100
    assert limit_problem(jcr, T0 + 105) is None
    status, reason = limit_problem(jcr, T0 + 111) or ("", "")
    assert status == st.CANCELED and "Max Wait Time" in reason


def test_a_canceled_job_is_not_limited_again() -> None:
    jcr = make(max_start_delay=1)
    jcr.canceled.set()
    assert limit_problem(jcr, T0 + 100) is None
