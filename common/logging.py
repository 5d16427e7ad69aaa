"""structlog set-up: JSON lines when not on a terminal, readable on one, secrets always redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

# What every daemon's code is given as its logger (structlog's filtering bound logger).
Log = FilteringBoundLogger

REDACTED: Final = "[redacted]"
_SECRET_WORDS: Final = ("password", "secret", "passwd", "key", "token", "digest", "nonce")
_NOT_SECRET: Final = frozenset({"key_file", "tls_key_path", "job_key_id"})


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _NOT_SECRET and any(word in lowered for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """Replace every value stored under a secret-looking key, recursively."""
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no password or key ever reaches a log line."""
    for name in list(event_dict):
        if name != "event" and _is_secret(name):
            event_dict[name] = REDACTED
        else:
            event_dict[name] = redact(event_dict[name])
    return event_dict


def debug_level_to_logging(level: int) -> int:
    """Map Bareos-style `-d N` debug levels onto logging levels."""
    if level >= 100:
        return logging.DEBUG
    if level >= 1:
        return logging.DEBUG
    return logging.INFO


def configure_logging(
    daemon: str,
    name: str,
    debug_level: int = 0,
    stream: TextIO | None = None,
    json: bool | None = None,
) -> Log:
    """Configure structlog once per process and return a logger bound to this daemon."""
    out = stream if stream is not None else sys.stderr
    use_json = json if json is not None else not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(debug_level_to_logging(debug_level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    logger: Log = structlog.get_logger().bind(daemon=daemon, name=name)
    return logger
