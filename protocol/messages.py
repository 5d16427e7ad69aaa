"""Typed control messages: frozen pydantic records tagged by `t` on the wire, with Bareos-style codes."""

from __future__ import annotations

import enum
import functools
import types
import typing
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from protocol import codec
from protocol.errors import DecodeError

PROTOCOL_VERSION: Final = 1
NONCE_SIZE: Final = 32

Role = Literal["director", "storage", "client", "console", "job"]


class Code(enum.IntEnum):
    """Numeric reply codes: 1xxx from the Director, 2xxx from the File Daemon, 3xxx from the SD."""

    DIR_OK = 1000
    COMMAND_FAILED = 1900
    UNKNOWN_COMMAND = 1901
    TLS_REQUIRED = 1997
    VERSION_MISMATCH = 1998
    AUTH_FAILED = 1999
    FD_OK = 2000
    FD_JOB_END = 2800
    FD_NO_SUCH_JOB = 2901
    FD_JOB_REFUSED = 2902
    FD_MONITOR_ONLY = 2997
    FD_ERROR = 2999  # also: an unknown command
    SD_OK = 3000
    SD_JOB_START = 3010
    SD_JOB_END = 3099
    SD_WAITING = 3602  # no device can take the job yet (SdJobWaiting)
    SD_UNKNOWN_COMMAND = 3900
    SD_NO_SUCH_JOB = 3904  # also: a job canceled while it waited for a device
    SD_NO_SUCH_DEVICE = 3912
    SD_MEDIA_TYPE_MISMATCH = 3913
    SD_LABEL_FAILED = 3914
    SD_JOB_REFUSED = 3915  # what waiting cannot fix: unknown device, wrong media type
    SD_MONITOR_ONLY = 3997
    SD_ERROR = 3999


