"""A run request's parameters become typed plans, and a value of the wrong type is a JobError."""

from __future__ import annotations

import pytest

from director.jobs.errors import JobError
from director.jobs.plans import CopyPlan, RestorePlan
from director.jobs.request import RunRequest, dumps, loads
from protocol.jobs import BootstrapSpec

BSR = BootstrapSpec(
    volume_name="Full-0001",
    session_id=1,
    session_time=2,
    file_indexes=((1, 5),),
    start_block=0,
    start_addr=0,
    job_id=7,
)


def test_a_restore_plan_survives_the_catalog_round_trip() -> None:
    params: dict[str, object] = {
        "bootstrap": [BSR],
        "where": b"/tmp/r",
        "strip_prefix": b"/srv",
        "regex_where": "!a!b!",
        "hidden_indexes": ((7, 3),),
        "expected_files": 5,
        "volume_storage": {"Full-0001": "File"},
        "source_jobs": [7],
        "privileged_content": True,
    }
    kept = loads(dumps(RunRequest(job="RestoreFiles", params=params)))
    plan = RestorePlan.from_params(kept.params)
    assert plan == RestorePlan.from_params(params)
    assert plan.bootstrap == (BSR,) and plan.hidden_indexes == ((7, 3),)
    assert plan.volume_storage == {"Full-0001": "File"} and plan.source_jobs == (7,)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("expected_files", "5"),
        ("expected_files", True),
        ("source_jobs", "7"),
        ("hidden_indexes", [[1, 2, 3]]),
        ("strip_prefix", "/srv"),
        ("volume_storage", {"Full-0001": 3}),
        ("bootstrap", [{"volume_name": "x"}]),
    ],
)
def test_a_wrong_type_names_the_parameter(name: str, value: object) -> None:
    with pytest.raises(JobError, match=f"run request parameter '{name}'"):
        RestorePlan.from_params({name: value})


def test_a_copy_worker_request_is_read_back_typed() -> None:
    params = CopyPlan.params(7, True, "File", "Copy", "File2")
    request = CopyPlan.requested(loads(dumps(RunRequest(job="c", params=params))).params)
    assert request is not None
    assert (request.source_job_id, request.migrate, request.target_storage) == (7, True, "File2")
    assert CopyPlan.requested({}) is None
    with pytest.raises(JobError, match="'copy_source'"):
        CopyPlan.requested({"copy_source": "7"})
