"""Bare copies: the bytes of a copy moved with the Storage Daemons' transport design and nothing else.

    .venv/bin/python bench/copy_floor.py local SRC DST
    .venv/bin/python bench/copy_floor.py remote SRC DST [--tls DIR]

`local` moves SRC's bytes to the end of DST as a local copy job does at the least: one thread reads
1 MiB pieces, another appends them (4 MiB at a time), then fsync. A Storage Daemon does more (it
checks each block, parses its records, builds and sums new blocks).

`remote` does the same through a loopback TCP connection between two processes, as a remote copy
job does at the least: the child reads and sends (a reader thread and a sending thread), this
process receives into fresh 4 MiB buffers and writes (a receiving thread and a writing thread). With `--tls DIR` the connection is
mutual TLS as between two Storage Daemons (a private CA and a certificate made in DIR, the same
context settings, `common.blocking_tls` as on a bulk data connection).

The clock starts once the connection is up and stops after the fsync. Prints one JSON line:
{"seconds": ..., "cpu": [sender, receiver]} (cpu: user + system seconds of each process; for
`local` the one process).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import gather, pki, tls
from common.blocking_tls import BioTls

PIECE: Final = 1024 * 1024  # a volume block
BATCH: Final = 4 * 1024 * 1024  # what a copy hands on at once (storaged.sessions.COPY_BATCH_BYTES)
AHEAD: Final = 4  # batches queued between two threads

Stream = socket.socket | BioTls


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read_batches(src: Path) -> Iterator[list[bytes]]:
    fd = os.open(src, os.O_RDONLY)
    try:
        batch: list[bytes] = []
        size = 0
        while piece := os.read(fd, PIECE):
            batch.append(piece)
            size += len(piece)
            if size >= BATCH:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch
    finally:
        os.close(fd)


def _threaded(
    produce: Callable[[], Iterator[list[bytes] | list[memoryview]]],
) -> Iterator[list[bytes] | list[memoryview]]:
    """Run a producer in its own thread, AHEAD batches ahead of the consumer."""
    handoff: queue.Queue[list[bytes] | list[memoryview] | BaseException | None] = queue.Queue(AHEAD)

    def run() -> None:
        try:
            for item in produce():
                handoff.put(item)
            handoff.put(None)
        except BaseException as exc:  # delivered to the consumer
            handoff.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while (item := handoff.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def _append(dst: Path, batches: Iterator[list[bytes] | list[memoryview]]) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for batch in batches:
            gather.write_all(partial(os.writev, fd), batch)
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_local(src: Path, dst: Path) -> dict[str, object]:
    started, cpu = time.perf_counter(), _cpu()
    _append(dst, _threaded(lambda: _read_batches(src)))
    return {"seconds": time.perf_counter() - started, "cpu": [_cpu() - cpu]}


def _contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    files = pki.init_pki(directory, ["floor"], ["127.0.0.1"])["floor"]
    ca = directory / "ca.pem"
    return tls.server_context(files.cert, files.key, ca), tls.client_context(
        files.cert, files.key, ca
    )


def _receive(stream: Stream) -> Iterator[list[memoryview]]:
    while True:
        buf = bytearray(BATCH)
        view = memoryview(buf)
        got = 0
        while got < BATCH and (n := stream.recv_into(view[got:], BATCH - got)):
            got += n
        if got:
            yield [view[:got]]
        if got < BATCH:
            return


def copy_remote(src: Path, dst: Path, tls_dir: Path | None) -> dict[str, object]:
    server_ctx = _contexts(tls_dir)[0] if tls_dir is not None else None
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        command = [sys.executable, __file__, "send", str(port), str(src)]
        if tls_dir is not None:
            command += ["--tls", str(tls_dir)]
        sender = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        listener.settimeout(30)
        conn, _addr = listener.accept()
    stream: Stream = conn
    if server_ctx is not None:
        stream = BioTls(conn, server_ctx, server_side=True)
        stream.handshake(30)
    conn.settimeout(None)  # blocking, as a bulk data connection after its handshake
    started, cpu = time.perf_counter(), _cpu()
    _append(dst, _threaded(lambda: _receive(stream)))
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    conn.close()  # the sender waits for this end before it exits
    out, _err = sender.communicate(timeout=60)
    if sender.returncode != 0:
        raise SystemExit(f"the sending process failed (exit {sender.returncode})")
    return {"seconds": seconds, "cpu": [float(out.strip()), cpu]}


def send(port: int, src: Path, tls_dir: Path | None) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream: Stream = sock
    if tls_dir is not None:
        stream = BioTls(sock, _contexts(tls_dir)[1], server_side=False)
        stream.handshake(30)
    sock.settimeout(None)
    cpu = _cpu()
    for batch in _threaded(lambda: _read_batches(src)):
        for piece in batch:
            stream.sendall(piece)
    sock.shutdown(socket.SHUT_WR)
    cpu = _cpu() - cpu
    while sock.recv(65536):  # until the receiver has written everything and closes
        pass
    print(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("local", "remote", "send"))
    parser.add_argument("args", nargs=2, help="SRC DST (send: PORT SRC)")
    parser.add_argument(
        "--tls", type=Path, help="mutual TLS with a CA and certificate made in this directory"
    )
    ns = parser.parse_args()
    if ns.mode == "send":
        send(int(ns.args[0]), Path(ns.args[1]), ns.tls)
        return
    src, dst = Path(ns.args[0]), Path(ns.args[1])
    result = copy_local(src, dst) if ns.mode == "local" else copy_remote(src, dst, ns.tls)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
