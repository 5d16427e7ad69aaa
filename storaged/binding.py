"""Which certificate a job's data connection may carry: the File Daemon's own on FD→SD, never
another daemon's on FD→SD or SD→SD (#13)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.tls import peer_names


@dataclass(frozen=True)
class PeerBinding:
    """The names a data connection's certificate is held to.

    `expected` is the resource name the certificate must carry (the job's client for a File
    Daemon); '' when this Storage Daemon is not told it (the other Storage Daemon of a remote
    copy). `allowed` is this daemon's TLS Allowed CN: when set, those names replace `expected`.
    `foreign` maps the names of other daemons this one knows (its Directors, itself, the job's
    client when a Storage Daemon is expected) to what they are: a certificate carrying one of them
    is refused whatever else it carries, unless it also carries `expected`.
    """

    role: str
    expected: str = ""
    allowed: tuple[str, ...] = ()
    foreign: Mapping[str, str] = field(default_factory=dict)
    # The other Storage Daemon of a remote copy: the names its certificate carried when the
    # Director verified it; the data connection must present that certificate (one of them).
    verified: tuple[str, ...] = ()

    def problem(self, names: Collection[str]) -> str | None:
        """Why a certificate naming `names` is refused, or None. No names (plain TCP, or TLS
        Verify Peer = no): nothing to bind."""
        if not names or (self.expected and self.expected in names):
            return None
        shown = ", ".join(sorted(names))
        if self.verified:
            if set(names) & set(self.verified):
                return None
            return (
                f"the {self.role}'s certificate is for {shown}, not the one the Director verified "
                f"for it ({', '.join(self.verified)}): a daemon must present its own certificate"
            )
        for name in sorted(names):
            if name in self.foreign:
                return (
                    f"the {self.role}'s certificate is for {shown}, and {name} is "
                    f"{self.foreign[name]}: a daemon must present its own certificate"
                )
        if self.allowed:
            if set(names) & set(self.allowed):
                return None
            return (
                f"the {self.role}'s certificate is for {shown}, none of which is in this "
                f"Storage Daemon's TLS Allowed CN ({', '.join(self.allowed)})"
            )
        if self.expected:
            return (
                f"the {self.role}'s certificate is for {shown}, not for {self.expected!r} (the "
                "job's client): a daemon must present its own certificate (or list the name in "
                "this Storage Daemon's TLS Allowed CN)"
            )
        return None

    def check(self, ssl_object: Any) -> str | None:
        """`problem` for the verified certificate of a connection (its CN and DNS SANs)."""
        return self.problem(peer_names(ssl_object))
