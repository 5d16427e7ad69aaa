"""Map raw resources onto frozen pydantic models: directive → field by name, converted by type."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from common.config.errors import ConfigError, ConfigWarning, SourceLocation
from common.config.parser import RawDirective, RawResource, normalize
from common.config.types import DURATION, SIZE, parse_bool, parse_duration, parse_size

Values = dict[str, tuple[Any, SourceLocation]]


class Resource(BaseModel):
    """Base of every configuration resource and nested block."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    # normalized directive name -> field name, for Bareos's alternative spellings
    ALIASES: ClassVar[dict[str, str]] = {}
    # normalized nested block name -> field name (FileSet Include/Exclude/Options, Job RunScript)
    BLOCKS: ClassVar[dict[str, str]] = {}
    # normalized Bareos directives this resource accepts but Strongroom does not implement yet
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset()

    source: SourceLocation = Field(exclude=True, repr=False)

    @classmethod
    def directive_hook(cls, directive: RawDirective, values: Values) -> bool:
        """Handle a directive specially (return True when handled)."""
        return False


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """Strip Optional and Annotated; return the base type and the Annotated metadata."""
    meta: tuple[Any, ...] = ()
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            args = get_args(annotation)
            annotation, meta = args[0], meta + tuple(args[1:])
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, meta


def _kind(annotation: Any, metadata: list[Any]) -> tuple[str, Any]:
    base, meta = _unwrap(annotation)
    meta = meta + tuple(metadata)
    if SIZE in meta:
        return "size", None
    if DURATION in meta:
        return "duration", None
    origin = get_origin(base)
    if origin is tuple:
        inner, inner_meta = _unwrap(get_args(base)[0])
        if isinstance(inner, type) and issubclass(inner, Resource):
            return "blocks", inner
        return "list", _kind(inner, list(inner_meta))[0]
    if base is bool:
        return "bool", None
    if base is int:
        return "int", None
    if base is float:
        return "float", None
    if base is SecretStr:
        return "secret", None
    if base is Path:
        return "path", None
    return "str", None


def _convert(kind: str, text: str, loc: SourceLocation) -> Any:
    match kind:
        case "bool":
            return parse_bool(text)
        case "int":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a whole number") from None
        case "float":
            return float(text)
        case "size":
            return parse_size(text)
        case "duration":
            return parse_duration(text)
        case "secret":
            return SecretStr(text)
        case "path":
            path = Path(text)
            return path if path.is_absolute() else (loc.file.parent / path)
        case _:
            return text


def field_map(cls: type[Resource]) -> dict[str, str]:
    mapping = {name.replace("_", ""): name for name in cls.model_fields if name != "source"}
    mapping.update(cls.ALIASES)
    return mapping


def collect(cls: type[Resource], raw: RawResource, warnings: list[ConfigWarning]) -> Values:
    """Convert a raw resource's directives and blocks into field values with their locations."""
    values: Values = {}
    fields = field_map(cls)
    for directive in raw.directives:
        if cls.directive_hook(directive, values):
            continue
        field_name = fields.get(directive.key)
        if field_name is None or field_name in cls.BLOCKS.values():
            if directive.key in cls.UNIMPLEMENTED:
                warnings.append(
                    ConfigWarning(
                        directive.loc.file,
                        directive.loc.line,
                        directive.name,
                        f"Bareos directive not implemented by Strongroom yet; ignored (in {raw.name})",
                    )
                )
                continue
            raise ConfigError.at(
                directive.loc, f"unknown directive in {raw.name} resource", directive.name
            )
        info = cls.model_fields[field_name]
        kind, inner = _kind(info.annotation, list(info.metadata))
        try:
            if kind == "list":
                items = [_convert(inner, t, directive.loc) for t in directive.item_texts()]
                previous = values.get(field_name, ((), directive.loc))[0]
                values[field_name] = ((*previous, *items), directive.loc)
                continue
            if field_name in values:
                first = values[field_name][1]
                raise ConfigError.at(
                    directive.loc,
                    f"given twice in {raw.name} (first at line {first.line})",
                    directive.name,
                )
            values[field_name] = (_convert(kind, directive.text(), directive.loc), directive.loc)
        except ValueError as exc:
            raise ConfigError.at(directive.loc, str(exc), directive.name) from exc
    for block in raw.blocks:
        field_name = cls.BLOCKS.get(block.key)
        if field_name is None:
            if block.key in cls.UNIMPLEMENTED:
                warnings.append(
                    ConfigWarning(
                        block.loc.file,
                        block.loc.line,
                        block.name,
                        "Bareos block not implemented by Strongroom yet; ignored",
                    )
                )
                continue
            raise ConfigError.at(block.loc, f"unknown block in {raw.name} resource", block.name)
        info = cls.model_fields[field_name]
        _kind_name, inner_cls = _kind(info.annotation, list(info.metadata))
        sub = build(inner_cls, collect(inner_cls, block, warnings), block.loc, block.name)
        previous = values.get(field_name, ((), block.loc))[0]
        values[field_name] = ((*previous, sub), block.loc)
    return values


def build(
    cls: type[Resource],
    values: Values,
    loc: SourceLocation,
    what: str,
    finish: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Validate field values into a frozen model; errors point at the directive's line."""
    data = {name: value for name, (value, _loc) in values.items()}
    data["source"] = loc
    if finish is not None:
        finish(data)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = str(err["loc"][0]) if err["loc"] else ""
        where = values[field_name][1] if field_name in values else loc
        directive = _directive_name(field_name) if field_name else None
        if err["type"] == "missing":
            raise ConfigError.at(
                loc, f"required directive {directive!r} missing in {what}"
            ) from exc
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError.at(where, message, directive) from exc


def _directive_name(field_name: str) -> str:
    return " ".join(part.capitalize() for part in field_name.split("_"))


def value_location(values: Values, field_name: str, default: SourceLocation) -> SourceLocation:
    return values[field_name][1] if field_name in values else default


def normalized(*names: str) -> frozenset[str]:
    return frozenset(normalize(n) for n in names)
