"""Device reservation, as Bareos does it: a job waits for a device, it never fails because one is busy.

A job asks for one of the devices its Storage names (in order) and, for a local copy, a read device
too, all or nothing. A device takes a job when it is free, or when it already serves jobs of the
same kind that the new one can join: appending jobs share a device up to its `Maximum Concurrent
Jobs` when they append to the same volume; reading jobs share it up to the same limit. Otherwise
the job waits, with a machine-readable reason (`waiting_for_device device=NAME`), in arrival order:
a device that an earlier waiting job wants is not given to a later one, so nobody starves.

`choose` is pure; `Reservations` keeps the state and wakes waiting jobs when a device is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ReservationError(Exception):
    """A request no device could ever satisfy (unknown device, wrong media type); not a wait."""


@dataclass(eq=False)
class Device:
    """A configured File device and who holds it."""

    name: str
    media_type: str
    archive: Path
    label_media: bool
    max_jobs: int
    direct_io: bool = True  # volumes through O_DIRECT (storaged.direct_io)
    holders: set[str] = field(default_factory=set)
    mode: str | None = None  # "append" or "read" while reserved
    volumes: dict[str, str] = field(default_factory=dict)  # appending job -> the volume it writes

    @property
    def busy(self) -> bool:
        return len(self.holders) >= self.max_jobs


@dataclass(frozen=True)
class Request:
    """What one job needs: a device among `devices` and, for a local copy, a read device."""

    job: str
    devices: tuple[str, ...]
    media_type: str
    append: bool
    volume: str | None = None  # the volume an appending job was given
    read_device: str | None = None
    read_media_type: str | None = None


@dataclass(frozen=True)
class Grant:
    device: Device
    read_device: Device | None = None


@dataclass(frozen=True)
class Wait:
    """Why a request waits: the code, the device, and a sentence for the operator."""

    device: str
    text: str
    code: str = "waiting_for_device"

    @property
    def resource(self) -> str:
        return f"device={self.device}"

    def describe(self) -> str:
        return f"{self.code} {self.resource}"


def _problem(device: Device, mode: str, volume: str | None) -> str | None:
    """Why `device` cannot take one more job in `mode` now; None when it can."""
    if not device.holders:
        return None
    held = ", ".join(sorted(device.holders))
    if device.mode != mode:
        return f"device {device.name!r} is {'reading' if device.mode == 'read' else 'appending'} for {held}"
    if device.busy:
        return f"device {device.name!r} is busy with {held} (Maximum Concurrent Jobs = {device.max_jobs})"
    in_use = set(device.volumes.values())
    if mode == "append" and volume is not None and in_use and volume not in in_use:
        return f"device {device.name!r} is appending to volume {', '.join(sorted(in_use))}, not {volume}"
    return None


def check(devices: dict[str, Device], request: Request) -> None:
    """Refuse requests that waiting can never satisfy."""
    names = request.devices
    if not names:
        raise ReservationError("the job names no device")
    known = [devices[n] for n in names if n in devices]
    if not known:
        raise ReservationError(
            f"device {', '.join(repr(n) for n in names)} is not configured on this Storage Daemon "
            f"(known: {', '.join(sorted(devices)) or 'none'})"
        )
    if not any(d.media_type == request.media_type for d in known):
        raise ReservationError(
            f"media type mismatch: job wants {request.media_type!r}, device "
            + ", ".join(f"{d.name!r} has {d.media_type!r}" for d in known)
        )
    if request.read_device is not None:
        reader = devices.get(request.read_device)
        if reader is None:
            raise ReservationError(
                f"read device {request.read_device!r} is not configured on this Storage Daemon"
            )
        wanted = request.read_media_type or reader.media_type
        if reader.media_type != wanted:
            raise ReservationError(
                f"media type mismatch: the source volumes are {wanted!r}, device "
                f"{reader.name!r} has {reader.media_type!r}"
            )


def choose(
    devices: dict[str, Device], request: Request, held_back: frozenset[str] = frozenset()
) -> Grant | Wait:
    """The devices a request gets now, or why it waits (pure). `held_back` are devices promised to
    jobs that asked earlier and still wait."""
    mode = "append" if request.append else "read"
    candidates = [
        devices[n]
        for n in request.devices
        if n in devices and devices[n].media_type == request.media_type
    ]
    first_wait: Wait | None = None
    for device in candidates:
        problem = _problem(device, mode, request.volume)
        if problem is None and device.name in held_back:
            problem = f"device {device.name!r} is promised to a job that has waited longer"
        if (
            problem is None
            and request.read_device is not None
            and request.read_device != device.name
        ):
            reader = devices[request.read_device]
            read_problem = _problem(reader, "read", None)
            if read_problem is None and reader.name in held_back:
                read_problem = f"device {reader.name!r} is promised to a job that has waited longer"
            if read_problem is not None:
                first_wait = first_wait or Wait(reader.name, read_problem)
                continue
            return Grant(device, reader)
        if problem is None:
            return Grant(device, device if request.read_device == device.name else None)
        first_wait = first_wait or Wait(device.name, problem)
    assert first_wait is not None  # check() guarantees a candidate
    return first_wait


def take(grant: Grant, request: Request) -> None:
    grant.device.holders.add(request.job)
    grant.device.mode = "append" if request.append else "read"
    if request.append and request.volume is not None:
        grant.device.volumes[request.job] = request.volume
    reader = grant.read_device
    if reader is not None and reader is not grant.device:
        reader.holders.add(request.job)
        reader.mode = "read"


@dataclass(eq=False)
class _Waiter:
    request: Request
    granted: asyncio.Future[Grant]
    wait: Wait
    on_wait: Callable[[Wait], object] | None


class Reservations:
    """The devices of a Storage Daemon and the jobs waiting for them, in arrival order."""

    def __init__(self, devices: dict[str, Device]) -> None:
        self.devices = devices
        self._waiting: list[_Waiter] = []

    def waiting(self) -> list[tuple[str, Wait]]:
        return [(w.request.job, w.wait) for w in self._waiting]

    async def reserve(
        self, request: Request, on_wait: Callable[[Wait], object] | None = None
    ) -> Grant:
        """The devices for `request`, waiting as long as it takes (cancel the task to give up).
        `on_wait` hears the reason to wait, and each new one."""
        check(self.devices, request)
        decision = choose(self.devices, request, _wanted_by(self._waiting))
        if isinstance(decision, Grant):
            take(decision, request)
            return decision
        waiter = _Waiter(request, asyncio.get_running_loop().create_future(), decision, on_wait)
        self._waiting.append(waiter)
        if on_wait is not None:
            on_wait(decision)
        try:
            return await asyncio.shield(waiter.granted)
        except asyncio.CancelledError:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                self._grant_waiting()  # what it held back may now go to a later job
            elif waiter.granted.done():
                self.release(request.job)  # granted in the same instant as it was canceled
            raise

    def release(self, job: str) -> None:
        """Give back everything `job` holds, then start the waiting jobs that now fit."""
        for device in self.devices.values():
            if job in device.holders:
                device.holders.discard(job)
                device.volumes.pop(job, None)
                if not device.holders:
                    device.mode = None
        self._grant_waiting()

    def volume_changed(self, device: Device, job: str, volume: str) -> None:
        """An appending job moved on to another volume (the old one filled up)."""
        if job in device.holders:
            device.volumes[job] = volume

    def _grant_waiting(self) -> None:
        still: list[_Waiter] = []
        for waiter in self._waiting:
            decision = choose(self.devices, waiter.request, _wanted_by(still))
            if isinstance(decision, Grant):
                take(decision, waiter.request)
                waiter.granted.set_result(decision)
                continue
            still.append(waiter)
            if decision != waiter.wait:
                waiter.wait = decision
                if waiter.on_wait is not None:
                    waiter.on_wait(decision)
        self._waiting = still


def _wanted_by(waiters: Sequence[_Waiter]) -> frozenset[str]:
    """Devices that jobs still waiting could use: a later job must not take them."""
    names: set[str] = set()
    for waiter in waiters:
        names.update(waiter.request.devices)
        if waiter.request.read_device is not None:
            names.add(waiter.request.read_device)
    return frozenset(names)
