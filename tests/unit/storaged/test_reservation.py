"""Device reservation: jobs wait for a busy device in arrival order, share it when they may."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storaged.reservation import (
    Device,
    Grant,
    Request,
    ReservationError,
    Reservations,
    Wait,
    choose,
)


def _devices(*specs: tuple[str, int], media: str = "File") -> dict[str, Device]:
    return {name: Device(name, media, Path("/tmp"), True, max_jobs) for name, max_jobs in specs}


def _append(job: str, volume: str = "Full-0001", devices: tuple[str, ...] = ("D1",)) -> Request:
    return Request(job=job, devices=devices, media_type="File", append=True, volume=volume)


def _read(job: str, devices: tuple[str, ...] = ("D1",)) -> Request:
    return Request(job=job, devices=devices, media_type="File", append=False)


def test_free_device_is_granted() -> None:
    devices = _devices(("D1", 1))
    decision = choose(devices, _append("a"))
    assert isinstance(decision, Grant) and decision.device.name == "D1"


def test_busy_device_is_a_wait_with_a_reason() -> None:
    devices = _devices(("D1", 1))
    devices["D1"].holders.add("other")
    devices["D1"].mode = "append"
    decision = choose(devices, _append("a"))
    assert isinstance(decision, Wait)
    assert decision.describe() == "waiting_for_device device=D1"
    assert "busy with other" in decision.text


def test_appending_jobs_share_a_device_on_the_same_volume_only() -> None:
    devices = _devices(("D1", 3))
    devices["D1"].holders.add("x")
    devices["D1"].mode = "append"
    devices["D1"].volumes["x"] = "Full-0001"
    assert isinstance(choose(devices, _append("a", "Full-0001")), Grant)
    wrong = choose(devices, _append("b", "Full-0002"))
    assert isinstance(wrong, Wait) and "appending to volume Full-0001, not Full-0002" in wrong.text


def test_read_and_append_do_not_share() -> None:
    devices = _devices(("D1", 5))
    devices["D1"].holders.add("restore")
    devices["D1"].mode = "read"
    assert isinstance(choose(devices, _append("a")), Wait)
    assert isinstance(choose(devices, _read("r2")), Grant)


def test_a_free_device_of_the_storage_is_chosen() -> None:
    devices = _devices(("D1", 1), ("D2", 1))
    devices["D1"].holders.add("x")
    devices["D1"].mode = "append"
    decision = choose(devices, _append("a", devices=("D1", "D2")))
    assert isinstance(decision, Grant) and decision.device.name == "D2"


def test_local_copy_takes_both_devices_or_none() -> None:
    devices = _devices(("W", 1), ("R", 1))
    devices["R"].holders.add("restore")
    devices["R"].mode = "read"
    request = Request(
        job="copy", devices=("W",), media_type="File", append=True, volume="V", read_device="R"
    )
    decision = choose(devices, request)
    assert isinstance(decision, Wait) and decision.device == "R"
    assert not devices["W"].holders  # nothing taken while waiting: no deadlock with the reader


def test_impossible_requests_are_refused_not_waited() -> None:
    devices = _devices(("D1", 1))

    async def go(request: Request) -> None:
        await Reservations(devices).reserve(request)

    with pytest.raises(ReservationError, match="not configured"):
        asyncio.run(go(_append("a", devices=("Nope",))))
    with pytest.raises(ReservationError, match="media type mismatch"):
        asyncio.run(go(Request(job="a", devices=("D1",), media_type="LTO", append=True)))


async def test_waiting_jobs_start_in_arrival_order_when_the_device_frees() -> None:
    devices = _devices(("D1", 1))
    res = Reservations(devices)
    first = await res.reserve(_append("a"))
    assert first.device.holders == {"a"}
    heard: dict[str, list[str]] = {"b": [], "c": []}
    b = asyncio.create_task(res.reserve(_append("b"), lambda w: heard["b"].append(w.describe())))
    await asyncio.sleep(0)
    c = asyncio.create_task(res.reserve(_append("c"), lambda w: heard["c"].append(w.describe())))
    await asyncio.sleep(0)
    assert [job for job, _w in res.waiting()] == ["b", "c"]
    assert heard["b"] == ["waiting_for_device device=D1"]
    res.release("a")
    await b
    assert not c.done() and devices["D1"].holders == {"b"}
    res.release("b")
    await c
    assert devices["D1"].holders == {"c"}


async def test_a_later_job_does_not_overtake_an_earlier_waiting_one() -> None:
    devices = _devices(("D1", 2))
    res = Reservations(devices)
    await res.reserve(_read("r1"))
    writer = asyncio.create_task(res.reserve(_append("w")))  # waits: the device is reading
    await asyncio.sleep(0)
    late_reader = asyncio.create_task(res.reserve(_read("r2")))  # could share, but w came first
    await asyncio.sleep(0)
    assert not late_reader.done()
    res.release("r1")
    await writer
    res.release("w")
    await late_reader


async def test_canceling_a_waiting_job_withdraws_it() -> None:
    devices = _devices(("D1", 1))
    res = Reservations(devices)
    await res.reserve(_append("a"))
    waiting = asyncio.create_task(res.reserve(_append("b")))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert res.waiting() == []
    res.release("a")
    assert devices["D1"].holders == set()
