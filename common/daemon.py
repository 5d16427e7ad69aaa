"""What every daemon shares: listening, TLS, authentication of callers, status, stop and reload."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, Generic, Protocol, TypeVar

from common import tls
from common.auth import authenticate_acceptor, authenticate_initiator
from common.config.loader import Loaded
from common.logging import Log
from common.net import Connection, Limits, Listener, NetError, dial
from common.notify import sd_notify
from common.version import VERSION
from protocol.errors import AuthenticationFailed, ProtocolError
from protocol.messages import ConnectionCounts, DaemonStatus, Hello, Role, RunningJob

DRAIN_TIMEOUT: Final = 10.0
EXIT_CONFIG: Final = (
    42  # as common.runtime: a configuration that cannot work; systemd does not restart
)
# How an authenticated caller is named in error texts ("connection closed by File Daemon test-fd at ...").
PEER_ROLES: Final[Mapping[str, str]] = {
    "director": "Director",
    "storage": "Storage Daemon",
    "client": "File Daemon",
    "console": "console",
    "job": "the data connection of job",
}


class TlsSettings(Protocol):
    """The TLS directives every daemon resource and peer resource carries."""

    @property
    def tls_enable(self) -> bool: ...
    @property
    def tls_require(self) -> bool: ...
    @property
    def tls_certificate(self) -> Path | None: ...
    @property
    def tls_key(self) -> Path | None: ...
    @property
    def tls_ca_certificate_file(self) -> Path | None: ...
    @property
    def tls_verify_peer(self) -> bool: ...
    @property
    def tls_allowed_cn(self) -> tuple[str, ...]: ...


class OwnResource(TlsSettings, Protocol):
    """The daemon's own resource (Director, Storage or Client/FileDaemon)."""

    @property
    def name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def address(self) -> str | None: ...
    @property
    def heartbeat_interval(self) -> float: ...
    @property
    def auth_timeout(self) -> float: ...


class StartupError(Exception):
    """A daemon cannot start: the message says what to fix; `exit_code` is what the process returns."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def tls_problems(resource: TlsSettings, what: str) -> list[str]:
    """Why TLS as configured cannot work (missing certificate files), as sentences."""
    if not resource.tls_enable:
        return []
    problems: list[str] = []
    if resource.tls_verify_peer and resource.tls_ca_certificate_file is None:
        problems.append(
            f"{what}: TLS Verify Peer is on but no 'TLS CA Certificate File' is set; peers are never"
            " trusted through the system's CA store"
        )
    if resource.tls_certificate is None or resource.tls_key is None:
        problems.append(
            f"{what}: TLS is enabled (the default) but no 'TLS Certificate' and 'TLS Key' are set;"
            " run 'strongroom init' to create a CA and certificates, or set 'TLS Enable = no'"
            " on both sides"
        )
        return problems
    for label, path in (
        ("TLS Certificate", resource.tls_certificate),
        ("TLS Key", resource.tls_key),
        ("TLS CA Certificate File", resource.tls_ca_certificate_file),
    ):
        if path is not None and not path.exists():
            problems.append(f"{what}: {label} {path} does not exist")
    if resource.tls_key.exists():
        key = tls.key_problem(resource.tls_key)
        if key is not None:
            problems.append(f"{what}: {key}")
    return problems


# Roles whose Hello names a configured daemon resource: their certificate must carry that name.
BOUND_ROLES: Final = frozenset({"director", "storage", "client"})


def server_ssl_context(own: TlsSettings) -> ssl.SSLContext | None:
    if not own.tls_enable:
        return None
    assert own.tls_certificate is not None and own.tls_key is not None
    return tls.server_context(
        own.tls_certificate, own.tls_key, own.tls_ca_certificate_file, own.tls_verify_peer
    )


def client_ssl_context(own: TlsSettings, peer: TlsSettings) -> ssl.SSLContext | None:
    """TLS towards a peer unless either side's configuration says `TLS Enable = no`."""
    if not (own.tls_enable and peer.tls_enable):
        return None
    ca = peer.tls_ca_certificate_file or own.tls_ca_certificate_file
    cert = peer.tls_certificate or own.tls_certificate
    key = peer.tls_key or own.tls_key
    return tls.client_context(cert, key, ca, own.tls_verify_peer and peer.tls_verify_peer)


ConfigT = TypeVar("ConfigT")


