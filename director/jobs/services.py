"""What the job task and the job kinds use of the Director, and nothing else.

Job code (setup, the runner, backup, restore, copy/migrate, actions, volumes, levels) receives a
`JobServices`, never the `DirectorDaemon`: the catalog facade, the job journal, the status
transitions and write-behind, the dialer, media notifications, naming, submit and cancel. The
daemon builds it once (JobEngine); a test can build one from fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from common.logging import Log

if TYPE_CHECKING:
    from common.daemon import TlsSettings
    from common.net import Connection
    from director.catalog.service import CatalogService
    from director.config import DirectorConfig
    from director.jobs.control import JobControl
    from director.jobs.naming import UniqueNamer
    from director.jobs.persist import JobWriter
    from director.jobs.request import RunRequest
    from director.jobs.transitions import Transitions


class Dialer(Protocol):
    """Whatever can connect to a File or Storage Daemon and authenticate both ways."""

    async def dial_peer(
        self, address: str, port: int, peer: TlsSettings, secret: str
    ) -> Connection: ...


@dataclass(frozen=True, eq=False)
class JobServices:
    name: str  # the Director's name (job reports, %d in scripts)
    log: Log  # the Director's structlog logger
    db: CatalogService
    joblog: Callable[
        [JobControl, str, str], None
    ]  # a job message: console, catalog Log, daemon log
    transitions: Transitions
    writer: JobWriter  # the job-state write-behind
    dialer: Dialer
    current_config: Callable[[], DirectorConfig]  # the running configuration (jobs keep their own)
    tls_enable: Callable[[], bool]  # whether the Director itself speaks TLS
    media_changed: Callable[
        [float], Awaitable[None]
    ]  # wait until a volume is labeled or freed (or timeout)
    ensure_pool: Callable[[str | None], Awaitable[int | None]]
    namer: UniqueNamer
    submit: Callable[[RunRequest], Awaitable[JobControl]]
    cancel_job: Callable[[JobControl, str], str]
    # One job per pool at a time chooses or creates a volume (volumes.assign_volume).
    pool_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def dial_peer(
        self, address: str, port: int, peer: TlsSettings, secret: str
    ) -> Connection:
        return await self.dialer.dial_peer(address, port, peer, secret)
