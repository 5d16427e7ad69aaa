"""The generated private CA and daemon certificates, checked with real TLS handshakes in memory."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from common.pki import create_ca, init_pki, issue_certificate
from common.tls import TlsError, client_context, server_context


def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Drive both ends of a TLS handshake through memory BIOs; raise what either side raises."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_side=False)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, obj in (("c", cli), ("s", srv)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return srv, cli
    raise AssertionError("handshake did not finish")


def test_daemons_trust_each_other_through_the_ca(tmp_path: Path) -> None:
    certs = init_pki(tmp_path, ["dir", "fd"], hostnames=["localhost"])
    ca = tmp_path / "ca.pem"
    server = server_context(certs["fd"].cert, certs["fd"].key, ca)
    client = client_context(certs["dir"].cert, certs["dir"].key, ca)
    srv, cli = _handshake(server, client)
    assert cli.getpeercert()["subject"] == ((("commonName", "fd"),),)
    assert srv.getpeercert()["subject"] == ((("commonName", "dir"),),)


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    ours = init_pki(tmp_path / "ours", ["fd"], hostnames=["localhost"])
    theirs = init_pki(tmp_path / "theirs", ["dir"], hostnames=["localhost"])
    server = server_context(ours["fd"].cert, ours["fd"].key, tmp_path / "ours" / "ca.pem")
    client = client_context(theirs["dir"].cert, theirs["dir"].key, tmp_path / "theirs" / "ca.pem")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client)


def test_private_keys_are_owner_only_and_init_is_idempotent(tmp_path: Path) -> None:
    first = init_pki(tmp_path, ["sd"], hostnames=["localhost"])
    assert stat.S_IMODE(first["sd"].key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    before = first["sd"].cert.read_bytes()
    again = init_pki(tmp_path, ["sd", "console"], hostnames=["localhost"])
    assert again["sd"].cert.read_bytes() == before  # kept, not re-issued
    assert again["console"].cert.exists()


def test_issued_certificate_names_its_daemon(tmp_path: Path) -> None:
    from cryptography import x509

    ca = create_ca(tmp_path)
    files = issue_certificate(ca, tmp_path, "bareos-fd", ["localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert cert.subject.rfc4514_string() == "CN=bareos-fd"


def test_missing_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=str(tmp_path / "nope.pem")):
        server_context(tmp_path / "nope.pem", tmp_path / "nope.key", None)
