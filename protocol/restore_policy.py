"""Restore replace policies: the vocabulary the Director sends and the File Daemon applies."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ReplacePolicy(StrEnum):
    """What a restore does with a file that exists already (Bareos `Replace`)."""

    ALWAYS = "always"  # overwrite it
    IF_NEWER = "ifnewer"  # overwrite it when the backup's copy is newer
    IF_OLDER = "ifolder"  # overwrite it when the backup's copy is older
    NEVER = "never"  # keep it


REPLACE_POLICIES: Final[tuple[str, ...]] = tuple(policy.value for policy in ReplacePolicy)
