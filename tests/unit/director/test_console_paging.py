"""Long console answers in parts under the frame limit (#15): paging, joining, chain selection."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from console.client import join_rows
from director.catalog import JobRow
from director.console.paging import PART_BYTES, Lines, Table, Window, listing, paged
from director.console.registry import Reply, parse_command
from director.restore.selection import chain_to
from protocol.frames import MAX_FRAME_SIZE, encode_frame
from protocol.messages import ConsoleReply, decode_message, encode_message


async def _rows(n: int) -> AsyncGenerator[dict[str, Any], None]:
    for i in range(n):
        yield {
            "fileindex": i + 1,
            "path": f"/data/dir-{i // 1000:03d}/some-longish-file-name-{i:07d}",
        }


async def _drain(reply: Reply) -> list[Reply]:
    assert reply.stream is not None
    return [part async for part in reply.stream]


async def test_a_long_listing_goes_in_parts_under_the_frame_limit() -> None:
    reply = listing("files", _rows(50_000), Lines(lambda r: r["path"]))
    parts = await _drain(reply)
    assert len(parts) > 5
    for part in parts:
        wire = ConsoleReply(
            code=1000, ok=True, text=part.text, data=part.data, more=True, rows=part.rows
        )
        assert len(encode_frame(encode_message(wire))) < MAX_FRAME_SIZE
        assert len(part.text) <= PART_BYTES + 200
        assert part.rows == "files"
    lines = [line for p in parts for line in p.text.splitlines()] + reply.text.splitlines()
    assert len(lines) == 50_000 and lines[-1].endswith("0049999")
    joined: list[Any] = [row for p in parts for row in p.data]
    final = ConsoleReply(code=1000, ok=True, text=reply.text, data=reply.data)
    assert len(join_rows(final, {"files": joined}).data["files"]) == 50_000


async def test_a_short_listing_is_one_plain_reply() -> None:
    reply = listing("files", _rows(3), Lines(lambda r: r["path"]))
    assert await _drain(reply) == []
    assert reply.text.count("\n") == 2 and len(reply.data["files"]) == 3


async def test_empty_listing_and_table_layout() -> None:
    reply = listing("jobs", _rows(0), Table(["jobid"]))
    await _drain(reply)
    assert reply.text == "No results to list." and reply.data == {"jobs": []}
    table = listing("jobs", _rows(2), Table(["fileindex", "path"]))
    await _drain(table)
    assert table.text.splitlines()[1].startswith("| fileindex | path")
    assert table.text.splitlines()[-1].startswith("+---")


async def test_a_dotted_key_and_a_trailer() -> None:
    reply = listing(
        "estimate.listing",
        _rows(2),
        Lines(lambda r: r["path"]),
        data={"estimate": {"files": 2}},
        trailer="2 OK",
    )
    await _drain(reply)
    assert reply.data["estimate"]["files"] == 2 and len(reply.data["estimate"]["listing"]) == 2
    assert reply.text.endswith("\n2 OK")
    joined = join_rows(
        ConsoleReply(code=1000, ok=True, text="", data=reply.data), {"estimate.listing": ["x"]}
    )
    assert (
        joined.data["estimate"]["listing"][0] == "x"
        and len(joined.data["estimate"]["listing"]) == 3
    )


async def test_paged_reads_one_page_at_a_time_within_the_window() -> None:
    calls: list[tuple[int, int, int]] = []

    async def fetch(after: int, size: int, offset: int) -> list[int]:
        calls.append((after, size, offset))
        start = after + 1 + offset
        return list(range(start, min(start + size, 2501)))

    got = [i async for i in paged(fetch, lambda i: i, Window(), 0)]
    assert got == list(range(1, 2501)) and len(calls) == 3
    calls.clear()
    window = Window.parse(parse_command("list files jobid=1 limit=1500 offset=10"))
    got = [i async for i in paged(fetch, lambda i: i, window, 0)]
    assert got == list(range(11, 1511))
    assert calls[0][2] == 10 and all(c[2] == 0 for c in calls[1:])


def test_rows_stays_off_the_wire_unless_set() -> None:
    plain = ConsoleReply(code=1000, ok=True, text="x", data=None)
    assert b"rows" not in encode_message(plain)
    part = ConsoleReply(code=1000, ok=True, text="x", data=[1], more=True, rows="files")
    decoded = decode_message(encode_message(part))
    assert (
        isinstance(decoded, ConsoleReply)
        and decoded.rows == "files"
        and decoded.more
        and list(decoded.data) == [1]
    )


def _job(job_id: int, level: str, start: float, status: str = "T") -> JobRow:
    return JobRow(
        job_id,
        f"j.{job_id}",
        "j",
        "B",
        level,
        status,
        1,
        1,
        1,
        start,
        start,
        start + 1,
        0,
        0,
        0,
        0,
        0,
        0,
        10,
        None,
        None,
    )


def test_chain_to_an_incremental_after_a_differential() -> None:
    jobs = [
        _job(1, "F", 10),
        _job(2, "I", 20),
        _job(3, "D", 30),
        _job(4, "I", 40),
        _job(5, "I", 50, "E"),
        _job(6, "I", 60),
        _job(7, "I", 70),
        _job(8, "F", 80),
    ]
    assert [j.job_id for j in chain_to(jobs, jobs[5])] == [1, 3, 4, 6]
    assert [j.job_id for j in chain_to(jobs, jobs[2])] == [1, 3]
    assert [j.job_id for j in chain_to(jobs, jobs[1])] == [1, 2]
    assert [j.job_id for j in chain_to(jobs, jobs[0])] == [1]
    assert chain_to(jobs[1:3], jobs[1]) == []  # no Full before it
