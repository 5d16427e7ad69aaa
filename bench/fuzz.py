"""Fuzz every decoder that reads bytes from a peer or a file: only documented errors may come out.

    .venv/bin/python bench/fuzz.py [--inputs 1000000] [--target NAME ...] [--seed N] [--hang 1.0]

Each target is fed mutations of valid seed inputs (bit flips, byte and integer replacements,
insertions, deletions, splices, msgpack-shaped garbage) and random bytes. A crash is any exception
outside the target's documented error types; a hang is one input that takes longer than `--hang`
seconds. Prints executions per second, crashes and hangs per target, and the first crashing inputs
(hex); exits 1 when any target crashed or hung. `tests/unit/protocol/test_fuzz_decoders.py` runs the
same targets in CI with a bounded hypothesis budget. Target: 1,000,000 inputs per decoder, 0 crashes,
0 hangs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgpack
from pydantic import ValidationError

from common.config.errors import ConfigError
from common.config.lexer import Kind, _tokens
from common.config.parser import parse_file
from director.console.registry import CommandError, parse_command
from protocol import codec, jobs
from protocol.attributes import FileAttributes, FileType, decode_attributes, encode_attributes
from protocol.errors import DecodeError, ProtocolError
from protocol.fileset import FileSetSpec
from protocol.frames import FrameDecoder, Signal, encode_frame, encode_signal
from protocol.handshake import Acceptor
from protocol.messages import (
    Challenge,
    ChallengeResponse,
    ConsoleCommand,
    ConsoleReply,
    Hello,
    decode_message,
    encode_message,
)
from protocol.records import Record, decode_body, encode_batch, encode_batch_parts, unpack_data

HANG_SECONDS: Final = 1.0
MAX_INPUT: Final = 4096


@dataclass(frozen=True)
class Target:
    """One decoder: what to call, which exceptions it may raise, valid inputs to mutate."""

    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: tuple[bytes, ...]


def _frames(data: bytes) -> object:
    decoder = FrameDecoder(max_frame_size=1024)
    for i in range(0, len(data), 7):  # fed in pieces, as a socket delivers them
        decoder.feed(data[i : i + 7])
        decoder.events()
    return decoder.buffered


def _batch(data: bytes) -> object:
    out = decode_body(data)
    if isinstance(out, list):
        for record in out:
            if record.stream in (2, 4):
                unpack_data(record.payload)
    return out


def _fileset(data: bytes) -> object:
    return FileSetSpec.model_validate(codec.unpack(data, max_depth=codec.MAX_DEPTH))


def _handshake(data: bytes) -> object:
    """Frames of messages, fed to an acceptor in order (whatever a caller may say before auth)."""
    side = Acceptor(lambda hello: "secret" if hello.name == "fd" else None, lambda: b"\x01" * 32)
    decoder = FrameDecoder(max_frame_size=16 * 1024)
    decoder.feed(data)
    for event in decoder.events():
        if isinstance(event, Signal):
            continue
        side.receive(decode_message(event.body))
        if side.failed or side.done:
            break
    return side.state


def _text(data: bytes) -> str:
    # No includes: `@file` and `@|"command"` would read files and run commands.
    return data.decode("utf-8", errors="replace").replace("@", "")


def _lexer(data: bytes) -> object:
    return [t for t in _tokens(Path("fuzz.conf"), (), _text(data)) if t.kind is not Kind.EOL]


_PARSER_DIR = Path(tempfile.mkdtemp(prefix="strongroom-fuzz-"))


def _parser(data: bytes) -> object:
    path = _PARSER_DIR / "fuzz.conf"
    path.write_text(_text(data), encoding="utf-8")
    return parse_file(path)


def _console(data: bytes) -> object:
    return parse_command(data.decode("utf-8", errors="replace"))


def _attrs_seed() -> bytes:
    return encode_attributes(
        FileAttributes(
            b"/etc/passwd",
            FileType.REGULAR,
            0o100644,
            0,
            0,
            1234,
            1,
            2,
            3,
            link_target=b"",
            digest_algorithm="SHA256",
        )
    )


def _records() -> list[Record]:
    return [
        Record(1, 1, _attrs_seed()),
        Record(1, 2, b"\x00" * 8 + b"hello"),
        Record(2, 3, b"\x91\xc4\x01x"),
    ]


_MESSAGES: Final = (
    Hello(role="client", name="fd", version="1.0"),
    Challenge(nonce=b"\x02" * 32),
    ChallengeResponse(digest=b"\x03" * 32),
    ConsoleCommand(line="status dir"),
    ConsoleReply(code=1000, ok=True, text="ok", data={"a": [1, 2]}),
    jobs.FdRestore(where=b"/tmp/r", hidden_indexes=((1, 2),)),
    jobs.AttributeBatch(job="j", records=((1, 1, b"x"),)),
    jobs.SdJobSetup(
        job_id=1,
        job="j",
        job_name="j",
        client="c",
        fileset="f",
        job_type="B",
        level="F",
        device="d",
        media_type="File",
        append=True,
        bootstrap=(
            jobs.BootstrapSpec(
                volume_name="v", session_id=1, session_time=2, file_indexes=((1, 3),)
            ),
        ),
    ),
)
_FILESET: Final = {
    "name": "fs",
    "include": [{"files": [b"/etc"], "options": [{"signature": "MD5", "wild": ["*.c"]}]}],
}
_CONFIG: Final = (
    b'Director {\n  Name = dir\n  Password = "s3cret"\n  Maximum Concurrent Jobs = 10\n}\n'
    b'FileSet { Name = "fs"; Include { File = /etc; Options { Signature = MD5 } } }\n'
)

TARGETS: Final[dict[str, Target]] = {
    "frames": Target(
        _frames,
        (ProtocolError,),
        (
            encode_frame(b"abc") + encode_signal(Signal.EOD) + encode_frame(b""),
            encode_signal(Signal.HEARTBEAT) * 3,
        ),
    ),
    "message": Target(decode_message, (DecodeError,), tuple(encode_message(m) for m in _MESSAGES)),
    "attributes": Target(decode_attributes, (DecodeError,), (_attrs_seed(),)),
    "record_batch": Target(
        _batch,
        (DecodeError,),
        (
            encode_batch(_records()),
            b"".join(bytes(p) for p in encode_batch_parts(_records())),
        ),
    ),
    "fileset": Target(_fileset, (DecodeError, ValidationError), (codec.pack(_FILESET),)),
    "handshake": Target(
        _handshake,
        (ProtocolError,),
        (b"".join(encode_frame(encode_message(m)) for m in _MESSAGES[:3]),),
    ),
    "config_lexer": Target(_lexer, (ConfigError,), (_CONFIG,)),
    "config_parser": Target(_parser, (ConfigError,), (_CONFIG,)),
    "console_line": Target(
        _console,
        (CommandError,),
        (
            b'run job="My Job" level=Full yes',
            b"restore jobid=1 where=/tmp/r all done",
        ),
    ),
}

_INTERESTING: Final = (
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0xC0,
    0xC1,
    0xC4,
    0xC6,
    0xD2,
    0xDC,
    0xDD,
    0xDE,
    0xDF,
    0x90,
    0x9F,
)


def mutate(rng: random.Random, seed: bytes, seeds: Sequence[bytes]) -> bytes:
    """One mutated input: a few random edits of a seed (no coverage feedback; cheap and broad)."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(8)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[pos % len(data)] = rng.choice(_INTERESTING)
        elif op == 2:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and data:
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 4:
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            data[pos:pos] = other[start : start + rng.randint(1, 64)]
        elif op == 5 and len(data) >= 4:
            at = pos % (len(data) - 3)
            data[at : at + 4] = rng.choice(
                (
                    b"\x7f\xff\xff\xff",
                    b"\xff\xff\xff\xff",
                    b"\x80\x00\x00\x00",
                    b"\x00\x00\x00\x00",
                    b"\x00\x0f\x42\x40",
                )
            )
        elif op == 6:
            data[pos:pos] = bytes([rng.choice((0x91, 0x81, 0xDC))]) * rng.randint(1, 600)
        else:
            data = bytearray(data[: rng.randrange(len(data) + 1)])
    return bytes(data[:MAX_INPUT])


