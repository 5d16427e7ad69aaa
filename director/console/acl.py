"""Bareos ACL evaluation: the console's entries, then each profile's; first match wins; `!` denies."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

ALL: Final = "*all*"
_REGEX_CHARS: Final = set("^$.[]|()*+?{}\\")


def _matches(pattern: str, item: str) -> bool:
    if pattern.lower() == ALL:
        return True
    if _REGEX_CHARS & set(pattern):
        try:
            return re.fullmatch(pattern, item, re.IGNORECASE) is not None
        except re.error:
            return False
    return pattern.lower() == item.lower()


def acl_allows(entry_lists: Iterable[Sequence[str]], item: str) -> bool:
    """True when the first matching entry across the lists allows `item`; no match denies."""
    for entries in entry_lists:
        for entry in entries:
            deny = entry.startswith("!")
            pattern = entry[1:] if deny else entry
            if _matches(pattern, item):
                return not deny
    return False
