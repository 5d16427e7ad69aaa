"""`strongroom-dir`: the Director entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from common.runtime import DaemonSpec, daemon_main
from director.config import load_director_config
from director.daemon import DirectorDaemon

SPEC = DaemonSpec(
    prog="strongroom-dir",
    description="Strongroom Director: configuration, catalog, schedules and the job queue.",
    load_config=load_director_config,
    create=DirectorDaemon,
    own_resource=lambda config: config.director,
    resource_label="Director",
)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    daemon_main(SPEC, argv)
