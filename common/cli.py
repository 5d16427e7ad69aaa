"""Command lines of every Strongroom program: usage errors exit 41, as Bareos's do."""

from __future__ import annotations

import argparse
import sys
from typing import Final, NoReturn

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 41  # a command-line error (systemd units: RestartPreventExitStatus=41 42)
EXIT_CONFIG: Final = 42  # a configuration error


class UsageParser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit status 41 (argparse's own is 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)
