"""Every decoder fed hostile bytes raises only its documented errors (bounded budget for CI).

The targets are `bench/fuzz.py`'s, which runs the long campaign (a million inputs per decoder).
"""

from __future__ import annotations

import contextlib
import random

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import TARGETS, fuzz, mutate
from protocol import codec
from protocol.errors import DecodeError
from protocol.messages import decode_message

BUDGET = settings(
    max_examples=150, deadline=500, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _check(name: str, data: bytes) -> None:
    target = TARGETS[name]
    with contextlib.suppress(*target.allowed):
        target.run(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@BUDGET
@given(data=st.binary(max_size=512))
def test_random_bytes(name: str, data: bytes) -> None:
    _check(name, data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@BUDGET
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_mutated_seeds(name: str, seed: int) -> None:
    target = TARGETS[name]
    rng = random.Random(seed)
    _check(name, mutate(rng, rng.choice(target.seeds), target.seeds))


def test_the_bench_runner_finds_nothing_in_a_short_run() -> None:
    for name, target in TARGETS.items():
        result = fuzz(name, target, 300, random.Random(13))
        assert not result.crashes, (name, result.crashes[:1])


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=8)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["t", "name", "role", "x"]), inner, max_size=4)
    ),
    max_leaves=20,
)


@BUDGET
@given(value=msgpack_values)
def test_any_msgpack_value_is_a_message_or_a_decode_error(value: object) -> None:
    with pytest.raises(DecodeError):
        decode_message(msgpack.packb(value, use_bin_type=True))


@BUDGET
@given(
    value=msgpack_values,
    tag=st.sampled_from(["hello", "response", "fd_restore", "attrs", "sd_job", "reply"]),
)
def test_any_fields_under_a_real_tag(value: object, tag: str) -> None:
    body = {
        "t": tag,
        "name": value,
        "digest": value,
        "where": value,
        "records": value,
        "data": value,
    }
    with contextlib.suppress(DecodeError):
        decode_message(msgpack.packb(body, use_bin_type=True))


def test_deep_nesting_is_a_decode_error_not_a_recursion_error() -> None:
    body = b"\x82\xa1t\xa5hello\xa4name" + b"\x91" * 500 + b"\xc0"
    with pytest.raises(DecodeError, match="deeper"):
        decode_message(body)
    with pytest.raises(DecodeError):
        codec.unpack(b"\x91" * 100_000 + b"\xc0", max_depth=codec.MAX_DEPTH)


def test_an_integer_digest_is_refused() -> None:
    with pytest.raises(DecodeError, match="digest"):
        decode_message(msgpack.packb({"t": "response", "digest": 10**9}))


def test_extension_types_and_timestamps_are_refused() -> None:
    with pytest.raises(DecodeError):
        codec.unpack(msgpack.packb(msgpack.ExtType(5, b"x")))
    with pytest.raises(DecodeError, match="Timestamp"):
        decode_message(
            msgpack.packb({"t": "hello", "name": msgpack.Timestamp(1, 0)}, datetime=False)
        )
