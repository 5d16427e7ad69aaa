"""Console commands register here with a decorator; the docstring is the help text."""

from __future__ import annotations

import shlex
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from director.daemon import DirectorDaemon


class CommandError(Exception):
    """A command that cannot run as asked; the text goes back to the operator."""


@dataclass(frozen=True)
class Args:
    """A parsed command line: the command, bare words and key=value pairs (keys lower-case)."""

    command: str
    words: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.options.get(key)

    def all(self, key: str) -> list[str]:
        """Every value of a key given several times (`file=a file=b`)."""
        return self.repeated.get(key, [])

    def has(self, word: str) -> bool:
        return word.lower() in (w.lower() for w in self.words)


def parse_command(line: str) -> Args:
    """Split `run job="My Job" level=Full yes` into command, words and options."""
    try:
        tokens = shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise CommandError(f"cannot parse command line: {exc}") from exc
    if not tokens:
        return Args(command="")
    words: list[str] = []
    options: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if sep:
            options[key.lower()] = value
            repeated.setdefault(key.lower(), []).append(value)
        else:
            words.append(token)
    return Args(command=tokens[0].lower(), words=tuple(words), options=options, repeated=repeated)


@dataclass
class Reply:
    """What a command returns: text for people, JSON-able data for machines.

    A reply with a `prompt` asks a question; the console's next line is the answer and goes to
    the session's `pending` continuation instead of being parsed as a command.

    A reply with a `stream` answers in several parts (`.events`): the server sends each reply the
    stream yields as it comes (`more=True` on the wire), then this reply, which ends the answer.
    The stream may update this reply's `text`/`data`/`ok` before it ends (a summary); it is closed
    (`aclose`) when the console hangs up or sends anything, so a `finally` in it always runs.
    """

    text: str
    data: object = None
    ok: bool = True
    prompt: str | None = None
    stream: AsyncGenerator[Reply, None] | None = None
    rows: str | None = None  # on a streamed part: its data is rows of the final reply's data[rows]


@dataclass
class Session:
    """One console connection's state."""

    console: str
    acl: Callable[[str, str], bool]
    director: DirectorDaemon
    quit: bool = False
    api: bool = False
    pending: Callable[[str], Awaitable[Reply]] | None = None


Handler = Callable[[Session, Args], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    aliases: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, aliases: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register a console command; its docstring's first line is the help text."""

    def register(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip().splitlines()
        cmd = Command(name, usage, doc[0] if doc else "", handler, aliases)
        for key in (name, *aliases):
            COMMANDS[key] = cmd
        return handler

    return register


def lookup(name: str) -> Command | None:
    """Exact name, alias, or an unambiguous prefix (as bconsole allows `stat` for `status`)."""
    if name in COMMANDS:
        return COMMANDS[name]
    matches = {
        cmd.name: cmd
        for key, cmd in COMMANDS.items()
        if key.startswith(name) and not key.startswith(".")
    }
    if len(matches) == 1:
        return next(iter(matches.values()))
    return None