class Message(BaseModel):
    """Base of every control message; `TYPE` is the wire tag."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    TYPE: ClassVar[str]
    # Fields added after a message was frozen: left off the wire while they hold their default, so
    # the message's bytes (and older peers, which refuse unknown keys) are unchanged.
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset()


class Hello(Message):
    """First message of every connection: who is calling, and which protocol it speaks."""

    TYPE: ClassVar[str] = "hello"
    role: Role
    name: str
    version: str
    protocol: int = PROTOCOL_VERSION


class Challenge(Message):
    """A fresh random nonce the peer must answer with an HMAC over the shared secret."""

    TYPE: ClassVar[str] = "challenge"
    nonce: bytes


class ChallengeResponse(Message):
    """HMAC-SHA256 proof for the last challenge."""

    TYPE: ClassVar[str] = "response"
    digest: bytes


class AuthResult(Message):
    """`1000 OK` or `1999 Authorization failed`."""

    TYPE: ClassVar[str] = "auth"
    code: int
    text: str


class ErrorReply(Message):
    """A refusal or failure with a code and a sentence an operator can act on."""

    TYPE: ClassVar[str] = "error"
    code: int
    text: str


class StatusRequest(Message):
    """Ask a daemon for its status."""

    TYPE: ClassVar[str] = "status"


class RunningJob(Message):
    """One running job, as a daemon reports it in its status."""

    TYPE: ClassVar[str] = "running_job"
    job_id: int
    job: str
    status: str
    files: int = 0
    bytes: int = 0


class DeviceStatus(Message):
    """One device of a Storage Daemon: who holds it, what it appends to, who waits for it."""

    TYPE: ClassVar[str] = "device_status"
    name: str
    media_type: str
    mode: str = ""  # append, read, or "" when free
    max_jobs: int = 1
    reserved_by: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()  # "job (waiting_for_device device=NAME): why"


class ConnectionCounts(Message):
    """How many connections a daemon holds and has seen."""

    TYPE: ClassVar[str] = "connections"
    active: int
    total: int
    refused: int


class DaemonStatus(Message):
    """What `status` answers for any daemon."""

    TYPE: ClassVar[str] = "daemon_status"
    code: int
    role: Role
    name: str
    version: str
    pid: int
    started_at: float
    uptime: float
    addresses: tuple[str, ...]
    tls: bool
    running_jobs: tuple[RunningJob, ...]
    connections: ConnectionCounts
    devices: tuple[DeviceStatus, ...] = ()  # Storage Daemons only

    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset(
        {"devices"}
    )  # absent when empty: older peers unchanged


class ConsoleCommand(Message):
    """One console command line, exactly as typed."""

    TYPE: ClassVar[str] = "command"
    line: str


class ConsoleReply(Message):
    """The Director's answer to a console command: text for people, data for machines.

    `more=True` marks one item of a streamed answer (`.events`): the console prints it and keeps
    reading; the answer ends with the first reply whose `more` is false.

    `rows` names a part of a long answer sent in pieces (`list files`): its `data` is a list of
    rows that extends the final reply's `data[rows]`, so a JSON console joins them into one answer
    while a text console prints each part's `text` as it arrives.
    """

    TYPE: ClassVar[str] = "reply"
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset({"more", "rows"})
    code: int
    ok: bool
    text: str
    data: Any = None
    prompt: str | None = None
    more: bool = False
    rows: str | None = None


MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Challenge,
        ChallengeResponse,
        AuthResult,
        ErrorReply,
        StatusRequest,
        RunningJob,
        DeviceStatus,
        ConnectionCounts,
        DaemonStatus,
        ConsoleCommand,
        ConsoleReply,
    )
}


def register(cls: type[Message]) -> type[Message]:
    """Add a message type to the wire registry (tags are unique)."""
    existing = MESSAGE_TYPES.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise ValueError(f"message tag {cls.TYPE!r} already used by {existing.__name__}")
    MESSAGE_TYPES[cls.TYPE] = cls
    return cls


def _to_wire(msg: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"t": msg.TYPE}
    for name, info in type(msg).model_fields.items():
        value = getattr(msg, name)
        if name in msg.OPTIONAL_ON_WIRE and value == info.default:
            continue
        body[name] = _to_wire(value) if isinstance(value, Message) else _wire_value(value)
    return body


def _wire_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_wire(v) if isinstance(v, Message) else _wire_value(v) for v in value]
    if isinstance(
        value, BaseModel
    ):  # a typed value that is not a message (a FileSet): its fields, as a map
        return value.model_dump()
    return value


def _from_wire(cls: type[Message], body: dict[str, Any]) -> Message:
    """Build `cls` from its wire map; a nested message is decoded by the field's declared type,
    never by the shape of the value (a plain map that happens to hold a "t" key stays a map)."""
    nested = _nested_fields(cls)
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key == "t":
            continue
        info = nested.get(key)
        fields[key] = value if info is None else _decode_field(info, value)
    return cls.model_validate(fields)


@functools.cache
def _nested_fields(cls: type[Message]) -> dict[str, Any]:
    """The fields of `cls` whose declared type holds a message (they need `_decode_field`); the
    others go to pydantic as they came off the wire (thousands of records need no Python loop)."""
    return {
        name: info.annotation
        for name, info in cls.model_fields.items()
        if _holds_message(info.annotation)
    }


def _holds_message(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, Message):
        return True
    return any(_holds_message(arg) for arg in typing.get_args(annotation))


@functools.cache
def closed_schema(cls: type[BaseModel]) -> bool:
    """Whether every field of `cls` has a definite type all the way down (no Any, no object):
    pydantic's strict validation then bounds what a body may hold, and the decoder need not walk
    the body for depth first. A message with an open field (a console reply's data) is walked."""
    return all(_closed(info.annotation) for info in cls.model_fields.values())


def _closed(annotation: Any) -> bool:
    if annotation is Any or annotation is object:
        return False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return closed_schema(annotation)
    if typing.get_origin(annotation) is Literal:
        return True
    return all(_closed(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)


def _decode_field(annotation: Any, value: Any) -> Any:
    nested = _message_class(annotation)
    if nested is not None and isinstance(value, dict):
        return _from_wire(nested, value)
    item = _tuple_item(annotation)
    if item is not None and isinstance(value, list | tuple):
        return tuple(_decode_field(item, v) for v in value)
    return value


def _message_class(annotation: Any) -> type[Message] | None:
    """The Message class a field holds (`X` or `X | None`), or None."""
    if isinstance(annotation, type) and issubclass(annotation, Message):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [
            a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, Message)
        ]
        return found[0] if len(found) == 1 else None
    return None


def _tuple_item(annotation: Any) -> Any:
    """The item type of a `tuple[X, ...]` field, or None."""
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def encode_message(msg: Message) -> bytes:
    """The msgpack body of one message (frame it with `frames.encode_frame`)."""
    return codec.pack(_to_wire(msg))


def decode_message(body: bytes | bytearray | memoryview) -> Message:
    """Parse and validate one frame body; anything malformed raises DecodeError."""
    obj = codec.unpack(body)  # msgpack itself refuses nesting deeper than 1024 (StackError)
    if not isinstance(obj, dict):
        raise DecodeError(f"message body is a {type(obj).__name__}, expected a map")
    tag = obj.get("t")
    if not isinstance(tag, str):
        raise DecodeError("message has no string type tag 't'")
    cls = MESSAGE_TYPES.get(tag)
    if cls is None:
        raise DecodeError(f"unknown message type {tag!r}")
    if not closed_schema(cls):
        codec.check_plain(obj, codec.MAX_DEPTH)
    try:
        return _from_wire(cls, obj)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        # A body that is not plain (too deep, a timestamp) says so rather than naming a field.
        codec.check_plain(obj, codec.MAX_DEPTH)
        if not isinstance(exc, ValidationError):
            raise DecodeError(f"invalid {tag!r} message: {exc}") from exc
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DecodeError(f"invalid {tag!r} message: {where}: {first['msg']}") from exc
