"""Show resources: Bareos syntax text and JSON-able dicts, secrets always redacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "[redacted]"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return dump_resource(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def dump_resource(resource: BaseModel) -> dict[str, object]:
    """Field name → JSON-able value (Paths as str, secrets redacted), without the source location."""
    return {
        name: _plain(getattr(resource, name))
        for name in type(resource).model_fields
        if name != "source"
    }


def _directive(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("_"))


def _scalar(value: Any) -> str:
    if isinstance(value, SecretStr):
        return f'"{REDACTED}"'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = str(value)
    if text and all(ch.isalnum() or ch in "-_.:/" for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_resource(resource: BaseModel, type_name: str, indent: str = "") -> str:
    """Configuration syntax for one resource, defaults omitted, passwords redacted."""
    lines = [f"{indent}{type_name} {{"]
    inner = indent + "  "
    fields = type(resource).model_fields
    for name, info in fields.items():
        if name == "source":
            continue
        value = getattr(resource, name)
        if not info.is_required() and value == info.get_default(call_default_factory=True):
            continue
        if name == "destinations":
            for dest in value:
                target = f"{_scalar(dest.target)} = " if dest.target else ""
                lines.append(f"{inner}{dest.kind} = {target}{', '.join(dest.types)}")
            continue
        if isinstance(value, tuple):
            if value and isinstance(value[0], BaseModel):
                block = _directive(name).replace(" ", "")
                lines.extend(render_resource(v, block, inner) for v in value)
            else:
                lines.extend(f"{inner}{_directive(name)} = {_scalar(v)}" for v in value)
            continue
        if value is None:
            continue
        lines.append(f"{inner}{_directive(name)} = {_scalar(value)}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)
