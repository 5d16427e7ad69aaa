"""The Storage Daemon's configuration model (Bareos `bareos-sd.d` resources) and its loader."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from common.config.loader import Loaded, build_named, check_ref, exactly_one, read_source
from common.config.resources import TLS_UNIMPLEMENTED, Messages, TlsFields
from common.config.schema import Resource, normalized
from common.config.types import Duration, Size


class StorageResource(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"sdport": "port", "sdaddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Plugin Directory",
        "Plugin Names",
        "Backend Directory",
        "Maximum Network Buffer Size",
        "Sd Addresses",
        "Sd Source Address",
        "Fd Connect Timeout",
        "Sd Connect Timeout",
        "Checkpoint Interval",
        "File Device Concurrent Read",
        "Ndmp Enable",
        "Ndmp Snooping",
        "Ndmp Log Level",
        "Ndmp Address",
        "Ndmp Port",
        "Statistics Collect Interval",
        "Collect Device Statistics",
        "Collect Job Statistics",
        "Device Reserve By Media Type",
        "Absolute Job Timeout",
        "Allow Bandwidth Bursting",
        "Maximum Bandwidth Per Job",
        "Log Timestamp Format",
        "Secure Erase Command",
        "Pid Directory",
        "Scripts Directory",
        "Ver Id",
        "Just In Time Reservation",
        "Enable JSON Compatible Messages",
    )
    name: str
    description: str | None = None
    port: int = 9103
    address: str | None = None
    working_directory: Path | None = None
    maximum_concurrent_jobs: int = 1000
    heartbeat_interval: Duration = (
        60  # seconds; 0 turns heartbeats (and judging a silent peer dead) off
    )
    client_connect_wait: Duration = 1800
    auth_timeout: Duration = 30
    messages: str | None = None


class SdDirector(TlsFields):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Maximum Bandwidth Per Job", "Key Encryption Key"
    )
    name: str
    description: str | None = None
    password: SecretStr
    monitor: bool = False


class Device(Resource):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized(
        "Random Access",
        "Automatic Mount",
        "Removable Media",
        "Always Open",
        "Autochanger",
        "Changer Device",
        "Changer Command",
        "Alert Command",
        "Drive Index",
        "Autoselect",
        "Maximum Block Size",
        "Minimum Block Size",
        "Maximum File Size",
        "Maximum Job Spool Size",
        "Maximum Spool Size",
        "Spool Directory",
        "Requires Mount",
        "Mount Point",
        "Mount Command",
        "Unmount Command",
        "Offline On Unmount",
        "Hardware End Of Medium",
        "Fast Forward Space File",
        "Use MTIOCGET",
        "BSF At EOM",
        "Two EOF",
        "Backward Space Record",
        "Backward Space File",
        "Forward Space Record",
        "Forward Space File",
        "Maximum Open Wait",
        "Maximum Rewind Wait",
        "Maximum Changer Wait",
        "Volume Poll Interval",
        "Close On Poll",
        "Check Labels",
        "Label Type",
        "Label Block Size",
        "No Rewind On Close",
        "Device Options",
        "Diagnostic Device",
        "Auto Deflate",
        "Auto Deflate Algorithm",
        "Auto Deflate Level",
        "Auto Inflate",
        "Collect Statistics",
        "Eof On Error Is Eot",
        "Query Crypto Status",
        "Access Mode",
        "Block Checksum",
        "Maximum Network Buffer Size",
        "Device Reserve By Media Type",
        "Maximum Concurrent Jobs Per Device",
    )
    name: str
    description: str | None = None
    media_type: str
    archive_device: str
    device_type: str = "File"
    label_media: bool = False
    count: int = 1
    maximum_concurrent_jobs: int = 1
    maximum_volume_size: Size | None = None
    # Volumes are written and read with O_DIRECT where the file system allows it (docs/devices.md);
    # `no` keeps them in the page cache, for a network file system where each direct write waits
    # for the server.
    direct_io: bool = True


class StorageDaemonConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    storage: StorageResource
    directors: dict[str, SdDirector]
    devices: dict[str, Device]
    messages: dict[str, Messages]


TYPES = {"storage": "Storage", "director": "Director", "device": "Device", "messages": "Messages"}


def load_storage_config(path: Path) -> Loaded[StorageDaemonConfig]:
    source = read_source(path, TYPES, normalized("Autochanger", "Ndmp"))
    config = StorageDaemonConfig(
        storage=exactly_one(build_named(StorageResource, source, "Storage"), "Storage", path),
        directors=build_named(SdDirector, source, "Director"),
        devices=build_named(Device, source, "Device"),
        messages=build_named(Messages, source, "Messages"),
    )
    check_ref(config.storage, "messages", "Messages", config.messages, "Messages")
    return Loaded(config, tuple(source.warnings), tuple(source.files))
