"""Which Storage Daemon name a File Daemon is told to find in the SD's certificate (#13)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from director.jobs.links import sd_certificate_name


@dataclass
class _Ssl:
    names: tuple[str, ...]

    def getpeercert(self) -> dict[str, Any]:
        return {
            "subject": ((("commonName", self.names[0]),),),
            "subjectAltName": tuple(("DNS", n) for n in self.names[1:]),
        }


@dataclass
class _Conn:
    tls: bool
    ssl_object: _Ssl | None


@dataclass
class _Storage:
    name: str
    tls_allowed_cn: tuple[str, ...] = ()


def test_one_allowed_cn_is_the_name() -> None:
    conn = _Conn(True, _Ssl(("bareos-sd", "localhost")))
    assert sd_certificate_name(_Storage("File", ("vault-sd",)), conn) == "vault-sd"


def test_the_certificate_the_director_verified_names_the_sd() -> None:
    conn = _Conn(True, _Ssl(("bareos-sd", "localhost")))
    # The resource's name when the certificate carries it, else one of the certificate's names.
    assert sd_certificate_name(_Storage("localhost"), conn) == "localhost"
    assert sd_certificate_name(_Storage("File"), conn) == "bareos-sd"


def test_plain_tcp_names_nothing() -> None:
    assert sd_certificate_name(_Storage("File"), _Conn(False, None)) == ""
