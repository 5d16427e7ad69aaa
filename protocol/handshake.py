"""Mutual challenge/response authentication as two sans-IO state machines (the acceptor challenges first).

Both sides prove knowledge of the shared secret with HMAC-SHA256 over a fresh 32-byte nonce. The
MAC input binds the direction and the caller's Hello, so a response can be neither reflected back
to its sender nor replayed into another session; comparisons are constant-time.

    initiator                         acceptor
    Hello ─────────────────────────▶
          ◀───────────────────────── Challenge(n1)
    Response(mac(n1)) ─────────────▶
          ◀───────────────────────── AuthResult(1000)
    Challenge(n2) ─────────────────▶
          ◀───────────────────────── Response(mac(n2))
    AuthResult(1000) ──────────────▶
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Final

from protocol.errors import AuthenticationFailed, HandshakeError
from protocol.messages import (
    NONCE_SIZE,
    PROTOCOL_VERSION,
    AuthResult,
    Challenge,
    ChallengeResponse,
    Code,
    ErrorReply,
    Hello,
    Message,
)

_KEY_LABEL: Final = b"strongroom-auth-key-v1"
_MAC_LABEL: Final = b"strongroom-auth-v1"
AUTH_OK_TEXT: Final = "OK"
AUTH_FAILED_TEXT: Final = "Authorization failed"

NonceFactory = Callable[[], bytes]
SecretLookup = Callable[[Hello], str | None]


def derive_key(secret: str) -> bytes:
    """The HMAC key used for one shared password (never the password itself on the wire)."""
    return hmac.new(_KEY_LABEL, secret.encode("utf-8"), hashlib.sha256).digest()


def compute_mac(
    key: bytes, challenger: str, hello: Hello, nonce: bytes, channel_binding: bytes = b""
) -> bytes:
    """HMAC-SHA256 over the direction, the caller's identity, the nonce and, inside TLS, the
    channel binding (RFC 5929 tls-server-end-point): a proof made for one TLS channel is worth
    nothing on another, so a relay that terminates TLS cannot pass the handshake through."""
    parts: tuple[bytes, ...] = (
        _MAC_LABEL,
        challenger.encode(),
        hello.role.encode(),
        hello.name.encode("utf-8"),
        str(hello.protocol).encode(),
        nonce,
    )
    if channel_binding:  # plain TCP: the MAC is what it always was
        parts = (*parts, channel_binding)
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big"))
        mac.update(part)
    return mac.digest()


def _fresh_nonce() -> bytes:
    return secrets.token_bytes(NONCE_SIZE)


class State(enum.Enum):
    """Handshake progress; each state admits exactly one message type."""

    START = "start"
    AWAIT_HELLO = "await_hello"
    AWAIT_CHALLENGE = "await_challenge"
    AWAIT_RESPONSE = "await_response"
    AWAIT_RESULT = "await_result"
    DONE = "done"
    FAILED = "failed"


_EXPECTED: Final[dict[State, tuple[type[Message], ...]]] = {
    State.AWAIT_HELLO: (Hello,),
    State.AWAIT_CHALLENGE: (Challenge, ErrorReply),
    State.AWAIT_RESPONSE: (ChallengeResponse,),
    State.AWAIT_RESULT: (AuthResult, ErrorReply),
}


class _Side:
    side: str

    def __init__(self, nonce_factory: NonceFactory, channel_binding: bytes = b"") -> None:
        self._nonce_factory = nonce_factory
        self._binding = channel_binding
        self.state = State.START
        self._issued: bytes | None = None
        self._key = b""
        self._hello: Hello | None = None
        self.failure: str | None = None

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    @property
    def failed(self) -> bool:
        return self.state is State.FAILED

    def _fail(self, reason: str) -> None:
        self.state = State.FAILED
        self.failure = reason

    def _expect(self, msg: Message) -> None:
        allowed = _EXPECTED.get(self.state, ())
        if not isinstance(msg, allowed):
            self.state = State.FAILED
            raise HandshakeError(
                f"unexpected {msg.TYPE!r} message in handshake state {self.state.value}"
            )

    def _challenge(self) -> Challenge:
        nonce = self._nonce_factory()
        if len(nonce) != NONCE_SIZE:
            raise HandshakeError("nonce factory returned a nonce of the wrong size")
        self._issued = nonce
        return Challenge(nonce=nonce)

    def _answer(self, challenge: Challenge, challenger: str) -> ChallengeResponse:
        if len(challenge.nonce) != NONCE_SIZE:
            self.state = State.FAILED
            raise HandshakeError(f"challenge nonce must be {NONCE_SIZE} bytes")
        if self._issued is not None and hmac.compare_digest(challenge.nonce, self._issued):
            self.state = State.FAILED
            raise HandshakeError("peer replayed our own challenge")
        assert self._hello is not None
        return ChallengeResponse(
            digest=compute_mac(self._key, challenger, self._hello, challenge.nonce, self._binding)
        )

    def _verify(self, response: ChallengeResponse, challenger: str) -> bool:
        assert self._hello is not None and self._issued is not None
        expected = compute_mac(self._key, challenger, self._hello, self._issued, self._binding)
        return hmac.compare_digest(expected, response.digest)


class Initiator(_Side):
    """The side that opened the TCP connection: says Hello, answers first, then challenges."""

    side = "initiator"

    def __init__(
        self,
        hello: Hello,
        secret: str,
        nonce_factory: NonceFactory = _fresh_nonce,
        channel_binding: bytes = b"",
    ) -> None:
        super().__init__(nonce_factory, channel_binding)
        self._hello = hello
        self._key = derive_key(secret)

    def start(self) -> list[Message]:
        if self.state is not State.START:
            raise HandshakeError("handshake already started")
        self.state = State.AWAIT_CHALLENGE
        assert self._hello is not None
        return [self._hello]

    def receive(self, msg: Message) -> list[Message]:
        """Consume one message; return what to send. Check `failed` after sending it."""
        self._expect(msg)
        if isinstance(msg, ErrorReply):
            self.state = State.FAILED
            raise AuthenticationFailed(f"{msg.code} {msg.text}")
        match self.state, msg:
            case State.AWAIT_CHALLENGE, Challenge():
                self.state = State.AWAIT_RESULT
                return [self._answer(msg, "acceptor")]
            case State.AWAIT_RESULT, AuthResult():
                if msg.code != Code.DIR_OK:
                    self.state = State.FAILED
                    raise AuthenticationFailed(f"{msg.code} {msg.text}")
                self.state = State.AWAIT_RESPONSE
                return [self._challenge()]
            case State.AWAIT_RESPONSE, ChallengeResponse():
                if not self._verify(msg, "initiator"):
                    self._fail("the peer failed our challenge: the passwords differ")
                    return [AuthResult(code=Code.AUTH_FAILED, text=AUTH_FAILED_TEXT)]
                self.state = State.DONE
                return [AuthResult(code=Code.DIR_OK, text=AUTH_OK_TEXT)]
        raise HandshakeError(f"unexpected {msg.TYPE!r} in state {self.state.value}")


class Acceptor(_Side):
    """The side that accepted the TCP connection: challenges first, then answers."""

    side = "acceptor"

    def __init__(
        self,
        lookup: SecretLookup,
        nonce_factory: NonceFactory = _fresh_nonce,
        protocol_version: int = PROTOCOL_VERSION,
        channel_binding: bytes = b"",
    ) -> None:
        super().__init__(nonce_factory, channel_binding)
        self._lookup = lookup
        self._protocol_version = protocol_version
        self._known = False
        self.state = State.AWAIT_HELLO

    @property
    def peer(self) -> Hello | None:
        return self._hello

    def receive(self, msg: Message) -> list[Message]:
        self._expect(msg)
        match self.state, msg:
            case State.AWAIT_HELLO, Hello():
                self._hello = msg
                if msg.protocol != self._protocol_version:
                    self._fail(f"protocol version {msg.protocol} is not supported")
                    return [
                        ErrorReply(
                            code=Code.VERSION_MISMATCH,
                            text=f"protocol version {msg.protocol} is not supported "
                            f"(this daemon speaks {self._protocol_version})",
                        )
                    ]
                secret = self._lookup(msg)
                # An unknown name is challenged like a known one so names cannot be probed.
                self._known = secret is not None
                self._key = derive_key(secret if secret is not None else secrets.token_hex(32))
                self.state = State.AWAIT_RESPONSE
                return [self._challenge()]
            case State.AWAIT_RESPONSE, ChallengeResponse():
                if not (self._verify(msg, "acceptor") and self._known):
                    assert self._hello is not None
                    self._fail(
                        "the peer failed our challenge: wrong password"
                        if self._known
                        else f"no {self._hello.role} named {self._hello.name!r} is configured"
                    )
                    return [AuthResult(code=Code.AUTH_FAILED, text=AUTH_FAILED_TEXT)]
                self.state = State.AWAIT_CHALLENGE
                return [AuthResult(code=Code.DIR_OK, text=AUTH_OK_TEXT)]
            case State.AWAIT_CHALLENGE, Challenge():
                self.state = State.AWAIT_RESULT
                return [self._answer(msg, "initiator")]
            case State.AWAIT_RESULT, AuthResult():
                if msg.code != Code.DIR_OK:
                    self.state = State.FAILED
                    raise AuthenticationFailed(f"peer refused our proof: {msg.code} {msg.text}")
                self.state = State.DONE
                return []
            case _, ErrorReply():
                self.state = State.FAILED
                raise AuthenticationFailed(f"{msg.code} {msg.text}")
        raise HandshakeError(f"unexpected {msg.TYPE!r} in state {self.state.value}")
