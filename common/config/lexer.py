"""Tokens of the Bareos resource syntax, with `@file` / `@|"command"` includes expanded inline."""

from __future__ import annotations

import enum
import glob
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common.config.errors import ConfigError, SourceLocation

INCLUDE_COMMAND_TIMEOUT: Final = 60.0
_WORD_STOP: Final = frozenset(' \t\r\n,;{}#="')


class Kind(enum.Enum):
    WORD = "word"
    STRING = "string"
    LBRACE = "{"
    RBRACE = "}"
    EQUALS = "="
    COMMA = ","
    EOL = "end of line"
    EOF = "end of file"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str
    loc: SourceLocation
    spaced: bool  # whitespace before this token on its line


def tokenize(path: Path, stack: tuple[Path, ...] = ()) -> Iterator[Token]:
    """Tokens of one file, includes expanded; ends with one EOF token for the outermost file."""
    yield from _tokens(path, stack)
    if not stack:
        yield Token(Kind.EOF, "", SourceLocation(path, _line_count(path)), True)


def _line_count(path: Path) -> int:
    try:
        return path.read_text(errors="replace").count("\n") + 1
    except OSError:
        return 1


def _read(path: Path, stack: tuple[Path, ...], loc: SourceLocation | None) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError as exc:
        if loc is None:
            raise
        raise ConfigError.at(loc, f"included file {path} not found") from exc
    except OSError as exc:
        where = loc or SourceLocation(path, 0)
        raise ConfigError.at(where, f"cannot read {path}: {exc.strerror}") from exc


def _tokens(
    path: Path,
    stack: tuple[Path, ...],
    text: str | None = None,
    include_loc: SourceLocation | None = None,
) -> Iterator[Token]:
    resolved = path.resolve() if text is None else path
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise ConfigError.at(include_loc or SourceLocation(path, 1), f"include cycle: {chain}")
    if text is None:
        text = _read(path, stack, include_loc)
    stack = (*stack, resolved)
    line = 1
    i = 0
    n = len(text)
    spaced = True
    while i < n:
        ch = text[i]
        loc = SourceLocation(path, line)
        if ch == "\n":
            yield Token(Kind.EOL, "\n", loc, spaced)
            line += 1
            i += 1
            spaced = True
            continue
        if ch in " \t\r":
            i += 1
            spaced = True
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == ";":
            yield Token(Kind.EOL, ";", loc, spaced)
            i += 1
            spaced = True
            continue
        single = {"{": Kind.LBRACE, "}": Kind.RBRACE, "=": Kind.EQUALS, ",": Kind.COMMA}.get(ch)
        if single is not None:
            yield Token(single, ch, loc, spaced)
            i += 1
            spaced = False
            continue
        if ch == '"':
            value, i, line = _string(text, i, path, line)
            yield Token(Kind.STRING, value, loc, spaced)
            spaced = False
            continue
        start = i
        while i < n and text[i] not in _WORD_STOP:
            i += 1
        word = text[start:i]
        if word.startswith("@"):
            yield from _include(word, path, stack, loc)
            if word == "@|":
                value, i, line = (
                    _string(text, i, path, line) if i < n and text[i] == '"' else ("", i, line)
                )
                yield from _command_include(value, path, stack, loc)
            spaced = True
            continue
        yield Token(Kind.WORD, word, loc, spaced)
        spaced = False


def _string(text: str, i: int, path: Path, line: int) -> tuple[str, int, int]:
    """A quoted string starting at text[i] == '"'; backslash escapes the next character."""
    start_line = line
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            if nxt == "\n":
                line += 1
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1, line
        if ch == "\n":
            line += 1
        out.append(ch)
        i += 1
    raise ConfigError(path, start_line, "unterminated quoted string")


def _include(
    word: str, path: Path, stack: tuple[Path, ...], loc: SourceLocation
) -> Iterator[Token]:
    if word == "@|":
        return
    target = word[1:]
    if not target:
        raise ConfigError.at(loc, "'@' must be followed by a file name")
    base = path.parent
    pattern = target if Path(target).is_absolute() else str(base / target)
    if glob.has_magic(pattern):
        matches = sorted(glob.glob(pattern))
        for match in matches:
            yield from _tokens(Path(match), stack, include_loc=loc)
            yield Token(Kind.EOL, "\n", loc, True)
        return
    yield from _tokens(Path(pattern), stack, include_loc=loc)
    yield Token(Kind.EOL, "\n", loc, True)


def _command_include(
    command: str, path: Path, stack: tuple[Path, ...], loc: SourceLocation
) -> Iterator[Token]:
    if not command:
        raise ConfigError.at(
            loc, '@| must be followed by a quoted command, e.g. @|"cat /etc/x.conf"'
        )
    try:
        result = subprocess.run(
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=INCLUDE_COMMAND_TIMEOUT,
            check=False,
            cwd=path.parent,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError.at(loc, f"include command {command!r} failed: {exc}") from exc
    if result.returncode != 0:
        raise ConfigError.at(
            loc, f"include command {command!r} exited {result.returncode}: {result.stderr.strip()}"
        )
    pseudo = Path(f"{path}:{loc.line}:@|{command}")
    yield from _tokens(pseudo, stack, text=result.stdout, include_loc=loc)
    yield Token(Kind.EOL, "\n", loc, True)
