"""TLS that means something (#13): certificates bound to resource names, the MAC bound to the TLS
channel, no system CA store, key files others can read refused; every refusal names its reason."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.auth import authenticate_acceptor, authenticate_initiator
from common.net import Connection, Limits, Listener, NetError, dial
from common.pki import CertFiles, create_ca, init_pki, issue_certificate
from common.tls import TlsError, check_peer_name, client_context, server_context, server_end_point
from protocol.errors import AuthenticationFailed
from protocol.handshake import Acceptor, Initiator
from protocol.messages import Hello

LIMITS = Limits(frame_timeout=2.0, auth_timeout=3.0, connect_timeout=2.0, tls_handshake_timeout=2.0)
HELLO = Hello(role="director", name="test-dir", version="1")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, CertFiles]]:
    directory: Path = tmp_path_factory.mktemp("pki")
    return directory, init_pki(
        directory, ["test-dir", "test-fd", "test-sd"], hostnames=["localhost"]
    )


@contextlib.asynccontextmanager
async def listening(
    ctx: ssl.SSLContext | None, names: list[str], *, optional: bool = False
) -> AsyncIterator[tuple[int, list[object]]]:
    """A listener that authenticates a Director and checks its certificate names `names[0]`."""
    outcomes: list[object] = []

    async def handler(conn: Connection) -> None:
        try:
            hello = await authenticate_acceptor(conn, lambda h: "pw", failure_delay=0)
            if conn.tls:
                check_peer_name(conn.ssl_object, hello.name, (), "Director")
            outcomes.append("ok")
        except (TlsError, AuthenticationFailed, NetError) as exc:
            outcomes.append(exc)

    listener = Listener(
        addresses=[("127.0.0.1", 0)],
        handler=handler,
        ssl_context=ctx,
        limits=LIMITS,
        log=structlog.get_logger(),
        tls_optional=optional,
    )
    listener.bind()
    stop = asyncio.Event()
    task = asyncio.create_task(listener.serve(stop))
    try:
        yield int(listener.bound[0].rsplit(":", 1)[1]), outcomes
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def _call(port: int, ctx: ssl.SSLContext | None, expect: str | None) -> None:
    conn = await dial("127.0.0.1", port, ctx, LIMITS)
    try:
        if expect is not None:
            check_peer_name(conn.ssl_object, expect, (), "File Daemon")
        await authenticate_initiator(conn, HELLO, "pw")
    finally:
        await conn.close()


async def test_the_right_certificates_get_through(pki: tuple[Path, dict[str, CertFiles]]) -> None:
    directory, certs = pki
    ca = directory / "ca.pem"
    async with listening(
        server_context(certs["test-fd"].cert, certs["test-fd"].key, ca), ["test-dir"]
    ) as (port, outcomes):
        await _call(
            port, client_context(certs["test-dir"].cert, certs["test-dir"].key, ca), "test-fd"
        )
        await asyncio.sleep(0.05)
    assert outcomes == ["ok"]


async def test_a_foreign_ca_is_refused(
    pki: tuple[Path, dict[str, CertFiles]], tmp_path: Path
) -> None:
    directory, certs = pki
    foreign = init_pki(tmp_path / "foreign", ["test-dir"], hostnames=["localhost"])
    server = server_context(certs["test-fd"].cert, certs["test-fd"].key, directory / "ca.pem")
    client = client_context(foreign["test-dir"].cert, foreign["test-dir"].key, directory / "ca.pem")
    async with listening(server, ["test-dir"]) as (port, outcomes):
        with pytest.raises(
            NetError
        ):  # the listener logs tls_handshake_failed "certificate verify failed"
            await _call(port, client, "test-fd")
    assert outcomes == []
    # and the other way round: the caller names the reason itself
    server = server_context(
        foreign["test-dir"].cert, foreign["test-dir"].key, tmp_path / "foreign" / "ca.pem"
    )
    client = client_context(certs["test-dir"].cert, certs["test-dir"].key, directory / "ca.pem")
    async with listening(server, ["test-dir"]) as (port, _outcomes):
        with pytest.raises(NetError, match="certificate verify failed"):
            await _call(port, client, "test-fd")


async def test_another_daemons_certificate_is_refused_both_ways(
    pki: tuple[Path, dict[str, CertFiles]],
) -> None:
    """The SD's certificate, signed by the right CA, presented as the File Daemon and as the Director."""
    directory, certs = pki
    ca = directory / "ca.pem"
    async with listening(
        server_context(certs["test-sd"].cert, certs["test-sd"].key, ca), ["test-dir"]
    ) as (port, _outcomes):
        with pytest.raises(
            TlsError, match="certificate is for localhost, test-sd, not for 'test-fd'"
        ):
            await _call(
                port, client_context(certs["test-dir"].cert, certs["test-dir"].key, ca), "test-fd"
            )
    async with listening(
        server_context(certs["test-fd"].cert, certs["test-fd"].key, ca), ["test-dir"]
    ) as (port, outcomes):
        await _call(
            port, client_context(certs["test-sd"].cert, certs["test-sd"].key, ca), "test-fd"
        )
        await asyncio.sleep(0.05)
    assert len(outcomes) == 1 and "not for 'test-dir'" in str(outcomes[0])


