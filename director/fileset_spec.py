"""Turn a configured FileSet into the wire FileSetSpec the File Daemon walks."""

from __future__ import annotations

import os
from typing import Any

from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec

_OPTION_FIELDS = (
    "signature", "compression", "one_fs", "sparse", "hard_links", "xattr_support", "acl_support",
    "no_atime", "exclude", "ignore_case", "wild", "wild_dir", "wild_file", "regex", "regex_dir",
    "regex_file", "mtime_only",
)


def _options(block: Any) -> OptionsSpec:
    values: dict[str, Any] = {}
    for name in _OPTION_FIELDS:
        if name in OptionsSpec.model_fields and hasattr(block, name):
            value = getattr(block, name)
            if value is not None:
                values[name] = value
    return OptionsSpec(**values)


def fileset_spec(fileset: Any) -> FileSetSpec:
    """The FileSet resource's Include/Exclude/Options as the File Daemon receives them."""
    includes = tuple(
        IncludeSpec(
            files=tuple(os.fsencode(f) for f in block.file),
            options=tuple(_options(o) for o in block.options),
            exclude_dir_containing=tuple(getattr(block, "exclude_dir_containing", ())),
        )
        for block in fileset.include
    )
    excludes = tuple(os.fsencode(f) for block in fileset.exclude for f in block.file)
    return FileSetSpec(name=fileset.name, include=includes, exclude=excludes)
