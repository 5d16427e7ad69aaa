"""Gathered writes finish short writes in order and use as few calls as IOV_MAX allows."""

from __future__ import annotations

import pytest

from common import gather


class _Trickle:
    """A socket (or file) whose sendmsg takes at most `step` bytes per call (a signal, a full buffer)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.calls = 0
        self.data = bytearray()

    def sendmsg(self, buffers: list[memoryview]) -> int:
        self.calls += 1
        room = self.step
        for buf in buffers:
            take = bytes(buf[:room])
            self.data += take
            room -= len(take)
            if room == 0:
                break
        return self.step - room


@pytest.mark.parametrize("step", [1, 7, 1000, 10**9])
def test_gathered_send_finishes_short_writes_in_order(step: int) -> None:
    parts: list[bytes | memoryview] = [
        b"head",
        memoryview(b"0123456789" * 50)[3:400],
        b"",
        bytearray(b"tail" * 3),
    ]
    sock = _Trickle(step)
    gather.write_all(sock.sendmsg, parts)
    assert bytes(sock.data) == b"".join(bytes(p) for p in parts)


def test_gathered_send_sends_a_frame_in_one_call() -> None:
    parts: list[bytes | memoryview] = [
        b"h" * 15,
        memoryview(bytes(3_000)),
        b"x" * 20,
    ] * 600  # > IOV_MAX parts
    sock = _Trickle(10**9)
    gather.write_all(sock.sendmsg, parts)
    assert bytes(sock.data) == b"".join(bytes(p) for p in parts)
    assert sock.calls == -(-len(parts) // gather.IOV_MAX)
