"""Message types, the type filters of a Messages destination, and %-codes for mail/operator commands."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final


class MessageType(StrEnum):
    """Bareos message types (message_severity.h); a job message's level is one of them."""

    ABORT = "abort"
    DEBUG = "debug"
    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    SAVED = "saved"
    NOTSAVED = "notsaved"
    SKIPPED = "skipped"
    MOUNT = "mount"
    TERMINATE = "terminate"
    RESTORED = "restored"
    SECURITY = "security"
    ALERT = "alert"
    VOLMGMT = "volmgmt"
    AUDIT = "audit"


ALL: Final = frozenset(MessageType) - {MessageType.DEBUG}  # `all` is every type but debug


class FilterError(ValueError):
    """A destination names a message type that does not exist."""


def parse_types(words: Iterable[str]) -> frozenset[MessageType]:
    """`all, !skipped, !saved` → the set of types a destination takes, applied left to right."""
    chosen: set[MessageType] = set()
    for word in words:
        name = word.strip().lower()
        negate = name.startswith("!")
        name = name.lstrip("!")
        if name == "all":
            types = set(ALL)
        else:
            try:
                types = {MessageType(name)}
            except ValueError:
                raise FilterError(f"unknown message type {word!r}") from None
        if negate:
            chosen -= types
        else:
            chosen |= types
    return frozenset(chosen)


def message_type(level: str) -> MessageType:
    """The type of a job message logged at `level` (info, warning, error, fatal, …)."""
    try:
        return MessageType(level.lower())
    except ValueError:
        return MessageType.INFO


EXIT_WORDS: Final = {
    "T": "OK",
    "W": "OK -- with warnings",
    "E": "Error",
    "f": "Fatal Error",
    "A": "Canceled",
    "D": "Differences",
    "I": "Incomplete",
    "e": "Error",
}


def substitute(command: str, codes: Mapping[str, str]) -> str:
    """Expand Bareos %-codes in a Mail/Operator Command; every value is shell-quoted (a job or
    client name cannot inject shell syntax), `%%` is a `%`, an unknown code is left as it is."""
    out: list[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "%" and i + 1 < len(command):
            code = command[i + 1]
            if code == "%":
                out.append("%")
                i += 2
                continue
            if code in codes:
                out.append(shlex.quote(codes[code]))
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)
