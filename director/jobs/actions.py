"""Multi-action jobs (Freezer `job_actions`): a job whose actions are runs of other Job resources.

Each action is queued as a job of its own (with `ParentJobId` pointing at the parent), one after the
other. `Action Defaults` are merged under every action. An action that fails is retried up to
`Max Retries` times, `Max Retry Interval` apart; the parent fails if a mandatory action fails (the
remaining actions are skipped) and ends with warnings if only optional ones failed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.aio import first_set
from director.jobs import status as st
from director.jobs.errors import JobCanceled, JobError
from director.jobs.setup import RunRequest

if TYPE_CHECKING:
    from director.config import JobAction, JobResource
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices


@dataclass(frozen=True)
class Action:
    """One action with its Action Defaults filled in: the Job to run and its run overrides."""

    job: str
    level: str | None
    client: str | None
    fileset: str | None
    pool: str | None
    storage: str | None
    priority: int | None
    mandatory: bool
    max_retries: int
    retry_interval: float


def merged_actions(resource: JobResource) -> list[Action]:
    """The job's actions with its Action Defaults filled in (an action's own value wins)."""
    defaults = resource.action_defaults[0] if resource.action_defaults else None

    def pick(action: JobAction, name: str) -> Any:
        value = getattr(action, name)
        return getattr(defaults, name) if value is None and defaults is not None else value

    out = []
    for action in resource.action:
        job = pick(action, "job")
        if job is None:
            raise JobError(f"an Action of job {resource.name!r} names no Job")
        mandatory, retries, interval = (
            pick(action, n) for n in ("mandatory", "max_retries", "max_retry_interval")
        )
        out.append(
            Action(
                job=job,
                level=pick(action, "level"),
                client=pick(action, "client"),
                fileset=pick(action, "file_set"),
                pool=pick(action, "pool"),
                storage=pick(action, "storage"),
                priority=pick(action, "priority"),
                mandatory=True if mandatory is None else bool(mandatory),
                max_retries=int(retries or 0),
                retry_interval=float(60 if interval is None else interval),
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
            level=action.level,
            client=action.client,
            fileset=action.fileset,
            pool=action.pool,
            storage=action.storage,
            priority=action.priority,
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
