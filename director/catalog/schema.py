"""The catalog schema, versioned: each migration moves the database one version forward.

Version 3 adds the directory tree (Bareos's PathHierarchy and PathVisibility, kept up to date as
File rows are inserted instead of by `.bvfs_update`): Path.ParentId names the parent directory's
Path row, and PathVisibility lists, per job, every directory that holds its files and every
ancestor of those, so one directory of a job is listed without loading its whole file list.
Rows from before version 3 are linked when the migration runs (`Catalog.migrate`). It also drops
File's index on JobId alone, which (JobId, PathId, Name) covers: one index less to keep up on
every inserted File row.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 3

MIGRATIONS: Final[dict[int, str]] = {
    1: """
CREATE TABLE Version (VersionId INTEGER NOT NULL);
CREATE TABLE Client (
  ClientId INTEGER PRIMARY KEY, Name TEXT NOT NULL UNIQUE, Uname TEXT NOT NULL DEFAULT '',
  AutoPrune INTEGER NOT NULL DEFAULT 0, FileRetention INTEGER NOT NULL DEFAULT 0,
  JobRetention INTEGER NOT NULL DEFAULT 0);
CREATE TABLE FileSet (
  FileSetId INTEGER PRIMARY KEY, FileSet TEXT NOT NULL, MD5 TEXT NOT NULL, CreateTime REAL NOT NULL,
  UNIQUE (FileSet, MD5));
CREATE TABLE Pool (
  PoolId INTEGER PRIMARY KEY, Name TEXT NOT NULL UNIQUE, PoolType TEXT NOT NULL DEFAULT 'Backup',
  LabelFormat TEXT, MaxVolBytes INTEGER NOT NULL DEFAULT 0, MaxVolJobs INTEGER NOT NULL DEFAULT 0,
  MaxVols INTEGER NOT NULL DEFAULT 0, VolRetention REAL NOT NULL DEFAULT 0, Recycle INTEGER NOT NULL DEFAULT 1,
  AutoPrune INTEGER NOT NULL DEFAULT 1, NumVols INTEGER NOT NULL DEFAULT 0);
CREATE TABLE Storage (StorageId INTEGER PRIMARY KEY, Name TEXT NOT NULL UNIQUE, AutoChanger INTEGER NOT NULL DEFAULT 0);
CREATE TABLE Media (
  MediaId INTEGER PRIMARY KEY, VolumeName TEXT NOT NULL UNIQUE, PoolId INTEGER NOT NULL REFERENCES Pool,
  StorageId INTEGER REFERENCES Storage, MediaType TEXT NOT NULL, VolStatus TEXT NOT NULL DEFAULT 'Append',
  VolBytes INTEGER NOT NULL DEFAULT 0, VolBlocks INTEGER NOT NULL DEFAULT 0, VolJobs INTEGER NOT NULL DEFAULT 0,
  VolFiles INTEGER NOT NULL DEFAULT 0, FirstWritten REAL, LastWritten REAL, LabelDate REAL,
  MaxVolBytes INTEGER NOT NULL DEFAULT 0, MaxVolJobs INTEGER NOT NULL DEFAULT 0,
  VolRetention REAL NOT NULL DEFAULT 0, Recycle INTEGER NOT NULL DEFAULT 1);
CREATE TABLE Job (
  JobId INTEGER PRIMARY KEY, Job TEXT NOT NULL UNIQUE, Name TEXT NOT NULL, Type TEXT NOT NULL,
  Level TEXT NOT NULL, ClientId INTEGER REFERENCES Client, JobStatus TEXT NOT NULL,
  SchedTime REAL, StartTime REAL, EndTime REAL, RealEndTime REAL, JobTDate INTEGER NOT NULL DEFAULT 0,
  VolSessionId INTEGER NOT NULL DEFAULT 0, VolSessionTime INTEGER NOT NULL DEFAULT 0,
  JobFiles INTEGER NOT NULL DEFAULT 0, JobBytes INTEGER NOT NULL DEFAULT 0, ReadBytes INTEGER NOT NULL DEFAULT 0,
  JobErrors INTEGER NOT NULL DEFAULT 0, JobMissingFiles INTEGER NOT NULL DEFAULT 0,
  PoolId INTEGER REFERENCES Pool, FileSetId INTEGER REFERENCES FileSet, PriorJobId INTEGER,
  PurgedFiles INTEGER NOT NULL DEFAULT 0, HasBase INTEGER NOT NULL DEFAULT 0,
  Priority INTEGER NOT NULL DEFAULT 10, Comment TEXT);
CREATE INDEX job_name_idx ON Job (Name, ClientId, FileSetId);
CREATE TABLE Path (PathId INTEGER PRIMARY KEY, Path BLOB NOT NULL UNIQUE);
CREATE TABLE File (
  FileId INTEGER PRIMARY KEY, FileIndex INTEGER NOT NULL, JobId INTEGER NOT NULL REFERENCES Job,
  PathId INTEGER NOT NULL REFERENCES Path, Name BLOB NOT NULL, DeltaSeq INTEGER NOT NULL DEFAULT 0,
  MarkId INTEGER NOT NULL DEFAULT 0, LStat BLOB NOT NULL, MD5 TEXT);
CREATE INDEX file_jobid_idx ON File (JobId);
CREATE INDEX file_jpfid_idx ON File (JobId, PathId, Name);
CREATE TABLE JobMedia (
  JobMediaId INTEGER PRIMARY KEY, JobId INTEGER NOT NULL REFERENCES Job, MediaId INTEGER NOT NULL REFERENCES Media,
  FirstIndex INTEGER NOT NULL, LastIndex INTEGER NOT NULL, StartFile INTEGER NOT NULL DEFAULT 0,
  EndFile INTEGER NOT NULL DEFAULT 0, StartBlock INTEGER NOT NULL, EndBlock INTEGER NOT NULL,
  JobBytes INTEGER NOT NULL DEFAULT 0, VolIndex INTEGER NOT NULL DEFAULT 0);
CREATE INDEX jobmedia_jobid_idx ON JobMedia (JobId);
CREATE TABLE Log (LogId INTEGER PRIMARY KEY, JobId INTEGER NOT NULL, Time REAL NOT NULL, LogText TEXT NOT NULL);
CREATE INDEX log_jobid_idx ON Log (JobId);
""",
    2: """
ALTER TABLE Job ADD COLUMN WaitReason TEXT;
ALTER TABLE Job ADD COLUMN Request TEXT;
ALTER TABLE Job ADD COLUMN RetryCount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE Job ADD COLUMN ExpiresAt REAL;
ALTER TABLE Job ADD COLUMN ParentJobId INTEGER;
CREATE INDEX job_status_idx ON Job (JobStatus);
CREATE TABLE SchedulerState (Name TEXT PRIMARY KEY, LastSeen REAL NOT NULL);
""",
    3: """
ALTER TABLE Path ADD COLUMN ParentId INTEGER;
CREATE INDEX path_parent_idx ON Path (ParentId);
DROP INDEX file_jobid_idx;
CREATE TABLE PathVisibility (
  PathId INTEGER NOT NULL, JobId INTEGER NOT NULL, PRIMARY KEY (JobId, PathId)) WITHOUT ROWID;
""",
}
