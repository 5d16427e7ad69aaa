"""The interactive restore tree on a real catalog: it opens where the FileSet's top is, lists one
directory at a time, and its marks choose what the old whole-list tree chose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from director.catalog import Catalog, FileRow, NewJob
from director.catalog.service import CatalogService
from director.console.restore_tree import Tree, _start
from director.jobs.attributes import split_path
from director.restore.selection import selected_rows
from protocol.attributes import FileAttributes, FileType, encode_attributes


def _row(job: int, path: bytes, index: int, kind: FileType = FileType.REGULAR) -> FileRow:
    attrs = FileAttributes(path, kind, 0o100640, 7, 8, 10 * index, 0, 0, 0)
    head, name = split_path(path, kind == FileType.DIRECTORY and index != 0)
    return FileRow(job, head, name, index, encode_attributes(attrs))


D = FileType.DIRECTORY


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    cat = Catalog(tmp_path / "c.db")
    cat.migrate()
    client, fs = cat.ensure_client("fd"), cat.ensure_fileset("fs", "x")
    full = cat.create_job(NewJob("j.1", "j", "B", "F", client, fs, None, 1))
    incr = cat.create_job(NewJob("j.2", "j", "B", "I", client, fs, None, 2))
    cat.insert_files(
        full,
        [
            _row(full, b"/srv/data", 1, D),
            _row(full, b"/srv/data/a", 2),
            _row(full, b"/srv/data/b", 3),
            _row(full, b"/srv/data/sub", 4, D),
            _row(full, b"/srv/data/sub/x", 5),
            _row(full, b"/srv/data/gone", 6, D),
            _row(full, b"/srv/data/gone/old", 7),
        ],
    )
    cat.insert_files(
        incr,
        [
            _row(incr, b"/srv/data", 1, D),
            _row(incr, b"/srv/data/b", 2),  # changed
            _row(incr, b"/srv/data/new", 3),  # added
            _row(incr, b"/srv/data/gone", 0),  # a directory deleted
        ],
    )
    db = CatalogService(lambda: cat)
    opened = Tree(db, [full, incr])
    opened.cwd = _start(cat, [full, incr])
    yield opened
    db.close()


async def test_browse_mark_estimate_and_choose(tree: Tree) -> None:
    assert tree.cwd == b"/srv/data"
    listing, _ = await tree.command("ls")
    assert listing.split("\n") == [" a", " b", " new", " sub/"]
    long, _ = await tree.command("dir b")
    assert long == "-0640      7      8             20  b"  # the Incremental's b
    assert (await tree.command("ls gone"))[0] == "(empty)"  # deleted by the Incremental
    assert (await tree.command("cd sub"))[0] == "cwd is: /srv/data/sub"
    assert (await tree.command("cd /srv"))[0] == "cwd is: /srv"
    assert (await tree.command("ls"))[0] == " data/"
    assert (await tree.command("cd /nothing"))[0] == "Invalid path given: /nothing"
    assert (await tree.command("cd data"))[0] == "cwd is: /srv/data"
    assert (await tree.command("mark *"))[0] == "5 files marked."  # a, b, new, sub, sub/x
    assert (await tree.command("unmark sub"))[0] == "2 files unmarked."
    assert (await tree.command("mark /srv/data/sub/x"))[0] == "1 file marked."
    assert (await tree.command("mark b"))[0] == "0 files marked."
    assert (await tree.command("ls"))[0].split("\n") == ["*a", "*b", "*new", " sub/"]
    chosen = await tree.db.run(
        lambda c: [
            r for b in selected_rows(c.chain_reader(tree.job_ids), tree.selection) for r in b
        ]
    )
    assert {r.full_path: r.job_id for r in chosen} == {
        b"/srv/data/a": 1,
        b"/srv/data/b": 2,
        b"/srv/data/new": 2,
        b"/srv/data/sub/x": 1,
    }
    text, _ = await tree.command("estimate")
    assert text == "4 total files; 4 marked to be restored; 120 bytes."  # 20 + 20 + 30 + 50
    assert (await tree.command("find *e*"))[0] == "/srv/data/new"
    assert (await tree.command("find x"))[0] == "/srv/data/sub/x"
    assert await tree.command("done") == ("", True)
