"""The Director's connections to File and Storage Daemons: dialing (for jobs and status), status relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.net import NetError
from common.tls import TlsError
from protocol.errors import ProtocolError
from protocol.messages import DaemonStatus, ErrorReply, StatusRequest

if TYPE_CHECKING:
    from common.net import Connection
    from director.config import ClientResource, StorageResource
    from director.daemon import DirectorDaemon
    from director.jobs.services import Dialer


class PeerError(Exception):
    """Talking to a File or Storage Daemon failed; `step` says where (dns, tcp, tls, auth, io)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def where(kind: str, resource: ClientResource | StorageResource) -> str:
    return f"{kind} {resource.name!r} at {resource.address}:{resource.port}"


async def dial(dialer: Dialer, kind: str, resource: ClientResource | StorageResource) -> Connection:
    """Connect to a File (`kind` client) or Storage Daemon and authenticate both ways; a failure
    is a PeerError naming the daemon and the step (dns, tcp, tls, auth)."""
    try:
        return await dialer.dial_peer(
            resource.address, resource.port, resource, resource.password.get_secret_value()
        )
    except NetError as exc:
        raise PeerError(
            exc.step, f"cannot connect to {where(kind, resource)}: {exc.step}: {exc.message}"
        ) from exc
    except TlsError as exc:
        raise PeerError("tls", f"cannot connect to {where(kind, resource)}: tls: {exc}") from exc
    except ProtocolError as exc:
        raise PeerError(
            "auth", f"cannot authenticate with {where(kind, resource)}: {exc.message}"
        ) from exc


async def _query_status(
    director: DirectorDaemon, kind: str, resource: ClientResource | StorageResource
) -> DaemonStatus:
    conn = await dial(director, kind, resource)
    try:
        await conn.send(StatusRequest())
        reply = await conn.recv_message(timeout=conn.limits.frame_timeout)
    except (NetError, ProtocolError) as exc:
        raise PeerError("io", f"{where(kind, resource)} did not answer status: {exc}") from exc
    finally:
        await conn.close(terminate=True)
    if isinstance(reply, ErrorReply):
        raise PeerError("io", f"{where(kind, resource)} refused status: {reply.code} {reply.text}")
    if not isinstance(reply, DaemonStatus):
        raise PeerError("io", f"{where(kind, resource)} answered status with {reply.TYPE!r}")
    return reply


async def query_client_status(director: DirectorDaemon, name: str) -> DaemonStatus:
    client = director.config.clients.get(name)
    if client is None:
        raise PeerError("config", f"no Client resource named {name!r}")
    return await _query_status(director, "client", client)


async def query_storage_status(director: DirectorDaemon, name: str) -> DaemonStatus:
    storage = director.config.storages.get(name)
    if storage is None:
        raise PeerError("config", f"no Storage resource named {name!r}")
    return await _query_status(director, "storage", storage)
