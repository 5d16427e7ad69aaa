"""Bareos's legal-name rule for resource and volume names, checked wherever a name is accepted.

Names reach paths (volume files in an Archive Device, spool and bootstrap files) and command lines
(`%n`, `%c`, `%v` in RunScript), so only what Bareos accepts is accepted: letters, digits and
`:._-`, at most 127 characters; resource names may also hold inner spaces, as Bareos's
`is_name_valid` allows ("Windows All Drives"), volume names may not. A name can therefore never
be `.` or `..`, hold a `/`, a NUL, a newline, a quote or anything a shell interprets.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 127
_VOLUME: Final = re.compile(r"[A-Za-z0-9:._-]+")
_RESOURCE: Final = re.compile(r"[A-Za-z0-9:._-]([A-Za-z0-9:._ -]*[A-Za-z0-9:._-])?")


def name_problem(name: str, *, volume: bool = False) -> str | None:
    """Why `name` is not a legal name, or None when it is."""
    if not name:
        return "a name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name is at most {MAX_NAME_LENGTH} characters, this one has {len(name)}"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if (_VOLUME if volume else _RESOURCE).fullmatch(name) is None:
        allowed = "letters, digits and ':._-'" + ("" if volume else " (and spaces inside)")
        return f"{name!r} holds a character other than {allowed}"
    return None


def check_name(name: str, what: str = "name", *, volume: bool = False) -> str:
    """`name` itself if legal; ValueError naming `what` and the reason otherwise."""
    problem = name_problem(name, volume=volume)
    if problem is not None:
        raise ValueError(f"illegal {what}: {problem}")
    return name
