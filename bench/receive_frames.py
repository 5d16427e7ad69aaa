"""The receive path alone: frames over loopback TLS into `StreamConnection.recv_event`, receiver CPU.

    .venv/bin/python bench/receive_frames.py [--frames 1024] [--size 524288]

A uvloop server with the daemons' `FrameStream` and TLS context (a private CA made in a temporary
directory) receives `--frames` frames of `--size` bytes from a client process (blocking `ssl`
socket), then prints the receiving process's CPU seconds (user + system, `os.times`) and the wall
time. The receiver does nothing with the frames but count them: what is left is the event loop,
TLS decryption and FrameStream. To compare commits, run the script from each checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import pki, tls
from common.link import Limits
from common.net import StreamConnection
from common.stream import FrameStream
from protocol.frames import HEADER


def _send(port: int, files: pki.CertFiles, ca: Path, frames: int, size: int) -> None:
    context = tls.client_context(files.cert, files.key, ca)
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw) as sock,
    ):
        body = os.urandom(size)
        header = HEADER.pack(size)
        for _ in range(frames):
            sock.sendall(header)
            sock.sendall(body)
        sock.sendall(HEADER.pack(0))  # an empty frame: the end
        sock.unwrap()


async def _receive(frames: int, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="receive-frames-") as tmp:
        files = pki.init_pki(Path(tmp), ["bench"], ["127.0.0.1"])["bench"]
        ca = Path(tmp) / "ca.pem"
        streams: list[FrameStream] = []

        def protocol() -> FrameStream:
            streams.append(FrameStream())
            return streams[-1]

        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            protocol, "127.0.0.1", 0, ssl=tls.server_context(files.cert, files.key, ca)
        )
        port = server.sockets[0].getsockname()[1]
        sender = multiprocessing.get_context("spawn").Process(
            target=_send, args=(port, files, ca, frames, size)
        )
        sender.start()
        while not streams:
            await asyncio.sleep(0.01)
        conn = StreamConnection(streams[0], Limits(max_frame_size=max(size, 1 << 20)), "sender")
        conn.mark_authenticated()
        before, wall = os.times(), time.perf_counter()
        total = 0
        while event := await conn.recv_event():
            assert not isinstance(event, int)
            total += len(event)
        after, wall = os.times(), time.perf_counter() - wall
        user, system = after.user - before.user, after.system - before.system
        print(
            f"{total / 2**20:.0f} MiB in {frames} frames: receiver CPU {user + system:.2f} s "
            f"(user {user:.2f}, sys {system:.2f}), wall {wall:.2f} s"
        )
        sender.join()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--size", type=int, default=512 * 1024)
    args = parser.parse_args()
    uvloop.run(_receive(args.frames, args.size))


if __name__ == "__main__":
    main()
