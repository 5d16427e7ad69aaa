"""The SQLite catalog (WAL). Every method is synchronous and thread-safe; the Director calls them in a
worker thread so the event loop never waits on the database. A write that fails, its COMMIT included,
is rolled back and raised as a CatalogError naming the operation; the connection stays usable."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from director.catalog.models import (
    ColumnValue,
    FileRow,
    JobMediaRow,
    JobRow,
    MediaRow,
    NewJob,
    PoolRow,
    PoolView,
)
from director.catalog.schema import MIGRATIONS, SCHEMA_VERSION
from director.catalog.walk import PAGE, ChainReader, Keep

if TYPE_CHECKING:
    from director.config import CatalogResource

# Job columns a caller may update, by their Bareos names.
JOB_COLUMNS: Final = frozenset(
    {
        "JobStatus",
        "Level",
        "SchedTime",
        "StartTime",
        "EndTime",
        "RealEndTime",
        "JobTDate",
        "VolSessionId",
        "VolSessionTime",
        "JobFiles",
        "JobBytes",
        "ReadBytes",
        "JobErrors",
        "JobMissingFiles",
        "PoolId",
        "PriorJobId",
        "Comment",
        "Type",
        "PurgedFiles",
        "WaitReason",
        "Request",
        "RetryCount",
        "ExpiresAt",
        "ParentJobId",
    }
)
MEDIA_COLUMNS: Final = frozenset(
    {
        "VolStatus",
        "VolRetention",
        "VolBytes",
        "VolBlocks",
        "VolJobs",
        "VolFiles",
        "FirstWritten",
        "LastWritten",
        "PoolId",
    }
)
_JOB_SELECT: Final = """
SELECT j.JobId, j.Job, j.Name, j.Type, j.Level, j.JobStatus, j.ClientId, j.FileSetId, j.PoolId, j.SchedTime,
       j.StartTime, j.EndTime, j.JobFiles, j.JobBytes, j.ReadBytes, j.JobErrors, j.VolSessionId,
       j.VolSessionTime, j.Priority, j.PriorJobId, j.Comment, c.Name, f.FileSet, p.Name, j.WaitReason,
       j.RetryCount, j.ParentJobId
FROM Job j LEFT JOIN Client c ON c.ClientId = j.ClientId LEFT JOIN FileSet f ON f.FileSetId = j.FileSetId
LEFT JOIN Pool p ON p.PoolId = j.PoolId
"""
_MEDIA_SELECT: Final = """
SELECT m.MediaId, m.VolumeName, m.PoolId, p.Name, m.MediaType, m.VolStatus, m.VolBytes, m.VolBlocks, m.VolJobs,
       m.VolFiles, m.FirstWritten, m.LastWritten, m.LabelDate, m.MaxVolBytes, m.MaxVolJobs, s.Name
FROM Media m JOIN Pool p ON p.PoolId = m.PoolId LEFT JOIN Storage s ON s.StorageId = m.StorageId
"""


# Job statuses after which a job does not change again (the unfinished_jobs query lists the others).
FINAL_STATUSES: Final = frozenset({"T", "W", "E", "f", "D", "A", "I"})
# SQLite primary result codes of a write the database may take later, once space, the device or the
# lock is back: busy/locked, out of memory, read-only, I/O error, disk full, cannot open.
_RETRIABLE_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)


# Path ids kept in memory (each with its parent), and jobs whose PathVisibility rows are remembered.
PATH_CACHE: Final = 200_000
VISIBLE_JOBS: Final = 16


def parent_of(path: bytes) -> bytes | None:
    """The parent of a directory path as the catalog stores it: b"/a/b/" -> b"/a/"; b"/" -> None."""
    trimmed = path.rstrip(b"/")
    if not trimmed:
        return None
    cut = trimmed.rfind(b"/")
    return trimmed[: cut + 1] if cut >= 0 else None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One entry of a browsed directory: a subdirectory (`path_id` set, name ends with "/") or a
    file; `row` is the newest File row of it among the jobs browsed (None: a directory only on
    the way to backed-up files, such as the parents of a FileSet's top directory)."""

    name: bytes
    path_id: int | None
    row: FileRow | None


def _newest(
    entries: dict[bytes, DirectoryEntry],
    order: dict[int, int],
    name: bytes,
    path_id: int | None,
    row: FileRow,
) -> None:
    known = entries.get(name)
    if known is None or known.row is None or order[row.job_id] > order[known.row.job_id]:
        entries[name] = DirectoryEntry(name, path_id, row)


class CatalogError(Exception):
    """The catalog cannot be opened or used; the message names the database."""

    retriable: bool = False


