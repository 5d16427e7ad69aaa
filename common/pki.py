"""A private CA and per-daemon certificates (ECDSA P-256), written as PEM files with 0600 keys."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


class PkiError(Exception):
    """Creating or loading certificates failed; names the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _prepare(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)


def create_ca(directory: Path, common_name: str = "Strongroom CA", days: int = 3650) -> CertFiles:
    """Write directory/ca.pem and directory/ca.key; refuse to overwrite an existing CA."""
    _prepare(directory)
    files = CertFiles(directory / "ca.pem", directory / "ca.key")
    if files.cert.exists() or files.key.exists():
        raise PkiError(files.cert, "a CA already exists here; use load_ca")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def load_ca(directory: Path) -> CertFiles:
    files = CertFiles(directory / "ca.pem", directory / "ca.key")
    for path in (files.cert, files.key):
        if not path.exists():
            raise PkiError(path, "missing")
    return files


def _san(hostnames: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in hostnames:
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue_certificate(
    ca: CertFiles,
    directory: Path,
    name: str,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    days: int = 825,
) -> CertFiles:
    """Write directory/<name>.pem and .key, signed by the CA, good as TLS server and client."""
    _prepare(directory)
    try:
        ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(ca.cert, f"cannot load the CA: {exc}") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PkiError(ca.key, "the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
    _write_key(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def init_pki(
    directory: Path, names: Sequence[str], hostnames: Sequence[str] | None = None
) -> dict[str, CertFiles]:
    """Create (or reuse) the CA and one certificate per name; existing certificates are kept."""
    hosts = list(hostnames) if hostnames is not None else [*DEFAULT_HOSTNAMES, socket.getfqdn()]
    ca = load_ca(directory) if (directory / "ca.pem").exists() else create_ca(directory)
    out: dict[str, CertFiles] = {}
    for name in names:
        existing = CertFiles(directory / f"{name}.pem", directory / f"{name}.key")
        if existing.cert.exists() and existing.key.exists():
            out[name] = existing
        else:
            out[name] = issue_certificate(ca, directory, name, hosts)
    return out
