"""The Director's configuration model (Bareos `bareos-dir.d` resources) and its loader."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from common.config.errors import ConfigError, SourceLocation
from common.config.loader import (
    Loaded,
    Source,
    build_named,
    check_ref,
    collect_named,
    exactly_one,
    read_source,
)
from common.config.parser import RawDirective, normalize
from common.config.resources import TLS_UNIMPLEMENTED, Messages, TlsFields
from common.config.schema import Resource, Values, build, normalized
from common.config.types import Duration, Size
from common.link import DEFAULT_HEARTBEAT_INTERVAL
from director.schedule.plan import check_run, check_schedules, director_zone
from protocol.fileset import SIGNATURES, parse_compression

ACL_FIELDS = (
    "command_acl",
    "job_acl",
    "client_acl",
    "storage_acl",
    "schedule_acl",
    "pool_acl",
    "file_set_acl",
    "catalog_acl",
    "where_acl",
    "plugin_options_acl",
)
JOB_TYPES = {
    t.lower(): t
    for t in ("Backup", "Restore", "Verify", "Admin", "Copy", "Migrate", "Consolidate", "Archive")
}
LEVELS = {
    lv.lower(): lv
    for lv in (
        "Full",
        "Incremental",
        "Differential",
        "VirtualFull",
        "Base",
        "Catalog",
        "InitCatalog",
        "VolumeToCatalog",
        "DiskToCatalog",
        "Data",
    )
}


def _level_name(value: str | None) -> str | None:
    """A Level as written (any case) → its canonical name; unknown levels are errors."""
    if value is None:
        return None
    if value.lower() not in LEVELS:
        raise ValueError(f"unknown Level {value!r} (use Full, Incremental or Differential)")
    return LEVELS[value.lower()]


class DirectorResource(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"dirport": "port", "diraddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Subscriptions",
        "Plugin Directory",
        "Plugin Names",
        "Key Encryption Key",
        "Statistics Retention",
        "Statistics Collect Interval",
        "Scripts Directory",
        "Maximum Console Connections",
        "Dir Addresses",
        "Dir Source Address",
        "Audit Events",
        "Secure Erase Command",
        "Log Timestamp Format",
        "Ndmp Snooping",
        "Ndmp Log Level",
        "Absolute Job Timeout",
        "Optimize For Size",
        "Optimize For Speed",
        "Ver Id",
        "Enable JSON Compatible Messages",
        "Backend Directory",
        "Pid Directory",
        "Plugin Directory",
    )
    name: str
    description: str | None = None
    password: SecretStr
    messages: str | None = None
    port: int = 9101
    address: str | None = None
    maximum_concurrent_jobs: int = 1
    working_directory: Path | None = None
    query_file: str | None = None
    heartbeat_interval: Duration = (
        DEFAULT_HEARTBEAT_INTERVAL  # 0 turns heartbeats off (common.link)
    )
    fd_connect_timeout: Duration = 180
    sd_connect_timeout: Duration = 1800
    auth_timeout: Duration = 30
    auditing: bool = False
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            director_zone(value)  # raises ValueError naming the zone
        return value


class ClientResource(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"fdport": "port", "fdaddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "File Retention",
        "Job Retention",
        "Auto Prune",
        "Maximum Bandwidth Per Job",
        "Lan Address",
        "Connection From Director To Client",
        "Connection From Client To Director",
        "Protocol",
        "Username",
        "Hard Quota",
        "Soft Quota",
        "Soft Quota Grace Period",
        "Strict Quotas",
        "Quota Include Failed Jobs",
        "NDMP Log Level",
        "NDMP Block Size",
        "NDMP Use LMDB",
        "Auth Type",
    )
    name: str
    description: str | None = None
    address: str
    port: int = 9102
    password: SecretStr
    catalog: str | None = None
    maximum_concurrent_jobs: int = 1
    heartbeat_interval: Duration = 0
    enabled: bool = True
    passive: bool = False


class StorageResource(TlsFields):
    ALIASES: ClassVar[dict[str, str]] = {"sdport": "port", "sdaddress": "address"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Auto Changer",
        "Allow Compression",
        "Maximum Concurrent Read Jobs",
        "Paired Storage",
        "Lan Address",
        "Maximum Bandwidth Per Job",
        "Collect Statistics",
        "Protocol",
        "Auth Type",
        "Username",
        "Cache Status Interval",
        "Sdd Port",
        "Ndmp Changer Device",
        "Heartbeat Interval",
    )
    name: str
    description: str | None = None
    address: str
    port: int = 9103
    password: SecretStr
    device: tuple[str, ...] = ()
    media_type: str | None = None
    maximum_concurrent_jobs: int = 1
    enabled: bool = True


class CatalogResource(Resource):
    ALIASES: ClassVar[dict[str, str]] = {
        "user": "db_user",
        "password": "db_password",
        "dbpassword": "db_password",
    }
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized(
        "Reconnect",
        "Exit On Fatal",
        "Min Connections",
        "Max Connections",
        "Inc Connections",
        "Idle Timeout",
        "Validate Timeout",
        "Multiple Connections",
        "Disable Batch Insert",
    )
    name: str
    description: str | None = None
    db_driver: str = "sqlite3"
    db_name: str = "strongroom"
    db_user: str | None = None
    db_password: SecretStr | None = None
    db_address: str | None = None
    db_port: int | None = None
    db_socket: str | None = None

    @field_validator("db_driver")
    @classmethod
    def _driver(cls, value: str) -> str:
        lowered = value.lower()
        if lowered in ("sqlite", "sqlite3"):
            return "sqlite3"
        if lowered in ("postgresql", "postgres", "pgsql"):
            return "postgresql"
        raise ValueError(f"unsupported DB Driver {value!r} (use sqlite3 or postgresql)")


class PoolResource(Resource):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized(
        "Action On Purge",
        "Cleaning Prefix",
        "File Retention",
        "Job Retention",
        "Maximum Block Size",
        "Minimum Block Size",
        "Migration High Bytes",
        "Migration Low Bytes",
        "Purge Oldest Volume",
        "Recycle Current Volume",
        "Recycle Oldest Volume",
        "Scratch Pool",
        "Use Catalog",
        "Volume Use Duration",
        "Maximum Volume Files",
        "Catalog Files",
        "Auto Prune Interval",
    )
    name: str
    description: str | None = None
    pool_type: str = "Backup"
    label_format: str | None = None
    maximum_volume_bytes: Size | None = None
    maximum_volume_jobs: int | None = None
    maximum_volumes: int | None = None
    volume_retention: Duration = 365 * 86400
    recycle: bool = True
    auto_prune: bool = True
    recycle_pool: str | None = None
    next_pool: str | None = None
    storage: tuple[str, ...] = ()
    catalog: str | None = None
    migration_time: Duration | None = None


class ScheduleResource(Resource):
    name: str
    description: str | None = None
    run: tuple[str, ...] = ()
    enabled: bool = True

    @classmethod
    def directive_hook(cls, directive: RawDirective, values: Values) -> bool:
        if directive.key != "run":
            return False
        text = directive.text()
        try:
            check_run(text)  # each Run line is checked here, where its own file:line is known
        except ValueError as exc:
            raise ConfigError.at(directive.loc, str(exc), directive.name) from exc
        previous = values.get("run", ((), directive.loc))[0]
        values["run"] = ((*previous, text), directive.loc)
        return True


class OptionsBlock(Resource):
    ALIASES: ClassVar[dict[str, str]] = {
        "wilddir": "wild_dir",
        "wildfile": "wild_file",
        "regexdir": "regex_dir",
        "regexfile": "regex_file",
        "aclsupport": "acl_support",
        "xattrsupport": "xattr_support",
        "onefs": "one_fs",
        "hardlinks": "hard_links",
        "noatime": "no_atime",
        "mtimeonly": "mtime_only",
    }
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized(
        "FS Type",
        "Drive Type",
        "Portable",
        "HFS Plus Support",
        "Read Fifo",
        "Check File Changes",
        "Verify",
        "Accurate",
        "Base Job",
        "Encryption",
        "Auto Exclude",
        "Size",
        "Shadowing",
        "Meta",
        "Strip Path",
        "Force Encryption",
        "Honor No Dump Flag",
        "Keep Atime",
        "Plugin",
    )
    signature: str | None = None
    compression: str | None = None
    one_fs: bool = True
    sparse: bool = False
    hard_links: bool = True
    wild: tuple[str, ...] = ()
    wild_dir: tuple[str, ...] = ()
    wild_file: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    regex_dir: tuple[str, ...] = ()
    regex_file: tuple[str, ...] = ()
    exclude: bool = False
    acl_support: bool = True
    xattr_support: bool = True
    no_atime: bool = False
    mtime_only: bool = False
    ignore_case: bool = False
    recurse: bool = True

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in SIGNATURES:
            raise ValueError(f"unknown Signature {value!r} (use {', '.join(SIGNATURES)})")
        return value.upper()

    @field_validator("compression")
    @classmethod
    def _compression(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_compression(value)  # the File Daemon's own list: what passes -t runs
        return value.strip().upper()


class IncludeBlock(Resource):
    BLOCKS: ClassVar[dict[str, str]] = {"options": "options"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized("Plugin", "Exclude Dir Containing")
    file: tuple[str, ...] = ()
    options: tuple[OptionsBlock, ...] = ()


class ExcludeBlock(Resource):
    file: tuple[str, ...] = ()


class FileSetResource(Resource):
    BLOCKS: ClassVar[dict[str, str]] = {"include": "include", "exclude": "exclude"}
    UNIMPLEMENTED: ClassVar[frozenset[str]] = normalized("Enable VSS")
    name: str
    description: str | None = None
    include: tuple[IncludeBlock, ...] = ()
    exclude: tuple[ExcludeBlock, ...] = ()
    ignore_file_set_changes: bool = False


class RunScript(Resource):
    ALIASES: ClassVar[dict[str, str]] = {
        "runswhen": "runs_when",
        "runsonsuccess": "runs_on_success",
        "runsonfailure": "runs_on_failure",
        "runsonclient": "runs_on_client",
        "failjobonerror": "fail_job_on_error",
        "abortjobonerror": "fail_job_on_error",
    }
    command: tuple[str, ...] = ()
    console: tuple[str, ...] = ()
    runs_when: str = "Before"
    runs_on_success: bool = True
    runs_on_failure: bool = False
    runs_on_client: bool = True
    fail_job_on_error: bool = True

    @classmethod
    def directive_hook(cls, directive: RawDirective, values: Values) -> bool:
        if directive.key not in ("command", "console"):
            return False
        field = directive.key
        previous = values.get(field, ((), directive.loc))[0]
        values[field] = ((*previous, directive.text()), directive.loc)
        return True

    @field_validator("runs_when")
    @classmethod
    def _when(cls, value: str) -> str:
        known = {"before": "Before", "after": "After", "always": "Always", "aftervss": "AfterVSS"}
        if value.lower() not in known:
            raise ValueError(f"unknown RunsWhen {value!r} (use Before, After or Always)")
        return known[value.lower()]


class JobAction(Resource):
    """One step of a multi-action job (Freezer `job_actions`): a run of another Job resource."""

    ALIASES: ClassVar[dict[str, str]] = {
        "fileset": "file_set",
        "maxretries": "max_retries",
        "maxretryinterval": "max_retry_interval",
    }
    job: str | None = None
    level: str | None = None
    client: str | None = None
    file_set: str | None = None
    pool: str | None = None
    storage: str | None = None
    priority: int | None = None
    mandatory: bool | None = None
    max_retries: int | None = None
    max_retry_interval: Duration | None = None

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        return _level_name(value)


_JOB_UNIMPLEMENTED = normalized(
    "Spool Data",
    "Spool Attributes",
    "Spool Size",
    "Prefer Mounted Volumes",
    "Prune Jobs",
    "Prune Files",
    "Prune Volumes",
    "Purge Migration Job",
    "Max Concurrent Copies",
    "Always Incremental",
    "Always Incremental Job Retention",
    "Always Incremental Keep Number",
    "Always Incremental Max Full Age",
    "Max Full Consolidations",
    "Run On Incoming Connect Interval",
    "Fd Plugin Options",
    "Sd Plugin Options",
    "Dir Plugin Options",
    "Job To Verify",
    "Protocol",
    "Backup Format",
    "Save File History",
    "Max Full Interval",
    "Max Diff Interval",
    "Max Virtual Full Interval",
    "Virtual Full Backup Pool",
    "Rerun Failed Levels",
    "Allow Higher Duplicates",
    "Duplicate Job Proximity",
    "Strip Prefix Links",
    "Prefix Links",
    "Maximum Bandwidth",
    "Full Max Runtime",
    "Incremental Max Runtime",
    "Differential Max Runtime",
    "Accurate File Check",
    "Run",
    "Client Run Before Job Ignore Errors",
    "Selection Pool",
    "Base",
    "Regex Where Links",
)


class JobResource(Resource):
    ALIASES: ClassVar[dict[str, str]] = {
        "fileset": "file_set",
        "jobdefs": "job_defs",
        "regexwhere": "regex_where",
        "stripprefix": "strip_prefix",
        "addprefix": "add_prefix",
        "addsuffix": "add_suffix",
    }
    BLOCKS: ClassVar[dict[str, str]] = {
        "runscript": "run_script",
        "action": "action",
        "actiondefaults": "action_defaults",
    }
    UNIMPLEMENTED: ClassVar[frozenset[str]] = _JOB_UNIMPLEMENTED
    name: str
    description: str | None = None
    type: str | None = None
    level: str | None = None
    client: str | None = None
    file_set: str | None = None
    schedule: str | None = None
    storage: tuple[str, ...] = ()
    pool: str | None = None
    full_backup_pool: str | None = None
    incremental_backup_pool: str | None = None
    differential_backup_pool: str | None = None
    next_pool: str | None = None
    messages: str | None = None
    job_defs: str | None = None
    priority: int = 10
    allow_mixed_priority: bool = False
    maximum_concurrent_jobs: int = 1
    accurate: bool = False
    where: str | None = None
    replace: str = "Always"
    strip_prefix: str | None = None
    add_prefix: str | None = None
    add_suffix: str | None = None
    regex_where: str | None = None
    bootstrap: str | None = None
    write_bootstrap: str | None = None
    run_before_job: tuple[str, ...] = ()
    run_after_job: tuple[str, ...] = ()
    run_after_failed_job: tuple[str, ...] = ()
    client_run_before_job: tuple[str, ...] = ()
    client_run_after_job: tuple[str, ...] = ()
    run_script: tuple[RunScript, ...] = ()
    max_start_delay: Duration | None = None
    max_run_time: Duration | None = None
    max_wait_time: Duration | None = None
    max_run_sched_time: Duration | None = None
    reschedule_on_error: bool = False
    reschedule_interval: Duration = 1800
    reschedule_times: int = 0
    allow_duplicate_jobs: bool = True
    cancel_lower_level_duplicates: bool = False
    cancel_queued_duplicates: bool = False
    cancel_running_duplicates: bool = False
    selection_type: str | None = None
    selection_pattern: str | None = None
    enabled: bool = True
    # Strongroom extensions (see docs/job-engine.md)
    reschedule_backoff: float = 1.0
    reschedule_max_interval: Duration | None = None
    missed_run_policy: str = "run once"
    run_on_status_change: tuple[str, ...] = ()
    action: tuple[JobAction, ...] = ()
    action_defaults: tuple[JobAction, ...] = ()
    schedule_date: str | None = None
    schedule_interval: str | None = None
    schedule_cron: str | None = None
    schedule_start_date: str | None = None
    schedule_end_date: str | None = None
    schedule_year: str | None = None
    schedule_month: str | None = None
    schedule_day: str | None = None
    schedule_week: str | None = None
    schedule_day_of_week: str | None = None
    schedule_hour: str | None = None
    schedule_minute: str | None = None
    schedule_second: str | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in JOB_TYPES:
            raise ValueError(f"unknown job Type {value!r} (use {', '.join(JOB_TYPES.values())})")
        return JOB_TYPES[value.lower()]

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        return _level_name(value)

    @field_validator("missed_run_policy")
    @classmethod
    def _missed(cls, value: str) -> str:
        word = " ".join(value.lower().split())
        if word not in ("run once", "skip"):
            raise ValueError(f'unknown Missed Run Policy {value!r} (use "run once" or skip)')
        return word

    @field_validator("replace")
    @classmethod
    def _replace(cls, value: str) -> str:
        known = {"always": "Always", "ifnewer": "IfNewer", "ifolder": "IfOlder", "never": "Never"}
        if value.lower() not in known:
            raise ValueError(f"unknown Replace {value!r} (use Always, IfNewer, IfOlder or Never)")
        return known[value.lower()]


class JobDefsResource(JobResource):
    """Same directives as Job; every field is a default for the Jobs that name it."""


_ACL_ALIASES = {normalize(f.replace("_", " ")): f for f in ACL_FIELDS} | {
    "filesetacl": "file_set_acl"
}


class ProfileResource(Resource):
    ALIASES: ClassVar[dict[str, str]] = _ACL_ALIASES
    name: str
    description: str | None = None
    command_acl: tuple[str, ...] = ()
    job_acl: tuple[str, ...] = ()
    client_acl: tuple[str, ...] = ()
    storage_acl: tuple[str, ...] = ()
    schedule_acl: tuple[str, ...] = ()
    pool_acl: tuple[str, ...] = ()
    file_set_acl: tuple[str, ...] = ()
    catalog_acl: tuple[str, ...] = ()
    where_acl: tuple[str, ...] = ()
    plugin_options_acl: tuple[str, ...] = ()


class ConsoleResource(ProfileResource, TlsFields):
    UNIMPLEMENTED: ClassVar[frozenset[str]] = TLS_UNIMPLEMENTED | normalized(
        "Use Pam Authentication"
    )
    password: SecretStr
    profile: tuple[str, ...] = ()


class DirectorConfig(BaseModel):
    """Everything the Director reads from its configuration, validated and frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    director: DirectorResource
    clients: dict[str, ClientResource]
    storages: dict[str, StorageResource]
    catalogs: dict[str, CatalogResource]
    pools: dict[str, PoolResource]
    schedules: dict[str, ScheduleResource]
    filesets: dict[str, FileSetResource]
    jobs: dict[str, JobResource]
    jobdefs: dict[str, JobDefsResource]
    messages: dict[str, Messages]
    consoles: dict[str, ConsoleResource]
    profiles: dict[str, ProfileResource]


