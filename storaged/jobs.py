"""Storage Daemon jobs: the job record, the one-time key, the registry of jobs and open volumes."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.net import Connection
from protocol.jobs import (
    BootstrapSpec,
    JobEnd,
    JobMessage,
    JobStatusChange,
    SdJobSetup,
    VolumeAssignment,
)
from protocol.messages import Code, DeviceStatus, Message
from storaged.appender import VolumeAppender, VolumeWriteFailed
from storaged.binding import PeerBinding
from storaged.reservation import Device, Request, ReservationError, Reservations, Wait


class SdJobError(Exception):
    """A job cannot be set up or run on this Storage Daemon; the text goes to the Director."""


def make_key() -> str:
    """A one-time job key in the Bareos Authorization shape (XXXX-XXXX-…), 128 bits of randomness."""
    raw = secrets.token_bytes(16)
    letters = "".join(chr(ord("A") + (b & 0xF)) + chr(ord("A") + (b >> 4)) for b in raw)
    return "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))


@dataclass(eq=False)
class _OpenVolume:
    appender: VolumeAppender
    users: int = 0


class OpenVolumes:
    """The volumes open for append on this Storage Daemon: one VolumeAppender per volume file,
    shared by every session appending to it, closed when the last one leaves."""

    def __init__(self) -> None:
        self._open: dict[Path, _OpenVolume] = {}
        self._lock = asyncio.Lock()

    async def acquire(
        self, path: Path, max_bytes: int | None, direct_io: bool = True
    ) -> VolumeAppender:
        """The volume's appender (opening it, and repairing a torn tail, when nobody has it open).
        A volume that failed or filled up while open is refused with that error."""
        async with self._lock:
            entry = self._open.get(path)
            if entry is None:
                appender = await asyncio.to_thread(
                    VolumeAppender, path, max_bytes, direct_io=direct_io
                )
                entry = self._open[path] = _OpenVolume(appender)
            appender = entry.appender
            if appender.status is not None:
                raise VolumeWriteFailed(appender.name, appender.status, appender.reason)
            entry.users += 1
            return appender

    async def release(self, appender: VolumeAppender) -> None:
        async with self._lock:
            entry = self._open.get(appender.path)
            if entry is None or entry.appender is not appender:
                return
            entry.users -= 1
            if entry.users <= 0:
                del self._open[appender.path]
                await asyncio.to_thread(appender.close)


@dataclass(eq=False)
class SdJob:
    """One job on this Storage Daemon."""

    setup: SdJobSetup
    key: str
    session_id: int
    session_time: int
    device: Device
    read_device: Device | None = None
    control: Connection | None = None
    status: str = "C"
    files: int = 0
    bytes: int = 0
    errors: int = 0
    canceled: asyncio.Event = field(default_factory=asyncio.Event)
    data_attached: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    volume_replies: asyncio.Queue[VolumeAssignment] = field(
        default_factory=lambda: asyncio.Queue(maxsize=4)
    )
    end: JobEnd | None = None
    used_key: bool = False
    abandoned: str = ""  # why the Director went away (or ended the job): it then ends E, not A
    registry: JobRegistry | None = None
    # The SD's open volumes (shared by every job of the registry; a job of its own in unit tests).
    open_volumes: OpenVolumes = field(default_factory=OpenVolumes)
    # Which certificate the job's data connection (or, replicating, the writing SD) may carry; set
    # when the Director's setup is accepted. None: not held to a name (unit tests).
    binding: PeerBinding | None = None

    @property
    def name(self) -> str:
        return self.setup.job

    @property
    def volume(self) -> VolumeAssignment | None:
        return self.setup.volume

    @property
    def bootstrap(self) -> tuple[BootstrapSpec, ...]:
        return self.setup.bootstrap

    async def tell_director(self, msg: Message) -> None:
        if self.control is not None and not self.control.closed:
            await self.control.send(msg)

    async def set_status(self, status: str) -> None:
        self.status = status
        await self.tell_director(JobStatusChange(job=self.name, status=status))

    async def message(self, level: str, text: str) -> None:
        await self.tell_director(
            JobMessage(job=self.name, level=level, text=text, time=time.time())
        )

    def finish(self, status: str, text: str = "") -> JobEnd:
        if self.end is None:
            self.status = status
            self.end = JobEnd(
                code=Code.SD_JOB_END,
                job=self.name,
                status=status,
                files=self.files,
                bytes=self.bytes,
                errors=self.errors,
                text=text,
            )
        self.finished.set()
        return self.end


@dataclass
class JobRegistry:
    """Jobs by unique name, device reservations, open volumes, and the session counter."""

    devices: dict[str, Device]
    session_time: int = field(default_factory=lambda: int(time.time()))
    next_session: int = 1
    jobs: dict[str, SdJob] = field(default_factory=dict)
    reservations: Reservations = field(init=False)
    volumes: OpenVolumes = field(default_factory=OpenVolumes)
    _reserving: set[str] = field(default_factory=set)  # jobs waiting for a device

    def __post_init__(self) -> None:
        self.reservations = Reservations(self.devices)

    async def create(
        self, setup: SdJobSetup, on_wait: Callable[[Wait], object] | None = None
    ) -> SdJob:
        """Reserve the job's device(s), waiting for them as long as it takes, and create the job.
        Raises SdJobError for what waiting cannot fix (unknown device, wrong media type)."""
        if setup.job in self.jobs or setup.job in self._reserving:
            raise SdJobError(f"job {setup.job} already exists on this Storage Daemon")
        request = Request(
            job=setup.job,
            devices=setup.devices or (setup.device,),
            media_type=setup.media_type,
            append=setup.append,
            volume=setup.volume.volume_name if setup.volume else None,
            read_device=setup.read_device,
            read_media_type=setup.read_media_type,
        )
        self._reserving.add(setup.job)
        try:
            grant = await self.reservations.reserve(request, on_wait)
        except ReservationError as exc:
            raise SdJobError(str(exc)) from exc
        finally:
            self._reserving.discard(setup.job)
        job = SdJob(
            setup=setup,
            key=make_key(),
            session_id=self.next_session,
            session_time=self.session_time,
            device=grant.device,
            read_device=grant.read_device,
            registry=self,
            open_volumes=self.volumes,
        )
        self.next_session += 1
        self.jobs[setup.job] = job
        return job

    def release(self, job: SdJob) -> None:
        if self.jobs.get(job.name) is job:
            del self.jobs[job.name]
            self.reservations.release(job.name)

    def key_for(self, job_name: str) -> str | None:
        job = self.jobs.get(job_name)
        if job is None or job.used_key:
            return None
        return job.key

    def device_status(self) -> tuple[DeviceStatus, ...]:
        waiting: dict[str, list[str]] = {}
        for job, wait in self.reservations.waiting():
            waiting.setdefault(wait.device, []).append(f"{job} ({wait.describe()}): {wait.text}")
        return tuple(
            DeviceStatus(
                name=d.name,
                media_type=d.media_type,
                mode=d.mode or "",
                max_jobs=d.max_jobs,
                reserved_by=tuple(sorted(d.holders)),
                volumes=tuple(sorted(set(d.volumes.values()))),
                waiting=tuple(waiting.get(d.name, ())),
            )
            for d in self.devices.values()
        )
