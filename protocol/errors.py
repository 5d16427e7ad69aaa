"""The protocol error hierarchy: every error carries a wire code and says whether a retry may help."""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error raised by the protocol package."""

    code: int = 1900
    retriable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FrameTooLarge(ProtocolError):
    """A length header announced more bytes than the connection accepts."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit


class UnknownSignal(ProtocolError):
    """A negative length header that names no signal we know."""

    def __init__(self, value: int) -> None:
        super().__init__(f"unknown signal {value}")
        self.value = value


class DecodeError(ProtocolError):
    """A frame body that is not a well-formed message."""


class HandshakeError(ProtocolError):
    """The peer broke the handshake's rules (wrong message, bad nonce, wrong version)."""


class AuthenticationFailed(ProtocolError):
    """The challenge/response did not prove knowledge of the shared secret."""

    code = 1999
