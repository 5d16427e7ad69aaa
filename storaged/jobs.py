"""Storage Daemon jobs: setup and device reservation, the one-time key, the FD data session."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.net import Connection
from protocol.jobs import (
    BootstrapSpec,
    JobEnd,
    JobMessage,
    JobStatusChange,
    SdJobSetup,
    VolumeAssignment,
)
from protocol.messages import Code, Message


class SdJobError(Exception):
    """A job cannot be set up or run on this Storage Daemon; the text goes to the Director."""


def make_key() -> str:
    """A one-time job key in the Bareos Authorization shape (XXXX-XXXX-…), 128 bits of randomness."""
    raw = secrets.token_bytes(16)
    letters = "".join(chr(ord("A") + (b & 0xF)) + chr(ord("A") + (b >> 4)) for b in raw)
    return "-".join(letters[i : i + 4] for i in range(0, len(letters), 4))


@dataclass(eq=False)
class Device:
    """A configured File device and who holds it."""

    name: str
    media_type: str
    archive: Path
    label_media: bool
    max_jobs: int
    holders: set[str] = field(default_factory=set)
    mode: str | None = None  # "append" or "read" while reserved

    @property
    def busy(self) -> bool:
        return len(self.holders) >= self.max_jobs


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
    volume_replies: asyncio.Queue[VolumeAssignment] = field(default_factory=lambda: asyncio.Queue(maxsize=4))
    end: JobEnd | None = None
    used_key: bool = False

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
        await self.tell_director(JobMessage(job=self.name, level=level, text=text, time=time.time()))

    def finish(self, status: str, text: str = "") -> JobEnd:
        if self.end is None:
            self.status = status
            self.end = JobEnd(
                code=Code.SD_JOB_END, job=self.name, status=status, files=self.files,
                bytes=self.bytes, errors=self.errors, text=text,
            )
        self.finished.set()
        return self.end


@dataclass
class JobRegistry:
    """Jobs by unique name, devices by name, and the session counter."""

    devices: dict[str, Device]
    session_time: int = field(default_factory=lambda: int(time.time()))
    next_session: int = 1
    jobs: dict[str, SdJob] = field(default_factory=dict)

    def create(self, setup: SdJobSetup) -> SdJob:
        if setup.job in self.jobs:
            raise SdJobError(f"job {setup.job} already exists on this Storage Daemon")
        device = self.devices.get(setup.device)
        if device is None:
            raise SdJobError(
                f"device {setup.device!r} is not configured on this Storage Daemon "
                f"(known: {', '.join(sorted(self.devices)) or 'none'})"
            )
        if device.media_type != setup.media_type:
            raise SdJobError(
                f"media type mismatch: job wants {setup.media_type!r}, device {device.name!r} has {device.media_type!r}"
            )
        if device.busy:
            raise SdJobError(f"device {device.name!r} is busy with {', '.join(sorted(device.holders))}")
        read_device: Device | None = None
        if setup.read_device is not None:
            read_device = self.devices.get(setup.read_device)
            if read_device is None:
                raise SdJobError(f"read device {setup.read_device!r} is not configured on this Storage Daemon")
            wanted = setup.read_media_type or read_device.media_type
            if read_device.media_type != wanted:
                raise SdJobError(f"media type mismatch: the source volumes are {wanted!r}, device "
                                 f"{read_device.name!r} has {read_device.media_type!r}")
            if read_device is not device and read_device.busy:
                raise SdJobError(f"read device {read_device.name!r} is busy with {', '.join(sorted(read_device.holders))}")
        device.holders.add(setup.job)
        device.mode = "append" if setup.append else "read"
        if read_device is not None and read_device is not device:
            read_device.holders.add(setup.job)
            read_device.mode = "read"
        job = SdJob(setup=setup, key=make_key(), session_id=self.next_session,
                    session_time=self.session_time, device=device, read_device=read_device)
        self.next_session += 1
        self.jobs[setup.job] = job
        return job

    def release(self, job: SdJob) -> None:
        for device in (job.device, job.read_device):
            if device is not None:
                device.holders.discard(job.name)
                if not device.holders:
                    device.mode = None
        self.jobs.pop(job.name, None)

    def key_for(self, job_name: str) -> str | None:
        job = self.jobs.get(job_name)
        if job is None or job.used_key:
            return None
        return job.key

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"device": d.name, "media_type": d.media_type, "archive": str(d.archive),
             "reserved_by": sorted(d.holders), "mode": d.mode}
            for d in self.devices.values()
        ]
