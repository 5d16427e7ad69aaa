"""The challenge/response state machines, driven message by message with no sockets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from protocol.errors import AuthenticationFailed, HandshakeError
from protocol.handshake import Acceptor, Initiator, State, compute_mac, derive_key
from protocol.messages import (
    NONCE_SIZE,
    AuthResult,
    Challenge,
    ChallengeResponse,
    Code,
    ErrorReply,
    Hello,
    Message,
    decode_message,
    encode_message,
)

HELLO = Hello(role="console", name="admin", version="test")


def _nonces(start: int) -> Iterator[bytes]:
    for i in itertools.count(start):
        yield bytes([i % 256]) * NONCE_SIZE


def _pair(
    client_secret: str = "s3cret", server_secret: str | None = "s3cret"
) -> tuple[Initiator, Acceptor]:
    client_nonces, server_nonces = _nonces(1), _nonces(100)
    initiator = Initiator(HELLO, client_secret, nonce_factory=lambda: next(client_nonces))
    acceptor = Acceptor(lambda hello: server_secret, nonce_factory=lambda: next(server_nonces))
    return initiator, acceptor


def _wire(msg: Message) -> Message:
    """Every message crosses the real codec, as it would on a socket."""
    return decode_message(encode_message(msg))


def _run(initiator: Initiator, acceptor: Acceptor) -> list[Message]:
    """Shuttle messages until both sides stop talking; return the transcript."""
    transcript: list[Message] = []
    to_acceptor = initiator.start()
    while to_acceptor:
        to_initiator: list[Message] = []
        for msg in to_acceptor:
            transcript.append(msg)
            to_initiator += acceptor.receive(_wire(msg))
        to_acceptor = []
        for msg in to_initiator:
            transcript.append(msg)
            if acceptor.failed:
                break
            to_acceptor += initiator.receive(_wire(msg))
        if initiator.failed or acceptor.failed:
            for msg in to_acceptor:
                transcript.append(msg)
            break
    return transcript


def test_good_password_completes_both_sides() -> None:
    initiator, acceptor = _pair()
    transcript = _run(initiator, acceptor)
    assert initiator.done and acceptor.done
    assert acceptor.peer == HELLO
    kinds = [type(m).__name__ for m in transcript]
    assert kinds == [
        "Hello",
        "Challenge",
        "ChallengeResponse",
        "AuthResult",
        "Challenge",
        "ChallengeResponse",
        "AuthResult",
    ]
    assert transcript[3] == AuthResult(code=Code.DIR_OK, text="OK")


def test_acceptor_challenges_first() -> None:
    initiator, acceptor = _pair()
    (hello,) = initiator.start()
    (first,) = acceptor.receive(hello)
    assert isinstance(first, Challenge)
    assert initiator.state is State.AWAIT_CHALLENGE


def test_wrong_password_gets_1999_and_the_reason_is_kept_server_side() -> None:
    initiator, acceptor = _pair(client_secret="wrong")
    initiator.start()
    (challenge,) = acceptor.receive(HELLO)
    (response,) = initiator.receive(challenge)
    (result,) = acceptor.receive(response)
    assert result == AuthResult(code=Code.AUTH_FAILED, text="Authorization failed")
    assert acceptor.failed
    assert acceptor.failure is not None and "wrong password" in acceptor.failure
    with pytest.raises(AuthenticationFailed, match="1999 Authorization failed"):
        initiator.receive(result)
    assert initiator.failed


def test_unknown_name_is_challenged_then_refused_without_revealing_it() -> None:
    initiator, acceptor = _pair(server_secret=None)
    initiator.start()
    (challenge,) = acceptor.receive(HELLO)
    assert isinstance(challenge, Challenge)  # same shape as for a known name
    (result,) = acceptor.receive(initiator.receive(challenge)[0])
    assert result.code == Code.AUTH_FAILED  # type: ignore[attr-defined]
    assert acceptor.failure == "no console named 'admin' is configured"


def test_director_that_does_not_know_the_password_is_detected_by_the_client() -> None:
    # The acceptor passes the client's proof only if it knows the key; the client's own
    # challenge is what proves the server side. Simulate a server answering with a bad MAC.
    initiator, acceptor = _pair()
    initiator.start()
    (challenge,) = acceptor.receive(HELLO)
    (response,) = initiator.receive(challenge)
    (ok,) = acceptor.receive(response)
    (their_challenge,) = initiator.receive(ok)
    forged = ChallengeResponse(digest=b"\x00" * 32)
    (verdict,) = initiator.receive(forged)
    assert verdict == AuthResult(code=Code.AUTH_FAILED, text="Authorization failed")
    assert initiator.failed
    assert initiator.failure is not None and "passwords differ" in initiator.failure
    assert isinstance(their_challenge, Challenge)


def test_replayed_challenge_is_refused() -> None:
    # A peer that sends the acceptor's own nonce back hopes to have it compute a proof it can reuse.
    initiator, acceptor = _pair()
    initiator.start()
    (challenge,) = acceptor.receive(HELLO)
    assert isinstance(challenge, Challenge)
    (response,) = initiator.receive(challenge)
    (ok,) = acceptor.receive(response)
    assert ok == AuthResult(code=Code.DIR_OK, text="OK")
    with pytest.raises(HandshakeError, match="replayed our own challenge"):
        acceptor.receive(Challenge(nonce=challenge.nonce))
    assert acceptor.failed


def test_recorded_response_is_useless_in_a_new_session() -> None:
    initiator, acceptor = _pair()
    initiator.start()
    (challenge,) = acceptor.receive(HELLO)
    (recorded,) = initiator.receive(challenge)
    # A second session gets a fresh nonce; replaying the recorded proof fails.
    _, second = _pair()
    second._nonce_factory = lambda: b"\x77" * NONCE_SIZE
    second.receive(HELLO)
    (refused,) = second.receive(recorded)
    assert refused == AuthResult(code=Code.AUTH_FAILED, text="Authorization failed")
    assert second.failed


def test_reflected_response_does_not_verify() -> None:
    # The MAC binds the direction, so the acceptor's answer is not a valid initiator answer.
    key = derive_key("s3cret")
    nonce = b"\x05" * NONCE_SIZE
    assert compute_mac(key, "acceptor", HELLO, nonce) != compute_mac(key, "initiator", HELLO, nonce)
    other = Hello(role="client", name="admin", version="test")
    assert compute_mac(key, "acceptor", HELLO, nonce) != compute_mac(key, "acceptor", other, nonce)


def test_out_of_order_message_is_a_handshake_error() -> None:
    initiator, acceptor = _pair()
    with pytest.raises(HandshakeError, match="unexpected 'response'"):
        acceptor.receive(ChallengeResponse(digest=b"x" * 32))
    assert acceptor.failed
    initiator.start()
    with pytest.raises(HandshakeError):
        initiator.receive(AuthResult(code=1000, text="OK"))


def test_short_nonce_is_refused() -> None:
    initiator, _ = _pair()
    initiator.start()
    with pytest.raises(HandshakeError, match="32 bytes"):
        initiator.receive(Challenge(nonce=b"short"))


def test_version_mismatch_is_answered_with_1998() -> None:
    _, acceptor = _pair()
    (reply,) = acceptor.receive(Hello(role="console", name="admin", version="x", protocol=99))
    assert isinstance(reply, ErrorReply)
    assert reply.code == Code.VERSION_MISMATCH
    assert "99" in reply.text
    initiator = Initiator(HELLO, "s3cret")
    initiator.start()
    with pytest.raises(AuthenticationFailed, match="1998"):
        initiator.receive(reply)


def test_start_twice_is_an_error() -> None:
    initiator, _ = _pair()
    initiator.start()
    with pytest.raises(HandshakeError):
        initiator.start()


def test_fresh_nonces_by_default() -> None:
    a = Acceptor(lambda h: "x")
    b = Acceptor(lambda h: "x")
    (ca,) = a.receive(HELLO)
    (cb,) = b.receive(HELLO)
    assert isinstance(ca, Challenge) and isinstance(cb, Challenge)
    assert ca.nonce != cb.nonce
    assert len(ca.nonce) == NONCE_SIZE