def inputs(rng: random.Random, target: Target) -> Callable[[], bytes]:
    def one() -> bytes:
        if rng.random() < 0.1:
            return rng.randbytes(rng.randint(0, 64))
        if rng.random() < 0.05:
            return bytes(msgpack.packb(_random_value(rng, 4), use_bin_type=True))
        return mutate(rng, rng.choice(target.seeds), target.seeds)

    return one


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth > 0 else 5)
    if kind == 0:
        return rng.randint(-(2**63), 2**64 - 1)
    if kind == 1:
        return rng.randbytes(rng.randint(0, 8))
    if kind == 2:
        return rng.choice(("t", "hello", "name", "role", "x" * 40))
    if kind == 3:
        return rng.choice((None, True, 1.5))
    if kind == 4:
        return rng.randint(-5, 5)
    if kind in (5, 6):
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(("t", "name", "role", "digest", "k")): _random_value(rng, depth - 1)
        for _ in range(rng.randint(0, 4))
    }


@dataclass
class Result:
    name: str
    executions: int = 0
    seconds: float = 0.0
    crashes: list[tuple[bytes, str]] = field(default_factory=list)
    hangs: list[tuple[bytes, float]] = field(default_factory=list)


def fuzz(
    name: str, target: Target, count: int, rng: random.Random, hang: float = HANG_SECONDS
) -> Result:
    result = Result(name)
    make = inputs(rng, target)
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        data = make()
        before = clock()
        try:
            target.run(data)
        except target.allowed:
            pass
        except Exception as exc:  # the fuzzer's whole point: collect what escapes
            result.crashes.append((data, f"{type(exc).__name__}: {exc}"[:200]))
        spent = clock() - before
        if spent > hang:
            result.hangs.append((data, spent))
    result.executions = count
    result.seconds = clock() - start
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="only these targets"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hang", type=float, default=HANG_SECONDS, help="seconds one input may take"
    )
    args = parser.parse_args(argv)
    bad = 0
    print(f"{'target':<14} {'inputs':>10} {'exec/s':>10} {'crashes':>8} {'hangs':>6}")
    for name in args.target or list(TARGETS):
        result = fuzz(name, TARGETS[name], args.inputs, random.Random(args.seed), args.hang)
        rate = result.executions / result.seconds if result.seconds else 0.0
        print(
            f"{name:<14} {result.executions:>10} {rate:>10.0f} {len(result.crashes):>8} {len(result.hangs):>6}",
            flush=True,
        )
        for data, error in result.crashes[:3]:
            print(f"  crash: {error}\n    input: {data[:200].hex()}")
        for data, spent in result.hangs[:3]:
            print(f"  hang: {spent:.2f} s\n    input: {data[:200].hex()}")
        bad += len(result.crashes) + len(result.hangs)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
