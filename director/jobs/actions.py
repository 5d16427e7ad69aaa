"""Multi-action jobs (Freezer `job_actions`): a job whose actions are runs of other Job resources.

Each action is queued as a job of its own (with `ParentJobId` pointing at the parent), one after the
other. `Action Defaults` are merged under every action. An action that fails is retried up to
`Max Retries` times, `Max Retry Interval` apart; the parent fails if a mandatory action fails (the
remaining actions are skipped) and ends with warnings if only optional ones failed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from common.aio import first_set
from director.jobs import status as st
from director.jobs.errors import JobCanceled, JobError
from director.jobs.setup import RunRequest

if TYPE_CHECKING:
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices

OVERRIDES: Final = ("level", "client", "file_set", "pool", "storage", "priority")


@dataclass(frozen=True)
class Action:
    job: str
    overrides: dict[str, Any]
    mandatory: bool
    max_retries: int
    retry_interval: float


def merged_actions(resource: Any) -> list[Action]:
    """The job's actions with its Action Defaults filled in (an action's own value wins)."""
    defaults = resource.action_defaults[0] if resource.action_defaults else None

    def pick(action: Any, name: str, fallback: Any) -> Any:
        value = getattr(action, name)
        if value is None and defaults is not None:
            value = getattr(defaults, name)
        return fallback if value is None else value

    out = []
    for action in resource.action:
        job = pick(action, "job", None)
        if job is None:
            raise JobError(f"an Action of job {resource.name!r} names no Job")
        out.append(
            Action(
                job=job,
                overrides={name: pick(action, name, None) for name in OVERRIDES},
                mandatory=bool(pick(action, "mandatory", True)),
                max_retries=int(pick(action, "max_retries", 0)),
                retry_interval=float(pick(action, "max_retry_interval", 60)),
            )
        )
    return out


async def do_actions(svc: JobServices, jcr: JobControl) -> str:
    actions = merged_actions(jcr.resource)
    optional_failed = 0
    for number, action in enumerate(actions, 1):
        label = f"Action {number}/{len(actions)} (job {action.job}{'' if action.mandatory else ', optional'})"
        status, child_id = await _run_action(svc, jcr, action, label)
        if status in st.OK:
            svc.joblog(jcr, "info", f"{label}: JobId {child_id} ended {status} — OK")
            continue
        if not action.mandatory:
            optional_failed += 1
            svc.joblog(
                jcr,
                "warning",
                f"{label}: JobId {child_id} ended {status}: {st.describe(status)}; "
                "optional, continuing",
            )
            continue
        skipped = len(actions) - number
        raise JobError(
            f"{label}: JobId {child_id} ended {status}: {st.describe(status)}; mandatory action "
            f"failed" + (f", {skipped} remaining action(s) skipped" if skipped else "")
        )
    if optional_failed:
        jcr.warnings += optional_failed
        return st.WARNINGS
    return st.TERMINATED


async def _run_action(
    svc: JobServices, parent: JobControl, action: Action, label: str
) -> tuple[str, int]:
    o = action.overrides
    status, child_id = st.ERROR, 0
    for attempt in range(action.max_retries + 1):
        if attempt:
            svc.joblog(
                parent,
                "info",
                f"{label}: retry {attempt} of {action.max_retries} in "
                f"{action.retry_interval:.0f} s",
            )
            await _sleep_unless_canceled(parent, action.retry_interval)
        req = RunRequest(
            job=action.job,
            level=o["level"],
            client=o["client"],
            fileset=o["file_set"],
            pool=o["pool"],
            storage=o["storage"],
            priority=o["priority"],
            parent_job_id=parent.job_id,
            params={"no_reschedule": True},
        )
        try:
            child = await svc.submit(req)
        except JobError as exc:
            raise JobError(f"{label}: cannot start: {exc}") from exc
        child_id = child.job_id
        svc.joblog(parent, "info", f"{label}: queued as JobId {child_id}")
        await _wait_child(svc, parent, child)
        status = child.status
        if status in st.OK or status == st.CANCELED:
            break
    return status, child_id


async def _wait_child(svc: JobServices, parent: JobControl, child: JobControl) -> None:
    """Wait for an action's job; canceling the parent cancels the running action."""
    try:
        if await first_set([child.done, parent.canceled]) is not child.done:
            raise JobCanceled()
    finally:
        # Also when the parent is cut off (cancel, Director stopping): its action must not live on.
        if not child.done.is_set():
            svc.cancel_job(child, f"its multi-action job JobId {parent.job_id} was canceled")


async def _sleep_unless_canceled(jcr: JobControl, seconds: float) -> None:
    try:
        await asyncio.wait_for(jcr.canceled.wait(), seconds)
    except TimeoutError:
        return
    raise JobCanceled()
