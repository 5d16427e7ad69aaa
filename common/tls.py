"""SSLContext builders for daemons and consoles, and clear sentences for TLS failures."""

from __future__ import annotations

import hashlib
import os
import ssl
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

TLS_HANDSHAKE_TIMEOUT: Final = 10.0


class TlsError(Exception):
    """TLS cannot be set up as configured; names the file or peer."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# A private key others may read, or anyone but its owner may write, is refused, as ssh does.
KEY_MODE_FORBIDDEN: Final = stat.S_IRWXO | stat.S_IWGRP


def key_problem(key: Path) -> str | None:
    """Why a private key file must not be used (permissions), or None."""
    try:
        st = os.stat(key)
    except OSError as exc:
        return f"TLS Key {key} cannot be read: {exc.strerror or exc}"
    if st.st_mode & KEY_MODE_FORBIDDEN:
        return (
            f"TLS Key {key} is accessible by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run 'chmod 600 {key}'"
        )
    return None


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    for label, path in (("TLS Certificate", cert), ("TLS Key", key)):
        if not path.exists():
            raise TlsError(f"{label} {path} does not exist", path)
    problem = key_problem(key)
    if problem is not None:
        raise TlsError(problem, key)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise TlsError(
            f"cannot load certificate {cert} with key {key}: {exc.reason or exc}", cert
        ) from exc


def _load_ca(ctx: ssl.SSLContext, ca: Path | None) -> None:
    if ca is None:
        # Never the system store: any public CA could then vouch for a "Director" (#13).
        raise TlsError(
            "TLS Verify Peer is on but no 'TLS CA Certificate File' is set: peers cannot be "
            "verified (set the private CA's file, e.g. the one 'strongroom init' wrote)"
        )
    if not ca.exists():
        raise TlsError(f"TLS CA Certificate File {ca} does not exist", ca)
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except ssl.SSLError as exc:
        raise TlsError(f"cannot load CA certificates from {ca}: {exc.reason or exc}", ca) from exc


def server_context(
    cert: Path, key: Path, ca: Path | None, verify_peer: bool = True
) -> ssl.SSLContext:
    """Mutual TLS for a daemon: its own certificate, and client certificates required when verifying."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key)
    try:
        # The context remembers what its connections bind the handshake to (server_channel_binding).
        ctx.strongroom_channel_binding = server_end_point(certificate_der(cert))  # type: ignore[attr-defined]
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the certificate {cert}: {exc}", cert) from exc
    if verify_peer:
        _load_ca(ctx, ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(
    cert: Path | None, key: Path | None, ca: Path | None, verify_peer: bool = True
) -> ssl.SSLContext:
    """Client side: verify the server against the private CA; present our certificate when we have one.

    Host names are not checked: peers are trusted because the private CA signed them (and,
    optionally, by `TLS Allowed CN`), as Bareos does.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    if verify_peer:
        _load_ca(ctx, ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        _load_chain(ctx, cert, key)
    return ctx


def looks_like_tls(first_bytes: bytes) -> bool:
    """True when the bytes start a TLS handshake record."""
    return (
        len(first_bytes) >= 1
        and first_bytes[0] == 0x16
        and (len(first_bytes) < 2 or first_bytes[1] == 0x03)
    )


def peer_common_name(ssl_object: Any) -> str | None:
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def peer_names(ssl_object: Any) -> set[str]:
    """The names a verified peer certificate carries: its common name and its DNS SANs."""
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return set()
    names = {
        str(value) for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
    }
    names |= {str(value) for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    return names


def check_peer_name(ssl_object: Any, expected: str, allowed: Sequence[str], role: str) -> None:
    """Bind the certificate to the resource: it must name `expected` (the configured resource name),
    or one of `allowed` when `TLS Allowed CN` is set. Without a verified certificate there is
    nothing to bind (plain TCP, TLS Verify Peer = no) and nothing is checked."""
    if ssl_object is None or not ssl_object.getpeercert():
        return
    names = peer_names(ssl_object)
    if allowed:
        if not names & set(allowed):
            raise TlsError(
                f"the {role}'s certificate names {', '.join(sorted(names)) or 'nothing'}, none of "
                f"which is in TLS Allowed CN ({', '.join(allowed)})"
            )
        return
    if expected not in names:
        raise TlsError(
            f"the {role}'s certificate is for {', '.join(sorted(names)) or 'no name'}, not for "
            f"{expected!r}: each daemon must present its own certificate (or list the name in "
            "TLS Allowed CN)"
        )


CHANNEL_BINDING_LABEL: Final = b"tls-server-end-point:"  # RFC 5929


def server_end_point(cert_der: bytes) -> bytes:
    """The RFC 5929 `tls-server-end-point` channel binding: a hash of the server's certificate.
    Both ends know it (the client as the peer certificate, the server as its own), and a relay
    that terminates TLS with any other certificate changes it."""
    return CHANNEL_BINDING_LABEL + hashlib.sha256(cert_der).digest()


def certificate_der(cert: Path) -> bytes:
    """The first certificate of a PEM file, DER-encoded (the one a server presents)."""
    text = cert.read_text()
    end = "-----END CERTIFICATE-----"
    first = text[: text.index(end) + len(end)] if end in text else text
    return ssl.PEM_cert_to_DER_cert(first)


def server_channel_binding(ssl_object: Any) -> bytes:
    """The binding as the accepting side knows it: its own certificate's, recorded by
    `server_context` on the SSLContext; b'' on plain TCP."""
    if ssl_object is None:
        return b""
    return bytes(getattr(ssl_object.context, "strongroom_channel_binding", b""))


def client_channel_binding(ssl_object: Any) -> bytes:
    """The binding as the connecting side sees it: from the server's certificate; b'' on plain TCP."""
    if ssl_object is None:
        return b""
    der = ssl_object.getpeercert(binary_form=True)
    return server_end_point(der) if der else b""


def check_allowed_cn(ssl_object: Any, allowed: Sequence[str]) -> None:
    if not allowed:
        return
    cn = peer_common_name(ssl_object)
    if cn not in allowed:
        raise TlsError(
            f"peer certificate CN {cn!r} is not in TLS Allowed CN ({', '.join(allowed)})"
        )


def describe_ssl_error(exc: BaseException) -> str:
    """One sentence an operator can act on."""
    text = str(exc)
    reason = getattr(exc, "reason", None) or ""
    verify = getattr(exc, "verify_message", None)
    if isinstance(exc, TimeoutError):
        return "TLS handshake timed out"
    if verify:
        return f"certificate verify failed: {verify} (is the peer's certificate signed by the configured CA?)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            "certificate verify failed: the peer's certificate is not signed by the configured CA"
        )
    if (
        reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED")
        or "CERTIFICATE_REQUIRED" in text
    ):
        return "the peer requires a client certificate and none (or an untrusted one) was presented"
    if (
        reason == "WRONG_VERSION_NUMBER"
        or "WRONG_VERSION_NUMBER" in text
        or reason == "HTTP_REQUEST"
    ):
        return "the peer speaks plain TCP, not TLS (set 'TLS Enable' the same on both sides)"
    if (
        isinstance(exc, ConnectionResetError | BrokenPipeError)
        or "EOF" in text
        or isinstance(exc, ssl.SSLEOFError)
    ):
        return "the peer closed the connection during the TLS handshake (TLS disabled there, or it refused our certificate)"
    if reason == "TLSV1_ALERT_UNKNOWN_CA" or "UNKNOWN_CA" in text:
        return "the peer does not trust our certificate (unknown CA)"
    return text or type(exc).__name__
