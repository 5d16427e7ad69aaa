"""Configuration errors and warnings: every one names file, line and directive."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceLocation:
    """Where something was written."""

    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _format(file: Path, line: int, directive: str | None, message: str) -> str:
    where = f"{file}:{line}"
    return f"{where}: {directive}: {message}" if directive else f"{where}: {message}"


class ConfigError(Exception):
    """A configuration that cannot be loaded; `str()` reads `file:line: directive: message`."""

    def __init__(self, file: Path, line: int, message: str, directive: str | None = None) -> None:
        super().__init__(_format(file, line, directive, message))
        self.file = file
        self.line = line
        self.directive = directive
        self.message = message

    @classmethod
    def at(cls, loc: SourceLocation, message: str, directive: str | None = None) -> ConfigError:
        return cls(loc.file, loc.line, message, directive)


@dataclass(frozen=True)
class ConfigWarning:
    """Something loadable but worth telling: a Bareos directive we do not implement yet."""

    file: Path
    line: int
    directive: str | None
    message: str

    def __str__(self) -> str:
        return _format(self.file, self.line, self.directive, self.message)