class CatalogWriteError(CatalogError):
    """SQLite refused a transaction (its COMMIT included); it was rolled back and nothing of it was
    written. `retriable` when the same write may succeed later (disk full, I/O error, locked)."""

    def __init__(self, operation: str, path: Path, reason: str, *, retriable: bool) -> None:
        super().__init__(f"cannot {operation} in the catalog {path}: {reason}")
        self.operation = operation
        self.path = path
        self.reason = reason
        self.retriable = retriable


def _is_retriable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if (
        code is None
    ):  # no result code (an error raised by the sqlite3 module itself): only the classic ones
        return isinstance(exc, sqlite3.OperationalError) and any(
            word in str(exc) for word in ("locked", "disk", "I/O", "readonly", "unable to open")
        )
    return (code & 0xFF) in _RETRIABLE_CODES


class DuplicateJobName(CatalogError):
    """A Job row with this unique name exists already (a name from before a fast restart)."""


def open_catalog(resource: CatalogResource, working_dir: Path) -> Catalog:
    """Open (and migrate) the catalog a Catalog resource describes."""
    driver = (resource.db_driver or "sqlite3").lower()
    if driver not in ("sqlite3", "sqlite"):
        raise CatalogError(
            f"Catalog {resource.name!r}: DB Driver {resource.db_driver!r} is not supported yet "
            "(use sqlite3; PostgreSQL comes next)"
        )
    name = resource.db_name or "strongroom"
    path = (
        Path(name)
        if name.startswith("/") or (name.endswith(".db") and "/" in name)
        else working_dir / f"{name}.db"
    )
    catalog = Catalog(path)
    catalog.migrate()
    return catalog


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(f"cannot open the SQLite catalog {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._path_ids: dict[bytes, int] = {}  # Path -> PathId
        self._parents: dict[int, int | None] = {}  # PathId -> its parent's PathId
        self._visible: dict[int, set[int]] = {}  # JobId -> PathIds with a PathVisibility row

    @contextmanager
    def _tx(self, operation: str, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. Any failure in it, the COMMIT included, rolls it back; an SQLite
        error is raised as CatalogWriteError naming `operation`. `durable` commits with
        synchronous=FULL: the WAL is synced before COMMIT returns, so this transaction and every
        one before it survive a power loss (see docs/catalog.md)."""
        with self._lock:
            if (
                self._db.in_transaction
            ):  # never expected: a transaction left open would block every write
                self._rollback()
            try:
                if durable:
                    self._db.execute("PRAGMA synchronous=FULL")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        yield self._db
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                finally:
                    if durable:
                        self._db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise CatalogWriteError(
                    operation, self.path, str(exc), retriable=_is_retriable(exc)
                ) from exc

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already (it does on some disk-full and
        I/O errors); caches filled inside it no longer describe the database."""
        self._forget_paths()
        if self._db.in_transaction:
            with suppress(
                sqlite3.Error
            ):  # nothing more to undo when this fails: SQLite rolled back itself
                self._db.execute("ROLLBACK")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """A read in autocommit mode: its implicit read transaction ends with the statement."""
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot read the catalog {self.path}: {exc}") from exc

    # -- schema -----------------------------------------------------------------------------

    def version(self) -> int:
        with self._lock:
            exists = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='Version'"
            ).fetchone()
            if not exists:
                return 0
            row = self._db.execute("SELECT VersionId FROM Version").fetchone()
            return int(row[0]) if row else 0

    def migrate(self) -> None:
        current = self.version()
        if current > SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {self.path} has schema version {current}, newer than this Director "
                f"({SCHEMA_VERSION}); upgrade Strongroom"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self._tx(f"migrate the schema to version {version}") as db:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                if version == 3:
                    self._link_paths(db)
                db.execute("DELETE FROM Version")
                db.execute("INSERT INTO Version (VersionId) VALUES (?)", (version,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- resources --------------------------------------------------------------------------

    def _ensure(
        self, what: str, select: str, insert: str, args: Sequence[Any], insert_args: Sequence[Any]
    ) -> int:
        with self._tx(f"add {what}") as db:
            row = db.execute(select, args).fetchone()
            if row:
                return int(row[0])
            cur = db.execute(insert, insert_args)
            assert cur.lastrowid is not None
            return cur.lastrowid

    def ensure_client(self, name: str) -> int:
        return self._ensure(
            f"Client {name!r}",
            "SELECT ClientId FROM Client WHERE Name=?",
            "INSERT INTO Client (Name) VALUES (?)",
            (name,),
            (name,),
        )

    def ensure_fileset(self, name: str, md5: str) -> int:
        return self._ensure(
            f"FileSet {name!r}",
            "SELECT FileSetId FROM FileSet WHERE FileSet=? AND MD5=?",
            "INSERT INTO FileSet (FileSet, MD5, CreateTime) VALUES (?,?,?)",
            (name, md5),
            (name, md5, time.time()),
        )

    def ensure_storage(self, name: str) -> int:
        return self._ensure(
            f"Storage {name!r}",
            "SELECT StorageId FROM Storage WHERE Name=?",
            "INSERT INTO Storage (Name) VALUES (?)",
            (name,),
            (name,),
        )

    def ensure_pool(self, pool: PoolRow) -> int:
        """Create the Pool row, or update it from the configuration (Bareos does this at start-up)."""
        with self._tx(f"update Pool {pool.name!r}") as db:
            values = (
                pool.pool_type,
                pool.label_format,
                pool.max_vol_bytes,
                pool.max_vol_jobs,
                pool.max_vols,
                pool.vol_retention,
                int(pool.recycle),
                int(pool.auto_prune),
            )
            row = db.execute("SELECT PoolId FROM Pool WHERE Name=?", (pool.name,)).fetchone()
            if row:
                db.execute(
                    "UPDATE Pool SET PoolType=?, LabelFormat=?, MaxVolBytes=?, MaxVolJobs=?, MaxVols=?, "
                    "VolRetention=?, Recycle=?, AutoPrune=? WHERE PoolId=?",
                    (*values, row[0]),
                )
                return int(row[0])
            cur = db.execute(
                "INSERT INTO Pool (Name, PoolType, LabelFormat, MaxVolBytes, MaxVolJobs, MaxVols, "
                "VolRetention, Recycle, AutoPrune) VALUES (?,?,?,?,?,?,?,?,?)",
                (pool.name, *values),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def list_pools(self) -> list[PoolView]:
        rows = self._query(
            "SELECT p.PoolId, p.Name, p.PoolType, p.LabelFormat, p.MaxVolBytes, p.MaxVolJobs, "
            "(SELECT COUNT(*) FROM Media m WHERE m.PoolId = p.PoolId) FROM Pool p ORDER BY p.Name"
        )
        return [
            PoolView(
                poolid=r[0],
                name=r[1],
                pooltype=r[2],
                labelformat=r[3],
                maxvolbytes=r[4],
                maxvoljobs=r[5],
                numvols=r[6],
            )
            for r in rows
        ]

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, job: NewJob) -> int:
        try:
            return self._create_job(job)
        except CatalogWriteError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError) and "Job.Job" in exc.reason:
                raise DuplicateJobName(f"a job named {job.job!r} exists already") from exc
            raise

    def _create_job(self, job: NewJob) -> int:
        with self._tx(f"create the Job row for {job.job!r}") as db:
            cur = db.execute(
                "INSERT INTO Job (Job, Name, Type, Level, ClientId, FileSetId, PoolId, JobStatus, SchedTime, "
                "Priority, PriorJobId, JobTDate, Request, RetryCount, ExpiresAt, ParentJobId) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job.job,
                    job.name,
                    job.type,
                    job.level,
                    job.client_id,
                    job.fileset_id,
                    job.pool_id,
                    job.status,
                    job.sched_time,
                    job.priority,
                    job.prior_job_id,
                    int(job.sched_time),
                    job.request,
                    job.retry,
                    job.expires_at,
                    job.parent_job_id,
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def update_job(self, /, job_id: int, **columns: ColumnValue) -> None:
        unknown = set(columns) - JOB_COLUMNS
        if unknown:
            raise CatalogError(f"unknown Job column(s): {', '.join(sorted(unknown))}")
        if not columns:
            return
        sets = ", ".join(f"{name}=?" for name in columns)
        with self._tx(
            f"update JobId {job_id}", durable=columns.get("JobStatus") in FINAL_STATUSES
        ) as db:
            db.execute(f"UPDATE Job SET {sets} WHERE JobId=?", (*columns.values(), job_id))

    def apply_job_changes(
        self, updates: dict[int, dict[str, ColumnValue]], logs: Sequence[tuple[int, float, str]]
    ) -> None:
        """Many jobs' column changes and log lines in one transaction (the Director's write-behind).
        A batch that ends a job (a final JobStatus) is committed durably (synchronous=FULL)."""
        for columns in updates.values():
            unknown = set(columns) - JOB_COLUMNS
            if unknown:
                raise CatalogError(f"unknown Job column(s): {', '.join(sorted(unknown))}")
        final = any(columns.get("JobStatus") in FINAL_STATUSES for columns in updates.values())
        with self._tx(
            f"write the state of {len(updates)} job(s) and {len(logs)} log line(s)", durable=final
        ) as db:
            for job_id, columns in updates.items():
                if columns:
                    sets = ", ".join(f"{name}=?" for name in columns)
                    db.execute(f"UPDATE Job SET {sets} WHERE JobId=?", (*columns.values(), job_id))
            if logs:
                db.executemany("INSERT INTO Log (JobId, Time, LogText) VALUES (?,?,?)", logs)

    def get_job(self, job_id: int) -> JobRow | None:
        rows = self._query(_JOB_SELECT + " WHERE j.JobId=?", (job_id,))
        return JobRow(*rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        client_id: int | None = None,
        fileset_id: int | None = None,
        job_name: str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
    ) -> list[JobRow]:
        where, args = [], []
        for column, value in (
            ("j.ClientId", client_id),
            ("j.FileSetId", fileset_id),
            ("j.Name", job_name),
            ("j.Type", job_type),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = _JOB_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY j.JobId"
        rows = self._query(sql, args)
        if limit is not None:
            rows = rows[-limit:]
        return [JobRow(*r) for r in rows]

    def last_job(
        self, job_name: str, client_id: int | None, fileset_id: int | None, levels: Iterable[str]
    ) -> JobRow | None:
        """The newest successful backup of this job, client and fileset at one of `levels`."""
        wanted = list(levels)
        marks = ",".join("?" * len(wanted))
        rows = self._query(
            _JOB_SELECT
            + f" WHERE j.Name=? AND j.ClientId IS ? AND j.FileSetId IS ? AND j.Type='B' "
            f"AND j.JobStatus IN ('T','W') AND j.Level IN ({marks}) ORDER BY j.StartTime DESC, j.JobId DESC LIMIT 1",
            (job_name, client_id, fileset_id, *wanted),
        )
        return JobRow(*rows[0]) if rows else None

    def client_id(self, name: str) -> int | None:
        rows = self._query("SELECT ClientId FROM Client WHERE Name=?", (name,))
        return int(rows[0][0]) if rows else None

    def fileset_ids(self, name: str) -> list[int]:
        return [
            int(r[0]) for r in self._query("SELECT FileSetId FROM FileSet WHERE FileSet=?", (name,))
        ]

    def copies_of(self, job_id: int) -> list[JobRow]:
        """Successful copies (type C) of a job, newest first."""
        rows = self._query(
            _JOB_SELECT + " WHERE j.PriorJobId=? AND j.Type='C' AND j.JobStatus IN ('T','W') "
            "ORDER BY j.JobId DESC",
            (job_id,),
        )
        return [JobRow(*r) for r in rows]

    def run_select(self, sql: str) -> list[int]:
        """A Selection Type = SQLQuery statement: read-only, its first column is a JobId."""
        if not sql.lstrip().lower().startswith("select"):
            raise CatalogError("a selection query must be a SELECT statement")
        with self._lock:
            self._db.execute("PRAGMA query_only=ON")
            try:
                rows = self._db.execute(sql).fetchall()
            except sqlite3.Error as exc:
                raise CatalogError(f"selection query failed: {exc}") from exc
            finally:
                self._db.execute("PRAGMA query_only=OFF")
        return [int(r[0]) for r in rows if r and r[0] is not None]

    def delete_job(self, job_id: int) -> list[int]:
        """Delete a job and its File, JobMedia and Log rows; its copies are promoted to backups (Bareos)."""
        with self._tx(f"delete JobId {job_id}") as db:
            promoted = [
                int(r[0])
                for r in db.execute(
                    "SELECT JobId FROM Job WHERE PriorJobId=? AND Type='C' AND JobStatus IN ('T','W')",
                    (job_id,),
                ).fetchall()
            ]
            db.execute(
                "UPDATE Job SET Type='B' WHERE PriorJobId=? AND Type='C' AND JobStatus IN ('T','W')",
                (job_id,),
            )
            for table in ("File", "JobMedia", "Log", "PathVisibility"):
                db.execute(f"DELETE FROM {table} WHERE JobId=?", (job_id,))
            self._visible.pop(job_id, None)
            db.execute("DELETE FROM Job WHERE JobId=?", (job_id,))
        return promoted

    def copy_deleted_files(self, source_job: int, new_job: int) -> None:
        """Accurate-mode deletion rows are not on volumes: a copy takes them from the catalog."""
        with self._tx(f"copy the deleted-file rows of JobId {source_job} to JobId {new_job}") as db:
            db.execute(
                "INSERT INTO File (FileIndex, JobId, PathId, Name, LStat, MD5) SELECT 0, ?, PathId, Name, LStat, "
                "MD5 FROM File WHERE JobId=? AND FileIndex=0",
                (new_job, source_job),
            )
            # Their directories are visible in the copy too, so a walk of it finds them.
            path_ids = db.execute(
                "SELECT DISTINCT PathId FROM File WHERE JobId=? AND FileIndex=0", (new_job,)
            ).fetchall()
            self._show_paths(db, new_job, (int(r[0]) for r in path_ids))

    # -- files ------------------------------------------------------------------------------

    def _forget_paths(self) -> None:
        """Drop the Path caches (a rolled-back transaction may have added rows that are gone)."""
        self._path_ids.clear()
        self._parents.clear()
        self._visible.clear()

    def _path_id(self, db: sqlite3.Connection, path: bytes) -> int:
        """The PathId of a directory path ("/a/b/"), adding it and its missing ancestors."""
        cached = self._path_ids.get(path)
        if cached is not None:
            return cached
        parent_path = parent_of(path)
        parent = self._path_id(db, parent_path) if parent_path is not None else None
        row = db.execute("SELECT PathId, ParentId FROM Path WHERE Path=?", (path,)).fetchone()
        if row:
            path_id = int(row[0])
            if row[1] is None and parent is not None:
                db.execute("UPDATE Path SET ParentId=? WHERE PathId=?", (parent, path_id))
        else:
            cur = db.execute("INSERT INTO Path (Path, ParentId) VALUES (?,?)", (path, parent))
            assert cur.lastrowid is not None
            path_id = cur.lastrowid
        if len(self._path_ids) > PATH_CACHE:
            self._path_ids.clear()
            self._parents.clear()
        self._path_ids[path] = path_id
        self._parents[path_id] = parent
        return path_id

    def _show_paths(self, db: sqlite3.Connection, job_id: int, path_ids: Iterable[int]) -> None:
        """PathVisibility rows for the job: these directories and every ancestor of them."""
        visible = self._visible.get(job_id)
        if visible is None:
            if len(self._visible) >= VISIBLE_JOBS:
                self._visible.clear()
            visible = self._visible[job_id] = set()
        new: list[tuple[int, int]] = []
        for path_id in path_ids:
            current: int | None = path_id
            while current is not None and current not in visible:
                visible.add(current)
                new.append((current, job_id))
                current = self._parent_id(db, current)
        if new:
            db.executemany("INSERT OR IGNORE INTO PathVisibility (PathId, JobId) VALUES (?,?)", new)

    def _parent_id(self, db: sqlite3.Connection, path_id: int) -> int | None:
        if path_id in self._parents:
            return self._parents[path_id]
        row = db.execute("SELECT ParentId FROM Path WHERE PathId=?", (path_id,)).fetchone()
        parent = int(row[0]) if row and row[0] is not None else None
        self._parents[path_id] = parent
        return parent

    def _link_paths(self, db: sqlite3.Connection) -> None:
        """Migration to version 3: parents for every Path row, visibility for every job's paths."""
        self._forget_paths()
        for (path,) in db.execute("SELECT Path FROM Path WHERE ParentId IS NULL").fetchall():
            self._path_id(db, bytes(path))
        by_job: dict[int, list[int]] = {}
        for job_id, path_id in db.execute("SELECT DISTINCT JobId, PathId FROM File").fetchall():
            by_job.setdefault(int(job_id), []).append(int(path_id))
        for job_id, path_ids in by_job.items():
            self._show_paths(db, job_id, path_ids)

    def insert_files(self, job_id: int, rows: Sequence[FileRow]) -> None:
        """One transaction per batch: Path rows deduplicated (ids cached with their parents), File
        rows inserted with one prepared statement (executemany), directories made visible."""
        with self._tx(f"insert {len(rows)} File row(s) of JobId {job_id}") as db:
            ids = self._path_ids
            path_id = self._path_id
            values = [
                (
                    r.file_index,
                    job_id,
                    ids.get(r.path) or path_id(db, r.path),
                    r.name,
                    r.lstat,
                    r.digest,
                )
                for r in rows
            ]
            db.executemany(
                "INSERT INTO File (FileIndex, JobId, PathId, Name, LStat, MD5) VALUES (?,?,?,?,?,?)",
                values,
            )
            self._show_paths(db, job_id, {v[2] for v in values})

    def browse_directory(
        self, job_ids: Sequence[int], path: bytes, *, limit: int = 0, offset: int = 0
    ) -> list[DirectoryEntry]:
        """One directory of a backup (`.bvfs_lsdirs` and `.bvfs_lsfiles` in one): its
        subdirectories, then its files, each by name, with the newest File row among `job_ids`
        (oldest job first; a later job's row wins, and a file a later job saw deleted is gone).
        Reads only that directory's rows, through Path.ParentId and PathVisibility. `limit` (0:
        all) and `offset` page through the entries."""
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        order = {job_id: n for n, job_id in enumerate(job_ids)}
        base = path if path.endswith(b"/") else path + b"/"
        entries: dict[bytes, DirectoryEntry] = {}
        with self._lock:
            try:
                row = self._db.execute("SELECT PathId FROM Path WHERE Path=?", (base,)).fetchone()
                if row is None:
                    return []
                dirs = self._db.execute(
                    f"SELECT p.PathId, p.Path FROM Path p WHERE p.ParentId=? AND EXISTS (SELECT 1 FROM PathVisibility v "
                    f"WHERE v.PathId=p.PathId AND v.JobId IN ({marks}))",
                    (row[0], *job_ids),
                ).fetchall()
                for child_id, child in dirs:
                    name = bytes(child)[len(base) :]
                    entries[name] = DirectoryEntry(name, int(child_id), None)
                    for f in self._db.execute(
                        f"SELECT JobId, FileIndex, LStat, MD5 FROM File WHERE JobId IN ({marks}) AND PathId=? "
                        "AND Name=x''",
                        (*job_ids, child_id),
                    ).fetchall():
                        _newest(
                            entries,
                            order,
                            name,
                            int(child_id),
                            FileRow(int(f[0]), bytes(child), b"", int(f[1]), bytes(f[2]), f[3]),
                        )
                files = self._db.execute(
                    f"SELECT JobId, Name, FileIndex, LStat, MD5 FROM File WHERE JobId IN ({marks}) AND PathId=? "
                    "AND Name!=x''",
                    (*job_ids, row[0]),
                ).fetchall()
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot read the catalog {self.path}: {exc}") from exc
        for f in files:
            name = bytes(f[1])
            _newest(
                entries,
                order,
                name,
                None,
                FileRow(int(f[0]), base, name, int(f[2]), bytes(f[3]), f[4]),
            )
        listing = sorted(
            (e for e in entries.values() if e.row is None or e.row.file_index != 0),
            key=lambda e: (e.path_id is None, e.name),
        )
        return listing[offset : offset + limit] if limit else listing[offset:]

    def chain_reader(self, job_ids: Sequence[int]) -> ChainReader:
        """Reads the newest live rows of a chain of jobs (oldest first) a directory at a time;
        its methods belong on the catalog thread (see director.catalog.walk)."""
        return ChainReader(self._query, job_ids)

    def walk_chain(
        self,
        job_ids: Sequence[int],
        top: bytes = b"/",
        keep: Keep | None = None,
        *,
        batch: int = PAGE,
    ) -> Iterator[list[FileRow]]:
        """The live rows of a chain at and under `top`, in batches (`ChainReader.walk`): each
        batch is one step on the catalog thread, nothing of the job is held as a whole."""
        return ChainReader(self._query, job_ids).walk(top, keep, batch=batch)

    def existing_indexes(self, pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of these (JobId, FileIndex) have a File row (hard-link carriers, say). Reads
        each job's rows once; the catalog has no (JobId, FileIndex) index to spare the inserts."""
        by_job: dict[int, set[int]] = {}
        for job_id, index in pairs:
            by_job.setdefault(job_id, set()).add(index)
        found: set[tuple[int, int]] = set()
        for job_id, indexes in by_job.items():
            wanted = sorted(indexes)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._query(
                    f"SELECT DISTINCT FileIndex FROM File WHERE JobId=? AND FileIndex IN "
                    f"({','.join('?' * len(chunk))})",
                    (job_id, *chunk),
                )
                found.update((job_id, int(r[0])) for r in rows)
        return found

    def list_files(self, job_id: int) -> list[FileRow]:
        rows = self._query(
            "SELECT f.JobId, p.Path, f.Name, f.FileIndex, f.LStat, f.MD5 FROM File f "
            "JOIN Path p ON p.PathId = f.PathId WHERE f.JobId=? ORDER BY f.FileIndex, f.FileId",
            (job_id,),
        )
        return [
            FileRow(int(r[0]), bytes(r[1]), bytes(r[2]), int(r[3]), bytes(r[4]), r[5]) for r in rows
        ]

    # -- media ------------------------------------------------------------------------------

    def create_media(
        self,
        volume_name: str,
        pool_id: int,
        media_type: str,
        storage: str | None,
        *,
        max_vol_bytes: int = 0,
        max_vol_jobs: int = 0,
    ) -> int:
        storage_id = self.ensure_storage(storage) if storage else None
        with self._tx(f"create volume {volume_name!r}") as db:
            cur = db.execute(
                "INSERT INTO Media (VolumeName, PoolId, StorageId, MediaType, LabelDate, MaxVolBytes, "
                "MaxVolJobs) VALUES (?,?,?,?,?,?,?)",
                (
                    volume_name,
                    pool_id,
                    storage_id,
                    media_type,
                    time.time(),
                    max_vol_bytes,
                    max_vol_jobs,
                ),
            )
            db.execute("UPDATE Pool SET NumVols = NumVols + 1 WHERE PoolId=?", (pool_id,))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def get_media(self, volume_name: str) -> MediaRow | None:
        rows = self._query(_MEDIA_SELECT + " WHERE m.VolumeName=?", (volume_name,))
        return MediaRow(*rows[0]) if rows else None

    def list_media(self, pool_id: int | None = None) -> list[MediaRow]:
        if pool_id is None:
            rows = self._query(_MEDIA_SELECT + " ORDER BY m.MediaId")
        else:
            rows = self._query(_MEDIA_SELECT + " WHERE m.PoolId=? ORDER BY m.MediaId", (pool_id,))
        return [MediaRow(*r) for r in rows]

    def update_media(self, /, volume_name: str, **columns: ColumnValue) -> None:
        unknown = set(columns) - MEDIA_COLUMNS
        if unknown:
            raise CatalogError(f"unknown Media column(s): {', '.join(sorted(unknown))}")
        sets = ", ".join(f"{name}=?" for name in columns)
        with self._tx(f"update volume {volume_name!r}") as db:
            db.execute(
                f"UPDATE Media SET {sets} WHERE VolumeName=?", (*columns.values(), volume_name)
            )

    def add_volume_usage(
        self,
        volume_name: str,
        *,
        size: int,
        blocks: int,
        jobs: int,
        files: int,
        status: str | None,
        when: float,
    ) -> MediaRow | None:
        """What one job wrote to a volume, applied atomically (several jobs append to one volume at
        once and report in any order): VolJobs and VolFiles are added to; VolBytes and VolBlocks take
        the larger value, except when the Storage Daemon cut the volume back (Full, Error), which is
        exact. Volume Jobs reaching Maximum Volume Jobs turns an Append volume Used. Returns the row."""
        with self._tx(f"add the usage of volume {volume_name!r}") as db:
            exact = status in ("Full", "Error")
            db.execute(
                "UPDATE Media SET VolJobs = VolJobs + ?, VolFiles = VolFiles + ?, "
                "VolBytes = CASE WHEN ? THEN ? ELSE MAX(VolBytes, ?) END, "
                "VolBlocks = CASE WHEN ? THEN ? ELSE MAX(VolBlocks, ?) END, "
                "LastWritten = ?, FirstWritten = COALESCE(FirstWritten, ?) WHERE VolumeName=?",
                (jobs, files, exact, size, size, exact, blocks, blocks, when, when, volume_name),
            )
            if status is not None and status != "Append":
                db.execute(
                    "UPDATE Media SET VolStatus=? WHERE VolumeName=? AND VolStatus IN ('Append', 'Used', 'Full')",
                    (status, volume_name),
                )
            db.execute(
                "UPDATE Media SET VolStatus='Used' WHERE VolumeName=? AND VolStatus='Append' "
                "AND MaxVolJobs > 0 AND VolJobs >= MaxVolJobs",
                (volume_name,),
            )
            row = db.execute(_MEDIA_SELECT + " WHERE m.VolumeName=?", (volume_name,)).fetchone()
        return MediaRow(*row) if row else None

    def add_jobmedia(self, row: JobMediaRow) -> None:
        with self._tx(f"add a JobMedia row of JobId {row.job_id}") as db:
            db.execute(
                "INSERT INTO JobMedia (JobId, MediaId, FirstIndex, LastIndex, StartFile, EndFile, StartBlock, "
                "EndBlock, JobBytes) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    row.job_id,
                    row.media_id,
                    row.first_index,
                    row.last_index,
                    row.start_addr,
                    row.end_addr,
                    row.start_block,
                    row.end_block,
                    row.bytes,
                ),
            )

    def list_jobmedia(self, job_ids: Iterable[int]) -> list[JobMediaRow]:
        ids = list(job_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT jm.JobId, jm.MediaId, m.VolumeName, jm.FirstIndex, jm.LastIndex, jm.StartBlock, jm.EndBlock, "
            "jm.StartFile, jm.EndFile, jm.JobBytes, j.VolSessionId, j.VolSessionTime FROM JobMedia jm "
            f"JOIN Media m ON m.MediaId = jm.MediaId JOIN Job j ON j.JobId = jm.JobId WHERE jm.JobId IN ({marks}) "
            "ORDER BY jm.JobId, jm.JobMediaId",
            ids,
        )
        return [JobMediaRow(*r) for r in rows]

    # -- queue ----------------------------------------------------------------------------

    def unfinished_jobs(self) -> list[tuple[JobRow, str | None, str | None, int]]:
        """Jobs not in a final status, with their saved run request, wait reason and retry count."""
        rows = self._query(
            _JOB_SELECT.replace("FROM Job j", ", j.Request, j.WaitReason, j.RetryCount FROM Job j")
            + " WHERE j.JobStatus NOT IN ('T','W','E','f','D','A','I') ORDER BY j.JobId"
        )
        return [(JobRow(*r[:-3]), r[-3], r[-2], int(r[-1])) for r in rows]

    def scheduler_state(self) -> dict[str, float]:
        """When the scheduler last looked at each schedule key (for the missed-run policy)."""
        return {
            str(r[0]): float(r[1]) for r in self._query("SELECT Name, LastSeen FROM SchedulerState")
        }

    def save_scheduler_state(self, seen: dict[str, float]) -> None:
        with self._tx("save the scheduler state") as db:
            db.executemany(
                "INSERT INTO SchedulerState (Name, LastSeen) VALUES (?,?) "
                "ON CONFLICT (Name) DO UPDATE SET LastSeen=excluded.LastSeen",
                list(seen.items()),
            )

    # -- log --------------------------------------------------------------------------------

    def add_log(self, job_id: int, when: float, text: str) -> None:
        with self._tx(f"add a log line of JobId {job_id}") as db:
            db.execute(
                "INSERT INTO Log (JobId, Time, LogText) VALUES (?,?,?)", (job_id, when, text)
            )

    def job_log(self, job_id: int) -> list[tuple[float, str]]:
        return [
            (float(r[0]), str(r[1]))
            for r in self._query(
                "SELECT Time, LogText FROM Log WHERE JobId=? ORDER BY LogId", (job_id,)
            )
        ]

    # -- console reads in pages: a listing never holds a whole table ---------------------------

    def files_page(
        self, job_id: int, after: int, limit: int, offset: int = 0
    ) -> list[tuple[int, FileRow]]:
        """Up to `limit` File rows of a job with FileId > `after` (skipping `offset` of them), in
        FileId order, each with its FileId (the key of the next page)."""
        rows = self._query(
            "SELECT f.FileId, f.JobId, p.Path, f.Name, f.FileIndex, f.LStat, f.MD5 FROM File f "
            "JOIN Path p ON p.PathId = f.PathId WHERE f.JobId=? AND f.FileId>? ORDER BY f.FileId "
            "LIMIT ? OFFSET ?",
            (job_id, after, limit, offset),
        )
        return [
            (int(r[0]), FileRow(int(r[1]), bytes(r[2]), bytes(r[3]), int(r[4]), bytes(r[5]), r[6]))
            for r in rows
        ]

    def jobs_page(
        self,
        after: int | None,
        limit: int,
        *,
        offset: int = 0,
        descending: bool = False,
        job_name: str | None = None,
        client: str | None = None,
        status: str | None = None,
        job_type: str | None = None,
    ) -> list[JobRow]:
        """Up to `limit` jobs after JobId `after` in JobId order (newest first when `descending`),
        filtered by job name, client name, status letter and type."""
        where: list[str] = []
        args: list[Any] = []
        if after is not None:
            where.append("j.JobId<?" if descending else "j.JobId>?")
            args.append(after)
        for column, value in (
            ("j.Name", job_name),
            ("c.Name", client),
            ("j.JobStatus", status),
            ("j.Type", job_type),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = (
            _JOB_SELECT
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY j.JobId{' DESC' if descending else ''} LIMIT ? OFFSET ?"
        )
        return [JobRow(*r) for r in self._query(sql, (*args, limit, offset))]

    def media_page(
        self, after: int, limit: int, *, offset: int = 0, pool: str | None = None
    ) -> list[MediaRow]:
        """Up to `limit` volumes with MediaId > `after` in MediaId order, of one pool when given."""
        where = " WHERE m.MediaId>?" + (" AND p.Name=?" if pool is not None else "")
        args: tuple[Any, ...] = (after, pool) if pool is not None else (after,)
        return [
            MediaRow(*r)
            for r in self._query(
                _MEDIA_SELECT + where + " ORDER BY m.MediaId LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
        ]

    def log_page(
        self, job_id: int, after: int, limit: int, offset: int = 0
    ) -> list[tuple[int, float, str]]:
        """Up to `limit` Log rows of a job with LogId > `after`, in order: (LogId, Time, LogText)."""
        return [
            (int(r[0]), float(r[1]), str(r[2]))
            for r in self._query(
                "SELECT LogId, Time, LogText FROM Log WHERE JobId=? AND LogId>? ORDER BY LogId LIMIT ? OFFSET ?",
                (job_id, after, limit, offset),
            )
        ]

    def known_names(self, kind: str) -> list[str]:
        """The names the catalog has seen of a kind: job, client, fileset, pool or storage."""
        sql = {
            "job": "SELECT DISTINCT Name FROM Job",
            "client": "SELECT Name FROM Client",
            "fileset": "SELECT DISTINCT FileSet FROM FileSet",
            "pool": "SELECT Name FROM Pool",
            "storage": "SELECT Name FROM Storage",
        }[kind]
        return sorted(str(r[0]) for r in self._query(sql) if r[0] is not None)
