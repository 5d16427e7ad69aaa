"""`srconsole`: the bconsole-style console — interactive with history and completion, or scripted."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NoReturn, TextIO

from common.cli import UsageParser
from common.config import ConfigError
from common.net import NetError
from common.tls import TlsError
from console.client import ConsoleClient, choose_credentials, join_rows
from console.config import load_console_config
from protocol.errors import ProtocolError
from protocol.messages import ConsoleReply

EXIT_CONFIG: Final = 42
DEFAULT_CONFIG: Final = Path("/etc/strongroom/srconsole.conf")
QUIT_WORDS: Final = frozenset({"quit", "exit", ".quit", "q"})
COMPLETION_WORDS: Final = (
    "status",
    "dir",
    "client=",
    "storage=",
    "show",
    "all",
    "clients",
    "storages",
    "pools",
    "jobs",
    "jobdefs",
    "filesets",
    "schedules",
    "messages",
    "catalogs",
    "consoles",
    "profiles",
    "directors",
    "reload",
    "help",
    "version",
    "quit",
    ".api",
    "json",
    ".events",
    "count=",
    "timeout=",
)


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="srconsole", description="Strongroom console: drive the Director.")
    parser.add_argument(
        "-c", dest="config", type=Path, default=DEFAULT_CONFIG, help="console configuration file"
    )
    parser.add_argument("-D", dest="director", help="Director resource to connect to")
    parser.add_argument("-C", dest="console", help="Console resource to log in as")
    parser.add_argument("--json", action="store_true", help="print one JSON object per command")
    parser.add_argument(
        "-t", dest="test", action="store_true", help="test the configuration and exit"
    )
    return parser


def render(reply: ConsoleReply, as_json: bool) -> str:
    """Text for people, or one JSON-RPC 2.0 style object (as Bareos `.api json`)."""
    if not as_json:
        return reply.text
    if reply.ok:
        doc: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": None,
            "result": reply.data if reply.data is not None else {},
        }
    else:
        doc = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": reply.code, "message": reply.text, "data": reply.data},
        }
    return json.dumps(doc, default=str)


class Printer:
    """Tracks the output mode (`.api json` switches it) and prints replies."""

    def __init__(self, as_json: bool, out: TextIO) -> None:
        self.as_json = as_json
        self.out = out
        self.failures = 0
        self._rows: dict[str, list[Any]] = {}  # JSON mode: rows of a listing's parts, until its end

    def show(self, line: str, reply: ConsoleReply) -> None:
        words = line.split()
        if words and words[0] == ".api":
            mode = words[1].lower() if len(words) > 1 else "json"
            self.as_json = mode in ("json", "2", "on")
        if not reply.ok:
            self.failures += 1
        if self._rows:
            reply, self._rows = join_rows(reply, self._rows), {}
        text = render(reply, self.as_json)
        if text:
            self.out.write(text + ("\n" if not text.endswith("\n") else ""))
        if reply.prompt and not self.as_json:
            self.out.write(reply.prompt + "\n")
        self.out.flush()

    def part(self, reply: ConsoleReply) -> None:
        """One part of a streamed answer, printed and flushed as it arrives. In JSON mode the
        rows of a long listing are kept until its final reply, which prints them as one answer
        (`.events` parts are whole answers of their own and print at once)."""
        if reply.rows is not None and self.as_json:
            if isinstance(reply.data, list):
                self._rows.setdefault(reply.rows, []).extend(reply.data)
            return
        if reply.rows is not None:  # the text of a listing's rows, without a JSON wrapper
            if reply.text:
                self.out.write(reply.text + ("\n" if not reply.text.endswith("\n") else ""))
                self.out.flush()
            return
        text = render(reply, self.as_json)
        if text:
            self.out.write(text + ("\n" if not text.endswith("\n") else ""))
            self.out.flush()


async def run_lines(client: ConsoleClient, lines: Sequence[str], printer: Printer) -> None:
    """Scripted mode: each line is a command, or the answer to the previous reply's prompt."""
    answering = False
    for raw in lines:
        line = raw.strip()
        if not answering and (not line or line.startswith("#")):
            continue
        if not answering and line.split()[0].lower() in QUIT_WORDS:
            break
        reply = await client.execute(line, on_more=printer.part)
        printer.show(line, reply)
        answering = reply.prompt is not None


async def interactive(client: ConsoleClient, printer: Printer, history: Path) -> None:
    # Imported here: prompt_toolkit costs ~100 ms and scripted use never needs it.
    from prompt_toolkit import PromptSession  # noqa: PLC0415
    from prompt_toolkit.completion import WordCompleter  # noqa: PLC0415
    from prompt_toolkit.history import FileHistory  # noqa: PLC0415

    history.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        completer=WordCompleter(list(COMPLETION_WORDS), ignore_case=True, WORD=True),
    )
    printer.out.write(
        f"Connected to Director {client.credentials.director.name} as {client.credentials.console}\n"
    )
    prompt = "* "
    while True:
        try:
            line = (await session.prompt_async(prompt)).strip()
        except (EOFError, KeyboardInterrupt):
            break
        if prompt == "* " and not line:
            continue
        if prompt == "* " and line.split()[0].lower() in QUIT_WORDS:
            break
        reply = await client.execute(line, on_more=printer.part)
        printer.show(line, reply.model_copy(update={"prompt": None}))
        prompt = reply.prompt or "* "


async def amain(args: argparse.Namespace, config: Any) -> int:
    try:
        credentials = choose_credentials(config, args.director, args.console)
    except LookupError as exc:
        sys.stderr.write(f"srconsole: {exc}\n")
        return EXIT_CONFIG
    director = credentials.director
    try:
        client = await ConsoleClient.connect(credentials)
    except (NetError, TlsError, ProtocolError) as exc:
        step = getattr(exc, "step", "auth")
        sys.stderr.write(
            f"srconsole: cannot connect to Director {director.name} at {director.address}:{director.port}"
            f" as console {credentials.console}: {step}: {exc}\n"
        )
        return 1
    printer = Printer(args.json, sys.stdout)
    try:
        if sys.stdin.isatty() and not args.json:
            history = next(
                (
                    c.history_file
                    for c in config.consoles.values()
                    if c.name == credentials.console and c.history_file
                ),
                Path.home() / ".srconsole_history",
            )
            await interactive(client, printer, history)
        else:
            await run_lines(client, sys.stdin.read().splitlines(), printer)
    except (NetError, ProtocolError) as exc:
        sys.stderr.write(f"srconsole: connection to Director {director.name} lost: {exc}\n")
        return 1
    finally:
        await client.close()
    return 1 if printer.failures else 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_console_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"srconsole: configuration error: {exc}\n")
        raise SystemExit(EXIT_CONFIG) from exc
    except OSError as exc:
        sys.stderr.write(
            f"srconsole: cannot read configuration {args.config}: {exc.strerror or exc}\n"
        )
        raise SystemExit(EXIT_CONFIG) from exc
    for warning in loaded.warnings:
        sys.stderr.write(f"srconsole: warning: {warning}\n")
    if args.test:
        sys.stdout.write(f"srconsole: configuration {args.config} OK\n")
        raise SystemExit(0)
    raise SystemExit(asyncio.run(amain(args, loaded.config)))
