"""The File Daemon's configuration model (Bareos `bareos-fd.d` resources) and its loader."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from common.config.loader import Loaded, build_named, check_ref, exactly_one, read_source
from common.config.resources import TLS_UNIMPLEMENTED, Messages, TlsFields
from common.config.schema import normalized
from common.config.types import Duration, Size
from common.link import DEFAULT_HEARTBEAT_INTERVAL


class FileDaemonResource(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"fdport": "port", "fdaddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Plugin Directory",
        "Plugin Names",
        "Fd Addresses",
        "Fd Source Address",
        "Maximum Workers Per Job",
        "Pki Signatures",
        "Pki Encryption",
        "Pki Key Pair",
        "Pki Signer",
        "Pki Master Key",
        "Pki Cipher",
        "Always Use LMDB",
        "LMDB Threshold",
        "Maximum Bandwidth Per Job",
        "Allow Bandwidth Bursting",
        "Compatible",
        "Absolute Job Timeout",
        "Log Timestamp Format",
        "Secure Erase Command",
        "Pid Directory",
        "Scripts Directory",
        "Ver Id",
        "Maximum Concurrent Jobs",
        "Enable JSON Compatible Messages",
        "Sd Connect Timeout",
    )
    name: str
    description: str | None = None
    port: int = 9102
    address: str | None = None
    working_directory: Path | None = None
    # A restored file of 1 MiB or more is written with O_DIRECT where the file system allows it
    # (filed/direct_data.py); `no` writes every file through the page cache.
    direct_io: bool = True
    heartbeat_interval: Duration = (
        DEFAULT_HEARTBEAT_INTERVAL  # 0 turns heartbeats off (common.link)
    )
    maximum_network_buffer_size: Size | None = None
    auth_timeout: Duration = 30
    messages: str | None = None
    # Self-protection, enforced by the File Daemon whatever a Director asks (#13). Allowed Script
    # Dir: client scripts must be programs inside these directories (no shell syntax). Allowed Job
    # Command: client scripts must be exactly one of these command lines. Allow Restore = no: this
    # client is read-only, restores to it are refused.
    allowed_script_dir: tuple[Path, ...] = ()
    allowed_job_command: tuple[str, ...] = ()
    allow_restore: bool = True


class FdDirector(TlsFields):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Maximum Bandwidth Per Job",
        "Key Encryption Key",
    )
    name: str
    description: str | None = None
    password: SecretStr
    monitor: bool = False
    address: str | None = None
    port: int = 9101
    connection_from_director_to_client: bool = True
    connection_from_client_to_director: bool = False
    # The same self-protection for this Director alone: its client scripts must pass these lists
    # and the Client resource's (the stricter wins; filed/protection.py).
    allowed_script_dir: tuple[Path, ...] = ()
    allowed_job_command: tuple[str, ...] = ()


class FileDaemonConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    client: FileDaemonResource
    directors: dict[str, FdDirector]
    messages: dict[str, Messages]


TYPES = {"client": "Client", "filedaemon": "Client", "director": "Director", "messages": "Messages"}


def load_client_config(path: Path) -> Loaded[FileDaemonConfig]:
    source = read_source(path, TYPES)
    config = FileDaemonConfig(
        client=exactly_one(
            build_named(FileDaemonResource, source, "Client"), "Client/FileDaemon", path
        ),
        directors=build_named(FdDirector, source, "Director"),
        messages=build_named(Messages, source, "Messages"),
    )
    check_ref(config.client, "messages", "Messages", config.messages, "Messages")
    return Loaded(config, tuple(source.warnings), tuple(source.files))
