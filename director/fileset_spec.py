"""Turn a configured FileSet into the wire FileSetSpec the File Daemon walks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec

if TYPE_CHECKING:
    from director.config import FileSetResource, OptionsBlock


def _options(block: OptionsBlock) -> OptionsSpec:
    """Every Options directive the wire spec has, copied by name from the configured block: the
    field list is the spec's, so a directive can never be dropped on the way (Recurse was)."""
    values: dict[str, object] = {}
    for name in OptionsSpec.model_fields:
        value = getattr(block, name, None)
        if value is not None:
            values[name] = value
    return OptionsSpec.model_validate(values)


def fileset_spec(fileset: FileSetResource) -> FileSetSpec:
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
