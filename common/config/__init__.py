"""The Bareos resource-syntax configuration parser, shared resource parts, and rendering."""

from common.config.errors import ConfigError, ConfigWarning, SourceLocation
from common.config.loader import Loaded
from common.config.render import dump_resource, render_resource
from common.config.types import parse_bool, parse_duration, parse_size

__all__ = [
    "ConfigError",
    "ConfigWarning",
    "Loaded",
    "SourceLocation",
    "dump_resource",
    "parse_bool",
    "parse_duration",
    "parse_size",
    "render_resource",
]
