"""Decode cost of the bulk control messages (attribute and accurate batches), per record.

    .venv/bin/python bench/decode_batches.py [--records 2000] [--rounds 200]

Prints milliseconds per batch for the full decode (`decode_message`) next to the bare msgpack
unpack, so the protocol layer's own share is visible.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import msgpack

from protocol.jobs import AccurateBatch, AttributeBatch
from protocol.messages import Message, decode_message, encode_message


def _per_call(fn: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    n = args.records
    batches: dict[str, Message] = {
        "attrs": AttributeBatch(
            job="bench", records=tuple((i, 2 + i % 3, b"x" * 120) for i in range(1, n + 1))
        ),
        "accurate": AccurateBatch(
            entries=tuple(
                (
                    b"/srv/data/dir%d/file%d" % (i // 1000, i),
                    1_700_000_000 * 10**9 + i,
                    0,
                    4096,
                    0o100644,
                )
                for i in range(n)
            )
        ),
    }
    print(f"{'message':10} {'records':>8} {'decode ms':>10} {'us/record':>10} {'unpack ms':>10}")
    for name, msg in batches.items():
        body = encode_message(msg)
        full = _per_call(functools.partial(decode_message, body), args.rounds)
        raw = _per_call(functools.partial(msgpack.unpackb, body, use_list=False), args.rounds)
        print(f"{name:10} {n:>8} {full * 1e3:>10.2f} {full / n * 1e6:>10.2f} {raw * 1e3:>10.2f}")


if __name__ == "__main__":
    main()
