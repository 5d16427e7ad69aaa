"""`strongroom-fd`: the File Daemon entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from common.runtime import DaemonSpec, daemon_main
from filed.config import load_client_config
from filed.daemon import FileDaemon

SPEC = DaemonSpec(
    prog="strongroom-fd",
    description="Strongroom File Daemon: reads and restores this client's files.",
    load_config=load_client_config,
    create=FileDaemon,
    own_resource=lambda config: config.client,
    resource_label="Client",
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    daemon_main(SPEC, argv)