TYPES = {
    "director": "Director",
    "client": "Client",
    "storage": "Storage",
    "catalog": "Catalog",
    "pool": "Pool",
    "schedule": "Schedule",
    "fileset": "FileSet",
    "job": "Job",
    "jobdefs": "JobDefs",
    "messages": "Messages",
    "console": "Console",
    "profile": "Profile",
}
UNIMPLEMENTED_TYPES = normalized("Counter", "User", "Autochanger")


def _resolve_jobs(source: Source) -> tuple[dict[str, JobDefsResource], dict[str, JobResource]]:
    """JobDefs inheritance: a Job's own directives win; JobDefs may name further JobDefs."""
    raw_defs = collect_named(JobDefsResource, source, "JobDefs")
    raw_jobs = collect_named(JobResource, source, "Job")

    def merged(name: str, chain: tuple[str, ...], loc: SourceLocation) -> Values:
        if name in chain:
            raise ConfigError.at(loc, f"JobDefs cycle: {' -> '.join((*chain, name))}", "JobDefs")
        if name not in raw_defs:
            known = ", ".join(sorted(raw_defs)) or "none defined"
            raise ConfigError.at(
                loc, f"refers to JobDefs {name!r}, which does not exist (known: {known})", "JobDefs"
            )
        _raw, values = raw_defs[name]
        parent = values.get("job_defs")
        base = merged(parent[0], (*chain, name), parent[1]) if parent else {}
        out = {k: v for k, v in base.items() if k not in ("name", "description")}
        out.update(values)
        return out

    defs = {}
    for name, (raw, values) in raw_defs.items():
        full = merged(name, (), raw.loc)
        full["name"] = values["name"]
        defs[name] = build(JobDefsResource, full, raw.loc, f"JobDefs {name!r}")
    jobs = {}
    for name, (raw, values) in raw_jobs.items():
        full = {}
        if "job_defs" in values:
            full = {
                k: v
                for k, v in merged(values["job_defs"][0], (), values["job_defs"][1]).items()
                if k not in ("name", "description")
            }
        full.update(values)
        jobs[name] = build(JobResource, full, raw.loc, f"Job {name!r}")
    return defs, jobs


