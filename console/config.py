"""The console's configuration (bconsole.conf style): Director resources and named Consoles."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from common.config.errors import ConfigError
from common.config.loader import Loaded, build_named, check_ref, read_source
from common.config.resources import TLS_UNIMPLEMENTED, TlsFields
from common.config.schema import normalized


class ConsoleDirector(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"dirport": "port", "diraddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Heartbeat Interval", "Source Address"
    )
    name: str
    description: str | None = None
    address: str
    port: int = 9101
    password: SecretStr


class ConsoleConsole(TlsFields):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Heartbeat Interval", "Rc File"
    )
    name: str
    description: str | None = None
    password: SecretStr
    director: str | None = None
    history_file: Path | None = None
    history_length: int = 100


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    directors: dict[str, ConsoleDirector]
    consoles: dict[str, ConsoleConsole]


def load_console_config(path: Path) -> Loaded[ConsoleConfig]:
    source = read_source(path, {"director": "Director", "console": "Console"})
    config = ConsoleConfig(
        directors=build_named(ConsoleDirector, source, "Director"),
        consoles=build_named(ConsoleConsole, source, "Console"),
    )
    if not config.directors:
        raise ConfigError(path, 1, "no Director resource: the console needs one to connect to")
    for console in config.consoles.values():
        check_ref(console, "director", "Director", config.directors, "Director")
    return Loaded(config, tuple(source.warnings), tuple(source.files))
