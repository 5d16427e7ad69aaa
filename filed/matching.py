"""FileSet option matching: the first Options block whose patterns match a file decides for it."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from functools import cached_property

from protocol.fileset import OptionsSpec

DEFAULT_OPTIONS = OptionsSpec()


@dataclass(frozen=True)
class CompiledOptions:
    spec: OptionsSpec
    _patterns: dict[str, list[re.Pattern[bytes]]] = field(default_factory=dict, compare=False)

    @cached_property
    def compiled(self) -> dict[str, list[re.Pattern[bytes]]]:
        flags = re.IGNORECASE if self.spec.ignore_case else 0

        def wild(items: tuple[str, ...]) -> list[re.Pattern[bytes]]:
            return [re.compile(os.fsencode(fnmatch.translate(p)), flags) for p in items]

        def regex(items: tuple[str, ...]) -> list[re.Pattern[bytes]]:
            return [re.compile(os.fsencode(p), flags) for p in items]

        s = self.spec
        return {
            "any": wild(s.wild) + regex(s.regex),
            "dir": wild(s.wild_dir) + regex(s.regex_dir),
            "file": wild(s.wild_file) + regex(s.regex_file),
        }

    @cached_property
    def has_patterns(self) -> bool:
        return self.spec.has_patterns

    def matches(self, path: bytes, is_dir: bool) -> bool:
        """A block without patterns matches every file (it is the default for its Include)."""
        if not self.has_patterns:
            return True
        kinds = ("any", "dir") if is_dir else ("any", "file")
        for kind in kinds:
            for pattern in self.compiled[kind]:
                # wild* match the whole path (Bareos fnmatch); regex* search anywhere in it.
                if (
                    pattern.fullmatch(path)
                    if pattern.pattern.endswith(b"\\Z")
                    else pattern.search(path)
                ):
                    return True
        return False


def choose(blocks: list[CompiledOptions], path: bytes, is_dir: bool) -> OptionsSpec | None:
    """The options that apply to `path`, or None when the matching block says `Exclude = yes`.

    Bareos semantics: blocks are tried in order and the first match wins; a block with patterns
    that do not match is skipped; if nothing matches, the file is included with the settings of
    the first block (or the defaults when there is none).
    """
    for block in blocks:
        if block.matches(path, is_dir):
            return None if block.spec.exclude else block.spec
    if blocks and all(b.spec.exclude for b in blocks):
        return blocks[0].spec.model_copy(
            update={
                "exclude": False,
                "wild": (),
                "wild_dir": (),
                "wild_file": (),
                "regex": (),
                "regex_dir": (),
                "regex_file": (),
            }
        )
    for block in blocks:
        if not block.spec.exclude:
            return block.spec
    return DEFAULT_OPTIONS
