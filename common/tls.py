"""SSLContext builders for daemons and consoles, and clear sentences for TLS failures."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

TLS_HANDSHAKE_TIMEOUT: Final = 10.0


class TlsError(Exception):
    """TLS cannot be set up as configured; names the file or peer."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    for label, path in (("TLS Certificate", cert), ("TLS Key", key)):
        if not path.exists():
            raise TlsError(f"{label} {path} does not exist", path)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise TlsError(f"cannot load certificate {cert} with key {key}: {exc.reason or exc}", cert) from exc


def _load_ca(ctx: ssl.SSLContext, ca: Path | None) -> None:
    if ca is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    if not ca.exists():
        raise TlsError(f"TLS CA Certificate File {ca} does not exist", ca)
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except ssl.SSLError as exc:
        raise TlsError(f"cannot load CA certificates from {ca}: {exc.reason or exc}", ca) from exc


def server_context(cert: Path, key: Path, ca: Path | None, verify_peer: bool = True) -> ssl.SSLContext:
    """Mutual TLS for a daemon: its own certificate, and client certificates required when verifying."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key)
    if verify_peer:
        _load_ca(ctx, ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cert: Path | None, key: Path | None, ca: Path | None, verify_peer: bool = True) -> ssl.SSLContext:
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
    return len(first_bytes) >= 1 and first_bytes[0] == 0x16 and (len(first_bytes) < 2 or first_bytes[1] == 0x03)


def peer_common_name(ssl_object: Any) -> str | None:
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def check_allowed_cn(ssl_object: Any, allowed: Sequence[str]) -> None:
    if not allowed:
        return
    cn = peer_common_name(ssl_object)
    if cn not in allowed:
        raise TlsError(f"peer certificate CN {cn!r} is not in TLS Allowed CN ({', '.join(allowed)})")


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
        return "certificate verify failed: the peer's certificate is not signed by the configured CA"
    if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED") or "CERTIFICATE_REQUIRED" in text:
        return "the peer requires a client certificate and none (or an untrusted one) was presented"
    if reason == "WRONG_VERSION_NUMBER" or "WRONG_VERSION_NUMBER" in text or reason == "HTTP_REQUEST":
        return "the peer speaks plain TCP, not TLS (set 'TLS Enable' the same on both sides)"
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or "EOF" in text or isinstance(exc, ssl.SSLEOFError):
        return "the peer closed the connection during the TLS handshake (TLS disabled there, or it refused our certificate)"
    if reason == "TLSV1_ALERT_UNKNOWN_CA" or "UNKNOWN_CA" in text:
        return "the peer does not trust our certificate (unknown CA)"
    return text or type(exc).__name__
