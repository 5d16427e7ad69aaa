"""Messages resource routing (#15): type filters, destinations, %-codes shell-quoted, mail at job end."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from common.config.resources import MessageDestination
from director.joblog import LogLine
from director.messages.filters import ALL, FilterError, MessageType, parse_types, substitute
from director.messages.router import MessageRouter


def test_filters_apply_left_to_right() -> None:
    assert parse_types(["all", "!skipped", "!saved"]) == ALL - {
        MessageType.SKIPPED,
        MessageType.SAVED,
    }
    assert parse_types(["error", "warning"]) == {MessageType.ERROR, MessageType.WARNING}
    assert parse_types(["all", "!error", "error"]) == ALL
    assert MessageType.DEBUG not in parse_types(["all"])
    with pytest.raises(FilterError):
        parse_types(["bogus"])


def test_substitutions_are_shell_quoted() -> None:
    command = substitute("mail -s %n %r 100%%", {"n": "evil; rm -rf /", "r": "a@b"})
    assert shlex.split(command) == ["mail", "-s", "evil; rm -rf /", "a@b", "100%"]
    assert substitute("%q stays", {}) == "%q stays"


@dataclass(eq=False)
class FakeJob:
    job_id: int
    status: str = "R"
    unique: str = "job.1"
    name: str = "job"
    client: str | None = "c-fd"
    bytes: int = 0
    files: int = 0
    volumes: list[str] = field(default_factory=list)
    resource: Any = None
    config: Any = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    type_name: str = "Backup"
    level_name: str = "Full"


def _router(
    tmp_path: Path, messages: Any
) -> tuple[MessageRouter, list[LogLine], list[tuple[int, float, str]], list[tuple[int, str]], Any]:
    config = SimpleNamespace(messages={"M": messages}, director=SimpleNamespace(messages="M"))
    console: list[LogLine] = []
    catalog: list[tuple[int, float, str]] = []
    syslogged: list[tuple[int, str]] = []
    router = MessageRouter(
        director_name=lambda: "dir",
        config=lambda: config,
        console=console.append,
        catalog=lambda *row: catalog.append(row),
        log=structlog.get_logger(),
        write_syslog=lambda p, t: syslogged.append((p, t)),
        clock=lambda: 1000.0,
    )
    return router, console, catalog, syslogged, config


def _messages(tmp_path: Path, *lines: tuple[str, str | None, tuple[str, ...]]) -> Any:
    deliver = tmp_path / "deliver.sh"
    deliver.write_text(
        f'#!/bin/sh\nkind=$1\nshift\n{{ echo "== $*"; cat; }} >> "{tmp_path}/$kind.out"\n'
    )
    deliver.chmod(0o755)
    return SimpleNamespace(
        name="M",
        mail_command=f"{deliver} mail %r %i %e",
        operator_command=f"{deliver} operator %r %i",
        destinations=tuple(MessageDestination(kind=k, target=t, types=ty) for k, t, ty in lines),
    )


async def test_each_destination_gets_what_its_filter_allows(tmp_path: Path) -> None:
    messages = _messages(
        tmp_path,
        ("console", None, ("all", "!info")),
        ("catalog", None, ("all",)),
        ("append", str(tmp_path / "append.log"), ("all",)),
        ("file", str(tmp_path / "errors.log"), ("error",)),
        ("syslog", None, ("warning",)),
        ("operator", "op@x", ("error",)),
        ("mail", "all@x", ("all",)),
        ("mail on error", "err@x", ("all",)),
        ("mail on success", "ok@x", ("all",)),
    )
    router, console, catalog, syslogged, config = _router(tmp_path, messages)
    good = FakeJob(1, config=config, resource=SimpleNamespace(messages="M"))
    bad = FakeJob(2, config=config, resource=SimpleNamespace(messages="M"), unique="job.2")
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(router.serve(stop))
        router.job_message(good, "info", "good news")
        router.job_message(bad, "warning", "careful")
        router.job_message(bad, "error", "it broke")
        router.job_message(bad, "error", "broke again")
        good.status, bad.status = "T", "E"
        good.done.set()
        bad.done.set()
        stop.set()  # a stopping router still sends the mails of ended jobs and waits for its commands
    assert [m.text for m in console] == ["careful", "it broke", "broke again"]
    assert [row[0] for row in catalog] == [1, 2, 2, 2]
    assert len((tmp_path / "append.log").read_text().splitlines()) == 4
    assert (tmp_path / "errors.log").read_text().count("broke") == 2
    assert len(syslogged) == 1 and syslogged[0][1].endswith("dir JobId 2: Warning: careful")
    mail = (tmp_path / "mail.out").read_text()
    assert "== all@x 1 OK" in mail and "== all@x 2 Error" in mail
    assert "== ok@x 1 OK" in mail and "== err@x 2 Error" in mail
    assert "== ok@x 2" not in mail and "== err@x 1" not in mail
    operator = (tmp_path / "operator.out").read_text()
    assert operator.count("== op@x 2") == 2 and "good news" not in operator


async def test_file_starts_afresh_per_job_and_director_messages_follow_the_director(
    tmp_path: Path,
) -> None:
    messages = _messages(
        tmp_path, ("file", str(tmp_path / "last.log"), ("all",)), ("console", None, ("all",))
    )
    router, console, catalog, _, config = _router(tmp_path, messages)
    router.job_message(
        FakeJob(1, config=config, resource=SimpleNamespace(messages="M")), "info", "one"
    )
    router.job_message(
        FakeJob(2, config=config, resource=SimpleNamespace(messages="M")), "info", "two"
    )
    router.job_message(
        FakeJob(2, config=config, resource=SimpleNamespace(messages="M")), "info", "three"
    )
    assert [
        line.split(": ", 1)[1] for line in (tmp_path / "last.log").read_text().splitlines()
    ] == ["two", "three"]
    router.director_message("warning", "director says")
    assert console[-1].job_id is None and console[-1].text == "director says"
    assert catalog == []  # no catalog destination


async def test_without_a_messages_resource_console_and_catalog(tmp_path: Path) -> None:
    console: list[LogLine] = []
    catalog: list[tuple[int, float, str]] = []
    config = SimpleNamespace(messages={}, director=SimpleNamespace(messages=None))
    router = MessageRouter(
        director_name=lambda: "dir",
        config=lambda: config,
        console=console.append,
        catalog=lambda *row: catalog.append(row),
        log=structlog.get_logger(),
    )
    router.job_message(
        FakeJob(7, config=config, resource=SimpleNamespace(messages=None)), "info", "hello"
    )
    assert [m.text for m in console] == ["hello"] and catalog[0][0] == 7
