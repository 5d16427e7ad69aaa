"""Real daemons as subprocesses on free loopback ports, from a generated configuration tree."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.fixtures import make_test_layout
from console import launcher
from console.admin import processes, write_installation
from console.templates import Layout


@dataclass
class Installation:
    layout: Layout
    pids: dict[str, int]

    @property
    def root(self) -> Path:
        return self.layout.root

    def console(
        self,
        *commands: str,
        args: tuple[str, ...] = (),
        config: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run srconsole with commands on stdin, as `echo ... | bconsole` would."""
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "console",
                "-c",
                str(config or self.layout.console_config),
                *args,
            ],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log(self, prog: str) -> str:
        return (self.root / "log" / f"{prog}.log").read_text(errors="replace")


def _install(
    root: Path, tls: bool, before_start: Callable[[Installation], None] | None = None
) -> Iterator[Installation]:
    """Write an installation, let `before_start` change its configuration, start its daemons."""
    layout = make_test_layout(root, tls=tls)
    write_installation(layout)
    if before_start is not None:
        before_start(Installation(layout, {}))
    pids: dict[str, int] = {}
    try:
        for process in processes(root):
            pids[process.prog] = launcher.start(process)
        yield Installation(layout, pids)
    finally:
        for process in reversed(processes(root)):
            launcher.stop(process.pid_file)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    yield from _install(tmp_path_factory.mktemp("install"), tls=True)


@pytest.fixture(scope="module")
def plain_installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    yield from _install(tmp_path_factory.mktemp("plain"), tls=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.system)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
