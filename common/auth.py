"""Drive the sans-IO handshake over a Connection, with a deadline and a throttle on failure."""

from __future__ import annotations

import asyncio
from typing import Final

from common.net import Connection, PeerRefused
from common.tls import client_channel_binding, server_channel_binding
from protocol.errors import AuthenticationFailed, HandshakeError
from protocol.frames import Signal
from protocol.handshake import Acceptor, Initiator, SecretLookup
from protocol.messages import ErrorReply, Hello, Message

# Bareos sleeps after a failed login so a password cannot be guessed quickly.
AUTH_FAILURE_DELAY: Final = 1.0


async def _recv(conn: Connection) -> Message:
    event = await conn.recv()
    if isinstance(event, Signal):
        raise HandshakeError(f"unexpected signal {event.name} during handshake")
    return event


async def authenticate_initiator(conn: Connection, hello: Hello, secret: str) -> None:
    """Say Hello and prove/verify the shared secret; raises on any failure."""
    side = Initiator(hello, secret, channel_binding=client_channel_binding(conn.ssl_object))
    async with asyncio.timeout(conn.limits.auth_timeout):
        for msg in side.start():
            await conn.send(msg)
        while not side.done:
            reply = await _recv(conn)
            if isinstance(reply, ErrorReply):
                raise PeerRefused(reply.code, reply.text)
            for msg in side.receive(reply):
                await conn.send(msg)
            if side.failed:
                raise AuthenticationFailed(side.failure or "authentication failed")
    conn.mark_authenticated()


async def authenticate_acceptor(
    conn: Connection, lookup: SecretLookup, failure_delay: float = AUTH_FAILURE_DELAY
) -> Hello:
    """Challenge the caller, answer its challenge, and return its verified Hello.

    Inside TLS both MACs bind the channel: this side's certificate's tls-server-end-point, which
    the caller takes from the certificate it was shown (`common.tls`).
    """
    side = Acceptor(lookup, channel_binding=server_channel_binding(conn.ssl_object))
    try:
        async with asyncio.timeout(conn.limits.auth_timeout):
            while not side.done:
                for msg in side.receive(await _recv(conn)):
                    await conn.send(msg)
                if side.failed:
                    await asyncio.sleep(failure_delay)
                    raise AuthenticationFailed(side.failure or "authentication failed")
    except TimeoutError as exc:
        raise HandshakeError(
            f"handshake not completed within {conn.limits.auth_timeout:g} s (stalled peer)"
        ) from exc
    assert side.peer is not None
    conn.mark_authenticated()
    return side.peer