def test_tls_allowed_cn_replaces_the_name_rule(pki: tuple[Path, dict[str, CertFiles]]) -> None:
    class Fake:
        def getpeercert(self) -> dict[str, object]:
            return {
                "subject": ((("commonName", "backup-proxy"),),),
                "subjectAltName": (("DNS", "proxy"),),
            }

    check_peer_name(Fake(), "test-fd", ("backup-proxy",), "File Daemon")
    with pytest.raises(TlsError, match="TLS Allowed CN"):
        check_peer_name(Fake(), "backup-proxy", ("someone-else",), "File Daemon")


def _expired(ca: CertFiles, directory: Path, name: str) -> CertFiles:
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(directory / f"{name}-expired.pem", directory / f"{name}-expired.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


async def test_an_expired_certificate_is_refused(
    pki: tuple[Path, dict[str, CertFiles]], tmp_path: Path
) -> None:
    directory, certs = pki
    ca = directory / "ca.pem"
    old = _expired(CertFiles(ca, directory / "ca.key"), tmp_path, "test-fd")
    async with listening(server_context(old.cert, old.key, ca), ["test-dir"]) as (port, _outcomes):
        with pytest.raises(NetError, match="expired"):
            await _call(
                port, client_context(certs["test-dir"].cert, certs["test-dir"].key, ca), "test-fd"
            )


async def test_plain_to_tls_and_tls_to_plain_are_refused_with_a_reason(
    pki: tuple[Path, dict[str, CertFiles]],
) -> None:
    directory, certs = pki
    ca = directory / "ca.pem"
    server = server_context(certs["test-fd"].cert, certs["test-fd"].key, ca)
    async with listening(server, ["test-dir"]) as (port, _outcomes):
        with pytest.raises(NetError, match=r"TLS is required|1997"):
            await _call(port, None, None)
    async with listening(None, ["test-dir"]) as (port, _outcomes):
        with pytest.raises(NetError, match="TLS handshake"):
            await _call(
                port, client_context(certs["test-dir"].cert, certs["test-dir"].key, ca), "test-fd"
            )


async def test_tls_require_no_serves_plain_callers_too(
    pki: tuple[Path, dict[str, CertFiles]],
) -> None:
    directory, certs = pki
    ca = directory / "ca.pem"
    server = server_context(certs["test-fd"].cert, certs["test-fd"].key, ca)
    async with listening(server, ["test-dir"], optional=True) as (port, outcomes):
        await _call(port, None, None)
        await _call(
            port, client_context(certs["test-dir"].cert, certs["test-dir"].key, ca), "test-fd"
        )
        await asyncio.sleep(0.05)
    assert outcomes == ["ok", "ok"]


def test_the_mac_is_bound_to_the_channel() -> None:
    """A relay terminating TLS with another certificate passes on proofs made for another channel."""

    def run(initiator_binding: bytes, acceptor_binding: bytes) -> bool:
        ini = Initiator(HELLO, "pw", channel_binding=initiator_binding)
        acc = Acceptor(lambda h: "pw", channel_binding=acceptor_binding)
        (hello,) = ini.start()
        (challenge,) = acc.receive(hello)
        (response,) = ini.receive(challenge)
        acc.receive(response)
        return not acc.failed

    real, relay = server_end_point(b"real certificate"), server_end_point(b"relay certificate")
    assert run(real, real)
    assert not run(relay, real)
    assert run(b"", b"")  # plain TCP: no channel to bind


def test_no_ca_means_refusing_not_the_system_store(pki: tuple[Path, dict[str, CertFiles]]) -> None:
    _directory, certs = pki
    with pytest.raises(TlsError, match="no 'TLS CA Certificate File'"):
        client_context(certs["test-dir"].cert, certs["test-dir"].key, None)
    with pytest.raises(TlsError, match="no 'TLS CA Certificate File'"):
        server_context(certs["test-fd"].cert, certs["test-fd"].key, None)


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    ca = create_ca(tmp_path)
    files = issue_certificate(ca, tmp_path, "test-fd", ["localhost"])
    files.key.chmod(0o644)
    with pytest.raises(TlsError, match=r"accessible by others .*chmod 600"):
        server_context(files.cert, files.key, ca.cert)
    files.key.chmod(
        0o640
    )  # the group may read it (a daemon group), as ssh allows for root-owned keys
    server_context(files.cert, files.key, ca.cert)