def _check_references(config: DirectorConfig) -> None:
    director = config.director
    check_ref(director, "messages", "Messages", config.messages, "Messages")
    for client in config.clients.values():
        check_ref(client, "catalog", "Catalog", config.catalogs, "Catalog")
    for pool in config.pools.values():
        for field, kind, table in (
            ("next_pool", "Pool", config.pools),
            ("recycle_pool", "Pool", config.pools),
            ("storage", "Storage", config.storages),
            ("catalog", "Catalog", config.catalogs),
        ):
            check_ref(pool, field, kind, table, field.replace("_", " ").title())
    for console in config.consoles.values():
        check_ref(console, "profile", "Profile", config.profiles, "Profile")
    refs: tuple[tuple[str, str, Mapping[str, object]], ...] = (
        ("client", "Client", config.clients),
        ("file_set", "FileSet", config.filesets),
        ("schedule", "Schedule", config.schedules),
        ("storage", "Storage", config.storages),
        ("pool", "Pool", config.pools),
        ("full_backup_pool", "Pool", config.pools),
        ("incremental_backup_pool", "Pool", config.pools),
        ("differential_backup_pool", "Pool", config.pools),
        ("next_pool", "Pool", config.pools),
        ("messages", "Messages", config.messages),
    )
    for job in (*config.jobdefs.values(), *config.jobs.values()):
        for field, kind, refs_table in refs:
            check_ref(
                job, field, kind, refs_table, field.replace("_", " ").title().replace(" ", "")
            )
    for job in config.jobs.values():
        if job.type is None:
            raise ConfigError.at(
                job.source, f"Job {job.name!r} has no Type (set it here or in its JobDefs)", "Type"
            )
        if job.type == "Backup":
            for field, directive in (
                ("client", "Client"),
                ("file_set", "FileSet"),
                ("pool", "Pool"),
            ):
                if getattr(job, field) is None:
                    raise ConfigError.at(
                        job.source, f"Backup job {job.name!r} has no {directive}", directive
                    )
            if not job.storage:
                raise ConfigError.at(
                    job.source, f"Backup job {job.name!r} has no Storage", "Storage"
                )
        if job.type == "Restore" and job.client is None:
            raise ConfigError.at(job.source, f"Restore job {job.name!r} has no Client", "Client")
        _check_actions(config, job)


