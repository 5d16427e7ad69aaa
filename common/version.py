"""The Strongroom version string, one place."""

from __future__ import annotations

from importlib import metadata
from typing import Final


def _version() -> str:
    try:
        return metadata.version("strongroom")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0+source"


VERSION: Final = _version()
