"""The newest live state of a chain of backups, read one directory at a time.

An accurate backup and a restore both need, for a chain of jobs (oldest first), the newest File
row of every path, leaving out a path whose newest row records a deletion and what lies under a
directory deleted later (the rules of `director.restore.selection.latest_files` and `live`).
Read as a whole, that costs memory in proportion to the job. `ChainReader` reads it directory by
directory through Path.ParentId and PathVisibility, and a directory's files in pages by name: one
statement per page merges each job's rows off the File (JobId, PathId, Name) index (a compound
SELECT, which SQLite merges without sorting). What it holds at once is one page, one directory's
subdirectories and the directories still to visit.

A directory is a File row (its path + "/", name ""), and the deletion of one is a row of its
parent (parent + "/", its name): both name one full path, as in `FileRow.full_path`, so each
directory's entries are merged by name across the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from director.catalog.models import FileRow

Read = Callable[[str, Sequence[Any]], list[Any]]
Keep = Callable[[FileRow], bool]
Rank = tuple[int, int, int]  # chain position, FileIndex, FileId: the greatest is the newest row
Candidate = tuple[Rank, FileRow]

PAGE: Final = 2000  # File rows read per statement, and rows handed out per batch
MAX_ARMS: Final = 200  # jobs merged in one compound SELECT (SQLite allows 500 arms)


def dir_key(path: bytes) -> bytes:
    """The Path of a directory as the catalog stores it: b"/a/b" -> b"/a/b/"; b"/" -> b"/"."""
    return path.rstrip(b"/") + b"/"


def file_key(path: bytes) -> tuple[bytes, bytes]:
    """(Path, Name) of a non-directory row for a full path (as director.jobs.attributes.split_path)."""
    cut = path.rfind(b"/") + 1
    head, tail = path[:cut], path[cut:]
    if not head:
        return b"/", tail
    if head.endswith(b"//") and head.strip(b"/"):
        head = head.rstrip(b"/") + b"/"
    return head, tail


def ancestors(path: bytes) -> list[bytes]:
    """The full paths above `path`, nearest first: b"/a/b/c" -> [b"/a/b", b"/a", b"/"]."""
    out: list[bytes] = []
    current = path.rstrip(b"/")
    while current:
        cut = current.rfind(b"/")
        if cut < 0:
            break
        current = current[:cut]
        out.append(current or b"/")
        if not current:
            break
    return out


class ChainReader:
    """Reads the newest live rows of `job_ids` (a chain, oldest first) through `read` (one
    statement, its rows); every method is synchronous and belongs on the catalog thread."""

    def __init__(
        self, read: Read, job_ids: Sequence[int], *, page: int = PAGE, max_arms: int = MAX_ARMS
    ) -> None:
        self._read = read
        self._max_arms = max_arms
        self.job_ids = list(job_ids)
        self._order = {job_id: n for n, job_id in enumerate(self.job_ids)}
        self._marks = ",".join("?" * len(self.job_ids))
        # A name has at most one row per job (rarely two): a page always holds a complete name.
        self._page = max(page, 2 * len(self.job_ids) + 2)

    # -- one path ---------------------------------------------------------------------------

    def path_id(self, path: bytes) -> int | None:
        rows = self._read("SELECT PathId FROM Path WHERE Path=?", (path,))
        return int(rows[0][0]) if rows else None

    def newest(self, path: bytes) -> FileRow | None:
        """The newest row of one full path among the chain (a deletion row included)."""
        if not self.job_ids:
            return None
        best: Candidate | None = None
        keys = [(dir_key(path), b"")]
        if path.rstrip(b"/"):
            keys.append(file_key(path.rstrip(b"/")))
        for head, name in keys:
            path_id = self.path_id(head)
            if path_id is None:
                continue
            for row in self._read(
                "SELECT JobId, FileIndex, LStat, MD5, FileId FROM File "
                f"WHERE JobId IN ({self._marks}) AND PathId=? AND Name=?",
                (*self.job_ids, path_id, name),
            ):
                found = self._candidate(head, name, row)
                if best is None or found[0] > best[0]:
                    best = found
        return best[1] if best else None

    def hidden_above(self, path: bytes) -> int:
        """The newest JobId that deleted a directory above `path` (0: none); rows of that job and
        older under it are gone (`selection.live`)."""
        hidden = 0
        for above in ancestors(path):
            row = self.newest(above)
            if row is not None and row.file_index == 0:
                hidden = max(hidden, row.job_id)
        return hidden

    def live(self, path: bytes) -> FileRow | None:
        """The newest row of `path` if the chain has it live (not deleted, nor under a deleted
        directory), else None."""
        row = self.newest(path)
        if row is None or row.file_index == 0 or row.job_id <= self.hidden_above(path):
            return None
        return row

    # -- one directory ----------------------------------------------------------------------

    def subdirectories(self, dir_id: int) -> list[tuple[int, bytes]]:
        """(PathId, Path) of the subdirectories the chain's jobs hold files in or under."""
        return [
            (int(r[0]), bytes(r[1]))
            for r in self._read(
                "SELECT p.PathId, p.Path FROM Path p WHERE p.ParentId=? AND EXISTS (SELECT 1 FROM "
                f"PathVisibility v WHERE v.PathId=p.PathId AND v.JobId IN ({self._marks}))",
                (dir_id, *self.job_ids),
            )
        ]

    def _directory_rows(self, dir_id: int) -> dict[int, Candidate]:
        """The newest directory row of each subdirectory of `dir_id`, by its PathId."""
        out: dict[int, Candidate] = {}
        for r in self._read(
            # CROSS JOIN keeps Path outside (SQLite's way to fix the join order): the other
            # order reads every File row of the jobs for each directory.
            "SELECT p.PathId, p.Path, f.JobId, f.FileIndex, f.LStat, f.MD5, f.FileId FROM Path p "
            f"CROSS JOIN File f ON f.PathId=p.PathId WHERE p.ParentId=? AND f.JobId IN "
            f"({self._marks}) AND f.Name=x''",
            (dir_id, *self.job_ids),
        ):
            found = self._candidate(bytes(r[1]), b"", r[2:])
            known = out.get(int(r[0]))
            if known is None or found[0] > known[0]:
                out[int(r[0])] = found
        return out

    def _file_pages(self, dir_id: int, dir_path: bytes) -> Iterator[list[tuple[bytes, Candidate]]]:
        """The newest row of each name in one directory (files and deletion rows), in name
        order, a page at a time."""
        after = b""
        while True:
            rows = self._read(*self._page_query(dir_id, after))
            complete = rows
            if len(rows) == self._page:
                last = rows[-1][0]
                complete = [r for r in rows if r[0] != last] or rows
            page: list[tuple[bytes, Candidate]] = []
            for r in complete:
                name = bytes(r[0])
                found = self._candidate(dir_path, name, r[1:])
                if page and page[-1][0] == name:
                    if found[0] > page[-1][1][0]:
                        page[-1] = (name, found)
                else:
                    page.append((name, found))
            if page:
                yield page
            if len(rows) < self._page or not complete:
                return
            after = bytes(complete[-1][0])

    def _page_query(self, dir_id: int, after: bytes) -> tuple[str, list[Any]]:
        columns = "SELECT Name, JobId, FileIndex, LStat, MD5, FileId FROM File"
        if len(self.job_ids) > self._max_arms:  # correct, but sorts what is left of the directory
            return (
                f"{columns} WHERE JobId IN ({self._marks}) AND PathId=? AND Name>? "
                "ORDER BY Name LIMIT ?",
                [*self.job_ids, dir_id, after, self._page],
            )
        arm = f"{columns} WHERE JobId=? AND PathId=? AND Name>?"
        args: list[Any] = []
        for job_id in self.job_ids:
            args += [job_id, dir_id, after]
        return " UNION ALL ".join([arm] * len(self.job_ids)) + " ORDER BY 1 LIMIT ?", [
            *args,
            self._page,
        ]

    def _candidate(self, path: bytes, name: bytes, r: Sequence[Any]) -> Candidate:
        job_id, index = int(r[0]), int(r[1])
        row = FileRow(job_id, path, name, index, bytes(r[2]), r[3])
        return (self._order[job_id], index, int(r[4])), row

    def directory(
        self, dir_id: int, dir_path: bytes, hidden: int
    ) -> Iterator[FileRow | tuple[int, bytes, int]]:
        """One directory's live entries: FileRows of its files and subdirectories, then each
        subdirectory to visit as (PathId, Path, hidden) (`hidden`: as `hidden_above`)."""
        subdirs = {
            path[len(dir_path) : -1]: (path_id, path)
            for path_id, path in self.subdirectories(dir_id)
        }
        dir_rows = self._directory_rows(dir_id)
        pending: dict[bytes, Candidate | None] = {
            name: dir_rows.get(path_id) for name, (path_id, _path) in subdirs.items()
        }
        deleted: dict[bytes, int] = {}  # subdirectory name -> the JobId whose row deleted it
        for page in self._file_pages(dir_id, dir_path):
            for name, as_file in page:
                newest = as_file
                if name in pending:
                    as_dir = pending.pop(name)
                    if as_dir is not None and as_dir[0] > as_file[0]:
                        newest = as_dir
                    if newest[1].file_index == 0:
                        deleted[name] = newest[1].job_id
                if newest[1].file_index != 0 and newest[1].job_id > hidden:
                    yield newest[1]
        for found_dir in pending.values():
            if found_dir is not None and found_dir[1].job_id > hidden:
                yield found_dir[1]
        for name, (path_id, path) in subdirs.items():
            yield path_id, path, max(hidden, deleted.get(name, 0))

    def listing(self, path: bytes) -> tuple[list[FileRow], list[bytes]] | None:
        """One directory's live entries (files and subdirectories with a row) and the Paths of
        its subdirectories that are not deleted there (directories without a row of their own
        among them), or None when no job of the chain has files in or under it."""
        full = path.rstrip(b"/") or b"/"
        dir_id = self.path_id(dir_key(full))
        if dir_id is None or not self._read(
            f"SELECT 1 FROM PathVisibility WHERE PathId=? AND JobId IN ({self._marks}) LIMIT 1",
            (dir_id, *self.job_ids),
        ):
            return None
        hidden = self.hidden_above(full)
        own = self.newest(full)
        if own is not None and own.file_index == 0:
            hidden = max(hidden, own.job_id)
        rows: list[FileRow] = []
        subdirs: list[bytes] = []
        for item in self.directory(dir_id, dir_key(full), hidden):
            if isinstance(item, FileRow):
                rows.append(item)
            elif item[2] == hidden:  # a subdirectory whose newest row is no deletion
                subdirs.append(item[1])
        return rows, subdirs

    # -- a subtree --------------------------------------------------------------------------

    def walk(
        self, top: bytes = b"/", keep: Keep | None = None, *, batch: int = PAGE
    ) -> Iterator[list[FileRow]]:
        """The live rows of `top` (a full path, b"/" for everything) and below it, in batches of
        up to `batch`, each kept only when `keep` (if given) says so."""
        if not self.job_ids:
            return
        full = top.rstrip(b"/") or b"/"
        out: list[FileRow] = []
        hidden = self.hidden_above(full)
        own = self.newest(full)
        if own is not None:
            if own.file_index == 0:
                hidden = max(hidden, own.job_id)
            elif own.job_id > hidden and (keep is None or keep(own)):
                out.append(own)
        top_id = self.path_id(dir_key(full))
        stack: list[tuple[int, bytes, int]] = (
            [] if top_id is None else [(top_id, dir_key(full), hidden)]
        )
        while stack:
            dir_id, dir_path, dir_hidden = stack.pop()
            for item in self.directory(dir_id, dir_path, dir_hidden):
                if isinstance(item, FileRow):
                    if keep is None or keep(item):
                        out.append(item)
                        if len(out) >= batch:
                            yield out
                            out = []
                else:
                    stack.append(item)
        if out:
            yield out