class Daemon(abc.ABC, Generic[ConfigT]):
    """Base of the Director, Storage Daemon and File Daemon processes."""

    role: Role
    ok_code: int
    default_port: int

    def __init__(self, config_path: Path, loaded: Loaded[ConfigT], log: Log) -> None:
        self.config_path = config_path
        self.loaded = loaded
        self.log = log
        self.started_at = time.time()
        self.stop_event = asyncio.Event()
        self.listener: Listener | None = None
        self._busy: set[Connection] = set()

    # -- what each daemon provides -------------------------------------------------------------

    @property
    def config(self) -> ConfigT:
        return self.loaded.config

    @property
    @abc.abstractmethod
    def own(self) -> OwnResource: ...

    @abc.abstractmethod
    def lookup_secret(self, hello: Hello) -> str | None:
        """The shared secret for a caller, or None when it is not configured."""

    @abc.abstractmethod
    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        """Serve one authenticated caller until it leaves."""

    # Whether peers may open bulk data connections here (common.bulk): Storage Daemons, for copies.
    accepts_bulk_data = False

    def running_jobs(self) -> tuple[RunningJob, ...]:
        return ()

    def peer_allowed_cn(self, hello: Hello) -> tuple[str, ...]:
        """TLS Allowed CN for a caller: certificate names accepted instead of its resource name."""
        return tuple(self.own.tls_allowed_cn)

    def reload(self) -> None:
        """SIGHUP: only the Director reloads; the others log that they ignore it."""
        self.log.info("reload_ignored", reason="this daemon reloads on restart only")

    # -- shared behaviour ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.own.name

    def limits(self) -> Limits:
        own = self.own
        return Limits(auth_timeout=own.auth_timeout, heartbeat_interval=own.heartbeat_interval)

    def listen_addresses(self) -> list[tuple[str, int]]:
        own = self.own
        return [(own.address or "0.0.0.0", own.port)]

    def status(self) -> DaemonStatus:
        stats = self.listener.stats if self.listener else None
        now = time.time()
        return DaemonStatus(
            code=self.ok_code,
            role=self.role,
            name=self.name,
            version=VERSION,
            pid=os.getpid(),
            started_at=self.started_at,
            uptime=now - self.started_at,
            addresses=tuple(self.listener.bound) if self.listener else (),
            tls=self.own.tls_enable,
            running_jobs=self.running_jobs(),
            connections=ConnectionCounts(
                active=stats.active if stats else 0,
                total=stats.total if stats else 0,
                refused=stats.refused if stats else 0,
            ),
        )

    def hello(self) -> Hello:
        return Hello(role=self.role, name=self.name, version=VERSION)

    async def dial_peer(
        self, address: str, port: int, peer: TlsSettings, secret: str
    ) -> Connection:
        """Connect to another daemon and authenticate both ways (steps named on failure)."""
        name = getattr(peer, "name", None)
        own = self.own
        if own.tls_enable and own.tls_require and not peer.tls_enable:
            raise NetError(
                "tls",
                f"TLS Require = yes on {self.name}, but {name or 'the peer'} is configured "
                "with TLS Enable = no: refusing to talk to it in plain TCP",
            )
        conn = await dial(address, port, client_ssl_context(own, peer), self.limits())
        if name:
            conn.peer_name = f"{name} at {conn.peer}"
        try:
            if conn.tls and name:
                self._bind_dialed(conn, name, tuple(peer.tls_allowed_cn or own.tls_allowed_cn))
            await authenticate_initiator(conn, self.hello(), secret)
        except BaseException:
            await conn.close()
            raise
        return conn

    def configured_names(self) -> set[str]:
        """Every resource name this daemon's configuration knows (its peers' and its own)."""
        names = {self.name}
        config = self.config
        for field in getattr(type(config), "model_fields", {}):
            value = getattr(config, field, None)
            if isinstance(value, Mapping):
                names.update(str(key) for key in value)
        return names

    def _bind_dialed(self, conn: Connection, name: str, allowed: tuple[str, ...]) -> None:
        """The certificate of a daemon we dialed must be the one its resource names.

        With TLS Allowed CN, only those names. Otherwise the resource's name; a Director's Storage
        resource is often named otherwise than its Storage Daemon ("File" at "bareos-sd"), so a
        certificate for a name this configuration does not know is let through with a warning
        (list it in TLS Allowed CN to bind it), while one for another configured daemon (a Client
        presenting its certificate as a Storage) is refused.
        """
        try:
            names = tls.peer_names(conn.ssl_object)
            if allowed or not names or name in names or names & self.configured_names():
                tls.check_peer_name(conn.ssl_object, name, allowed, "peer")
                return
            self.log.warning(
                "tls_peer_name_unbound",
                peer=name,
                certificate=sorted(names),
                hint=f"set 'TLS Allowed CN = {sorted(names)[0]}' in the resource {name!r}",
            )
        except tls.TlsError as exc:
            raise NetError("tls", f"refusing {name} at {conn.peer}: {exc}") from exc

    @contextlib.contextmanager
    def busy(self, conn: Connection) -> Iterator[None]:
        """Mark a connection as executing a command, so a stop waits for it to finish."""
        self._busy.add(conn)
        try:
            yield
        finally:
            self._busy.discard(conn)

    async def _handle(self, conn: Connection) -> None:
        log = self.log.bind(peer=conn.peer, tls=conn.tls)
        if conn.tls and self.own.tls_allowed_cn:
            try:
                tls.check_allowed_cn(conn.ssl_object, self.own.tls_allowed_cn)
            except tls.TlsError as exc:
                log.warning("tls_peer_refused", reason=str(exc))
                return
        try:
            peer = await authenticate_acceptor(conn, self.lookup_secret)
        except AuthenticationFailed as exc:
            if self.listener:
                self.listener.stats.refused += 1
            log.warning("authentication_failed", reason=exc.message)
            return
        conn.peer_name = f"{PEER_ROLES.get(peer.role, peer.role)} {peer.name} at {conn.peer}"
        log = log.bind(peer_role=peer.role, peer_name=peer.name)
        if conn.tls and peer.role in BOUND_ROLES:
            try:
                tls.check_peer_name(
                    conn.ssl_object,
                    peer.name,
                    self.peer_allowed_cn(peer),
                    PEER_ROLES.get(peer.role, peer.role),
                )
            except tls.TlsError as exc:
                if self.listener:
                    self.listener.stats.refused += 1
                log.warning("tls_peer_refused", reason=str(exc))
                return
        log.info("peer_authenticated")
        try:
            await self.serve_peer(conn, peer)  # heartbeats run from authentication on (common.link)
        except (NetError, ProtocolError) as exc:
            log.info("peer_disconnected", reason=str(exc))

    async def run(self) -> int:
        """Bind, report READY, serve until SIGTERM, drain, report STOPPING."""
        try:
            ssl_context = server_ssl_context(self.own)
        except (tls.TlsError, OSError, ValueError) as exc:
            raise StartupError(f"TLS cannot be set up: {exc}", EXIT_CONFIG) from exc
        self.listener = Listener(
            addresses=self.listen_addresses(),
            handler=self._handle,
            ssl_context=ssl_context,
            limits=self.limits(),
            log=self.log,
            refusal_text=(
                f"{self.role} {self.name} requires TLS and this connection is plain TCP;"
                " configure TLS (strongroom init) or set 'TLS Enable = no' on both sides"
            ),
            accept_bulk=self.accepts_bulk_data,
            tls_optional=self.own.tls_enable and not self.own.tls_require,
        )
        try:
            self.listener.bind()
        except OSError as exc:
            raise StartupError(str(exc.strerror or exc)) from exc
        try:
            await self.before_ready()
        except BaseException:
            self.listener.close_sockets()
            raise
        self.log.info(
            "daemon_ready",
            version=VERSION,
            addresses=self.listener.bound,
            tls=ssl_context is not None,
            config=str(self.config_path),
        )
        sd_notify(
            f"READY=1\nSTATUS=listening on {', '.join(self.listener.bound)}\nMAINPID={os.getpid()}"
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.listener.serve(self.stop_event, self._drain))
            await self.on_started(tg)
        self.log.info("daemon_stopped")
        return 0

    async def before_ready(self) -> None:
        """Hook for what must work before READY=1 (the Director's catalog): raise StartupError,
        with exit code 42 for a configuration that cannot work, and systemd does not restart."""

    async def on_started(self, tg: asyncio.TaskGroup) -> None:
        """Hook for daemons that run background tasks alongside the listener."""

    async def _drain(self, tasks: Mapping[Connection, asyncio.Task[None]]) -> None:
        """Let connections that are executing a command finish, then cancel the rest."""
        sd_notify("STOPPING=1")
        self.log.info("daemon_stopping", busy=len(self._busy), open=len(tasks))
        idle = [task for conn, task in tasks.items() if conn not in self._busy]
        for task in idle:
            task.cancel()
        busy = [task for conn, task in tasks.items() if conn in self._busy]
        if busy:
            _done, pending = await asyncio.wait(busy, timeout=DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()

    def request_stop(self) -> None:
        self.log.info("stop_requested")
        self.stop_event.set()


def describe_addresses(addresses: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in addresses)
