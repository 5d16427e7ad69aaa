"""`strongroom-sd`: the Storage Daemon entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from common.runtime import DaemonSpec, daemon_main
from storaged.config import load_storage_config
from storaged.daemon import StorageDaemon

SPEC = DaemonSpec(
    prog="strongroom-sd",
    description="Strongroom Storage Daemon: owns devices and volumes.",
    load_config=load_storage_config,
    create=StorageDaemon,
    own_resource=lambda config: config.storage,
    resource_label="Storage",
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    daemon_main(SPEC, argv)
