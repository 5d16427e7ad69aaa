"""What `run` (or a schedule, a retry, an action) asks for, and its JSON form for the
catalog's Job.Request column, so a restarted Director can queue the
job again exactly as it was asked for (overrides, restore bootstrap and all)."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from protocol.jobs import BootstrapSpec


@dataclass
class RunRequest:
    """What `run` (or a schedule) asks for: a Job resource plus overrides."""

    job: str
    level: str | None = None
    client: str | None = None
    fileset: str | None = None
    pool: str | None = None
    storage: str | None = None
    priority: int | None = None
    when: float | None = None
    params: dict[str, object] = field(default_factory=dict)
    expires: float | None = (
        None  # not started by then: the job ends in error (REGARDS expiration date)
    )
    retry: int = 0  # 0 for a first run; n for the n-th reschedule of `retry_of`
    retry_of: int | None = None
    parent_job_id: int | None = None  # the multi-action job this run is an action of

    def text(self, name: str) -> str | None:
        """A text parameter (`next_pool`, `scheduled`), or None when absent or not text."""
        value = self.params.get(name)
        return value if isinstance(value, str) else None


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__b": base64.b64encode(value).decode()}
    if isinstance(value, BootstrapSpec):
        return {"__bsr": _encode(value.model_dump())}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in a run request")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b"}:
            return base64.b64decode(value["__b"])
        if set(value) == {"__bsr"}:
            fields = _decode(value["__bsr"])
            fields["file_indexes"] = tuple(tuple(r) for r in fields["file_indexes"])
            return BootstrapSpec(**fields)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps(req: RunRequest) -> str:
    return json.dumps(_encode(asdict(req)), separators=(",", ":"))


def loads(text: str) -> RunRequest:
    fields = _decode(json.loads(text))
    return RunRequest(**fields)
