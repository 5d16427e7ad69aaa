"""Resource parts every daemon shares: TLS directives and the Messages resource."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from common.config.errors import ConfigError
from common.config.parser import RawDirective
from common.config.schema import Resource, Values, normalized

TLS_UNIMPLEMENTED: frozenset[str] = normalized(
    "TLS Authenticate",
    "TLS CA Certificate Dir",
    "TLS Certificate Revocation List",
    "TLS Cipher List",
    "TLS Cipher Suites",
    "TLS DH File",
    "TLS Protocol",
    "TLS PSK Enable",
    "TLS PSK Require",
    "Enable kTLS",
)


class TlsFields(Resource):
    """TLS directives, on a daemon's own resource and on every peer resource."""

    tls_enable: bool = True
    tls_require: bool = True
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    tls_ca_certificate_file: Path | None = None
    tls_verify_peer: bool = True
    tls_allowed_cn: tuple[str, ...] = ()


class MessageDestination(BaseModel):
    """One `kind [= target] = types` line of a Messages resource."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    target: str | None
    types: tuple[str, ...]


DESTINATIONS: frozenset[str] = normalized(
    "console",
    "append",
    "file",
    "mail",
    "mail on error",
    "mail on success",
    "operator",
    "director",
    "catalog",
    "stdout",
    "stderr",
    "syslog",
)
_TARGETED: frozenset[str] = normalized(
    "append", "file", "mail", "mail on error", "mail on success", "operator", "director"
)


class Messages(Resource):
    """Where job and daemon messages go (Bareos Messages resource)."""

    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized("Timestamp Format", "Syslog Facility")
    name: str
    description: str | None = None
    mail_command: str | None = None
    operator_command: str | None = None
    destinations: tuple[MessageDestination, ...] = ()

    @classmethod
    def directive_hook(cls, directive: RawDirective, values: Values) -> bool:
        if directive.key not in DESTINATIONS:
            return False
        tokens = directive.tokens()
        target: str | None = None
        split = next((n for n, t in enumerate(tokens) if t.kind.value == "="), None)
        if directive.key in _TARGETED:
            if split is None:
                raise ConfigError.at(
                    directive.loc,
                    f"expected '{directive.name} = <target> = <types>'",
                    directive.name,
                )
            target = " ".join(t.value for t in tokens[:split])
            tokens = tokens[split + 1 :]
        types = tuple(t.value for t in tokens if t.kind.value != ",")
        if not types:
            raise ConfigError.at(directive.loc, "no message types given", directive.name)
        kind = directive.name.lower().replace(" ", "")
        previous = values.get("destinations", ((), directive.loc))[0]
        values["destinations"] = (
            (*previous, MessageDestination(kind=kind, target=target, types=types)),
            directive.loc,
        )
        return True