def _check_actions(config: DirectorConfig, job: JobResource) -> None:
    """A multi-action job is an Admin job whose actions name Job resources without actions."""
    if not job.action:
        if job.action_defaults:
            raise ConfigError.at(
                job.source, f"Job {job.name!r} has Action Defaults but no Action", "Action Defaults"
            )
        return
    if job.type != "Admin":
        raise ConfigError.at(
            job.source, f"Job {job.name!r} has Actions, so its Type must be Admin", "Type"
        )
    if len(job.action_defaults) > 1:
        raise ConfigError.at(
            job.source,
            f"Job {job.name!r} has more than one Action Defaults block",
            "Action Defaults",
        )
    default_job = job.action_defaults[0].job if job.action_defaults else None
    for action in job.action:
        name = action.job or default_job
        if name is None:
            raise ConfigError.at(
                action.source, f"an Action of Job {job.name!r} names no Job", "Job"
            )
        target = config.jobs.get(name)
        if target is None:
            raise ConfigError.at(
                action.source, f"Action of Job {job.name!r}: no Job resource named {name!r}", "Job"
            )
        if target.action:
            raise ConfigError.at(
                action.source,
                f"Action of Job {job.name!r}: Job {name!r} has Actions itself; actions cannot nest",
                "Job",
            )


def load_director_config(path: Path) -> Loaded[DirectorConfig]:
    source = read_source(path, TYPES, UNIMPLEMENTED_TYPES)
    directors = build_named(DirectorResource, source, "Director")
    jobdefs, jobs = _resolve_jobs(source)
    config = DirectorConfig(
        director=exactly_one(directors, "Director", path),
        clients=build_named(ClientResource, source, "Client"),
        storages=build_named(StorageResource, source, "Storage"),
        catalogs=build_named(CatalogResource, source, "Catalog"),
        pools=build_named(PoolResource, source, "Pool"),
        schedules=build_named(ScheduleResource, source, "Schedule"),
        filesets=build_named(FileSetResource, source, "FileSet"),
        jobs=jobs,
        jobdefs=jobdefs,
        messages=build_named(Messages, source, "Messages"),
        consoles=build_named(ConsoleResource, source, "Console"),
        profiles=build_named(ProfileResource, source, "Profile"),
    )
    _check_references(config)
    check_schedules(config)
    return Loaded(config, tuple(source.warnings), tuple(source.files))
