"""Read a configuration source into raw resources by type, and the helpers daemon schemas share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from common.config.errors import ConfigError, ConfigWarning, SourceLocation
from common.config.parser import RawResource, parse_source
from common.config.schema import Resource, Values, build, collect
from protocol.names import name_problem

T = TypeVar("T")
R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A validated configuration, what was worth warning about, and every file read."""

    config: T
    warnings: tuple[ConfigWarning, ...]
    files: tuple[Path, ...]


@dataclass
class Source:
    """Raw resources grouped by normalized type, plus warnings collected while building."""

    by_type: dict[str, list[RawResource]]
    files: list[Path]
    warnings: list[ConfigWarning]


def read_source(
    path: Path, types: Mapping[str, str], unimplemented: frozenset[str] = frozenset()
) -> Source:
    """Parse `path`; every top-level resource type must be one of `types` (normalized → canonical)."""
    raws, files = parse_source(path)
    source = Source({}, files, [])
    for raw in raws:
        canonical = types.get(raw.key)
        if canonical is None:
            if raw.key in unimplemented:
                source.warnings.append(
                    ConfigWarning(
                        raw.loc.file,
                        raw.loc.line,
                        raw.name,
                        "Bareos resource type not implemented by Strongroom yet; ignored",
                    )
                )
                continue
            known = ", ".join(sorted(set(types.values())))
            raise ConfigError.at(
                raw.loc, f"unknown resource type {raw.name!r} (expected one of: {known})"
            )
        source.by_type.setdefault(canonical, []).append(raw)
    return source


def resource_name(raw: RawResource, values: Values) -> str:
    if "name" not in values:
        raise ConfigError.at(raw.loc, f"{raw.name} resource has no Name")
    name = values["name"][0]
    if not isinstance(name, str) or not name:
        raise ConfigError.at(values["name"][1], "empty Name", "Name")
    problem = name_problem(name)  # Bareos's rule: names reach paths and command lines (#13)
    if problem is not None:
        raise ConfigError.at(values["name"][1], problem, "Name")
    return name


def collect_named(
    cls: type[Resource], source: Source, type_name: str
) -> dict[str, tuple[RawResource, Values]]:
    """Collect every resource of one type by Name; a duplicate Name is an error."""
    out: dict[str, tuple[RawResource, Values]] = {}
    for raw in source.by_type.get(type_name, []):
        values = collect(cls, raw, source.warnings)
        name = resource_name(raw, values)
        if name in out:
            first = out[name][0].loc
            raise ConfigError.at(
                values["name"][1],
                f"duplicate {type_name} resource {name!r} (first defined at {first})",
                "Name",
            )
        out[name] = (raw, values)
    return out


def build_named(cls: type[R], source: Source, type_name: str) -> dict[str, R]:
    return {
        name: build(cls, values, raw.loc, f"{type_name} {name!r}")
        for name, (raw, values) in collect_named(cls, source, type_name).items()
    }


def exactly_one(items: Mapping[str, Any], type_name: str, path: Path) -> Any:
    if len(items) != 1:
        found = ", ".join(sorted(items)) or "none"
        locs = [getattr(v, "source", SourceLocation(path, 0)) for v in items.values()]
        loc = locs[1] if len(locs) > 1 else SourceLocation(path, 0)
        raise ConfigError.at(loc, f"exactly one {type_name} resource is required (found: {found})")
    return next(iter(items.values()))


def check_ref(
    resource: Resource, field: str, kind: str, table: Mapping[str, Any], directive: str
) -> None:
    """A named reference must resolve; the error points at the referencing resource."""
    value = getattr(resource, field)
    names = value if isinstance(value, tuple) else (value,)
    for name in names:
        if name is not None and name not in table:
            known = ", ".join(sorted(table)) or "none defined"
            raise ConfigError.at(
                resource.source,
                f"refers to {kind} {name!r}, which does not exist (known: {known})",
                directive,
            )
