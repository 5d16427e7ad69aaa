"""Job control messages between Director, Storage Daemon and File Daemon (backup and restore)."""

from __future__ import annotations

import builtins
from typing import Annotated, ClassVar

from pydantic import AfterValidator

from protocol.fileset import FileSetSpec
from protocol.messages import Message, register
from protocol.names import check_name


def _volume(name: str) -> str:
    return check_name(name, "volume name", volume=True)


# A volume name becomes a file name in an Archive Device: legal names only, on both ends (#13).
VolumeName = Annotated[str, AfterValidator(_volume)]

# ---- Director -> Storage Daemon -------------------------------------------------------------


class VolumeAssignment(Message):
    """The volume a job should append to, chosen by the Director from the catalog."""

    TYPE: ClassVar[str] = "volume"
    volume_name: VolumeName
    media_id: int
    pool_name: str
    pool_type: str
    media_type: str
    max_bytes: int = 0  # 0 = unlimited
    max_jobs: int = 0
    needs_label: bool = False


class BootstrapSpec(Message):
    """Which records of one session on one volume a read session must send."""

    TYPE: ClassVar[str] = "bsr"
    volume_name: VolumeName
    session_id: int
    session_time: int
    file_indexes: tuple[tuple[int, int], ...]  # inclusive ranges
    start_block: int = 0
    start_addr: int = 0
    job_id: int = 0


class SdJobSetup(Message):
    """Create a job on the Storage Daemon and reserve a device (append or read)."""

    TYPE: ClassVar[str] = "sd_job"
    job_id: int
    job: str
    job_name: str
    client: str
    fileset: str
    job_type: str
    level: str
    device: str
    media_type: str
    append: bool
    volume: VolumeAssignment | None = None
    # Every device of the Storage resource, in order: the SD reserves the first that can take the
    # job, and the job waits (SdJobWaiting) while none can. Empty: `device` alone.
    devices: tuple[str, ...] = ()
    bootstrap: tuple[BootstrapSpec, ...] = ()
    # Copy/migrate: a local copy reads `bootstrap` from `read_device` on this same SD; a writing SD
    # in `listen` mode waits for the reading SD's data session instead of a File Daemon's.
    read_device: str | None = None
    read_media_type: str | None = None
    listen: bool = False


class SdReplicate(Message):
    """Director → reading SD: stream the bootstrap's records to the writing SD at this address."""

    TYPE: ClassVar[str] = "sd_replicate"
    address: str
    port: int
    job: str  # the writing SD's job name (it admits the session with `key`)
    key: str
    tls: bool = True
    # The names in the writing SD's certificate as the Director verified it: the reading SD
    # refuses a writing SD that presents another certificate (#13). Empty: not checked.
    peer_names: tuple[str, ...] = ()
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset({"peer_names"})


class SdJobAccepted(Message):
    """`3000 OK Job`: the session ids and the one-time key the FD must present."""

    TYPE: ClassVar[str] = "sd_job_ok"
    code: int
    session_id: int
    session_time: int
    key: str
    device: str


class SdJobWaiting(Message):
    """`3602 Waiting`: no device can take the job yet; the SD reserves one as soon as one frees up
    and then answers SdJobAccepted. Sent again when the reason changes, and every WAIT_REPORT
    seconds while nothing changes, so the Director knows the SD is alive."""

    TYPE: ClassVar[str] = "sd_job_wait"
    code: int
    reason: str  # machine-readable: waiting_for_device
    resource: str  # device=NAME
    text: str


class SdRun(Message):
    """Start the job: wait for the File Daemon's data connection (a listening job: the reading
    Storage Daemon's, whose certificate must carry one of `peer_names`, the names the Director
    verified on its own connection to that SD; empty: not checked)."""

    TYPE: ClassVar[str] = "sd_run"
    peer_names: tuple[str, ...] = ()
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset({"peer_names"})


class CancelJob(Message):
    """Cancel a job on a File or Storage Daemon."""

    TYPE: ClassVar[str] = "cancel"
    job: str


# ---- Storage Daemon -> Director (during a job) ------------------------------------------------


class JobStatusChange(Message):
    """A daemon-side status change of a job (`F` waiting for FD, `R` running, ...)."""

    TYPE: ClassVar[str] = "job_status"
    job: str
    status: str


class VolumeRequest(Message):
    """The SD needs the next appendable volume (the current one is full or unusable)."""

    TYPE: ClassVar[str] = "volume_request"
    job: str
    full_volume: VolumeName | None = None
    reason: str = ""


class VolumeUpdate(Message):
    """Volume statistics and status after a job wrote to it."""

    TYPE: ClassVar[str] = "volume_update"
    job: str
    volume_name: VolumeName
    bytes: int
    blocks: int
    status: str  # Append, Full, Used, Error
    jobs_written: int = 1
    files_written: int = 0  # file attributes this job wrote to the volume (VolFiles adds them up)
    reason: str = ""  # why a volume became Full or Error


class JobMediaReport(Message):
    """Where a job's file-index range lies on one volume (a JobMedia row)."""

    TYPE: ClassVar[str] = "jobmedia"
    job: str
    volume_name: VolumeName
    media_id: int
    first_index: int
    last_index: int
    start_block: int
    end_block: int
    start_addr: int
    end_addr: int
    bytes: int


class AttributeBatch(Message):
    """Attribute, digest and deleted records for the catalog: (file_index, stream, payload)."""

    TYPE: ClassVar[str] = "attrs"
    job: str
    records: tuple[tuple[int, int, bytes], ...]


class JobMessage(Message):
    """A job message for the operator (routed by the Messages resource)."""

    TYPE: ClassVar[str] = "jmsg"
    job: str
    level: str  # info, warning, error, fatal
    text: str
    time: float


class JobProgress(Message):
    """Live counters of a running job, sent about once a second."""

    TYPE: ClassVar[str] = "progress"
    job: str
    files: int
    bytes: int
    current_file: builtins.bytes = b""


class JobEnd(Message):
    """`2800`/`3099` End Job: the daemon's final status and counters."""

    TYPE: ClassVar[str] = "job_end"
    code: int
    job: str
    status: str
    files: int
    bytes: int
    read_bytes: int = 0
    errors: int = 0
    warnings: int = 0
    text: str = ""


class Ok(Message):
    """A plain positive acknowledgement with a code (`2000 OK ...`, `3000 OK ...`)."""

    TYPE: ClassVar[str] = "ok"
    code: int
    text: str = "OK"


# ---- Director -> File Daemon ---------------------------------------------------------------


class FdJobSetup(Message):
    """Create a job on the File Daemon."""

    TYPE: ClassVar[str] = "fd_job"
    job_id: int
    job: str
    job_type: str
    level: str
    since_ns: int | None = None
    fileset: FileSetSpec | None = None  # the one FileSet model (config, Director and FD use it)
    accurate: bool = False


class AccurateBatch(Message):
    """Part of the accurate list: (path, mtime_ns, ctime_ns, size, mode) of the previous state."""

    TYPE: ClassVar[str] = "accurate"
    entries: tuple[tuple[bytes, int, int, int, int], ...]


class FdStorage(Message):
    """Connect to this Storage Daemon for the job's data, with the job's one-time key."""

    TYPE: ClassVar[str] = "fd_storage"
    address: str
    port: int
    key: str
    tls: bool = True
    # The Storage resource's name: its certificate must carry it (or a name in TLS Allowed CN).
    name: str = ""
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset({"name"})


class FdBackup(Message):
    """Start reading files and streaming them to the Storage Daemon."""

    TYPE: ClassVar[str] = "fd_backup"


class FdRestore(Message):
    """Start receiving records from the Storage Daemon and writing files."""

    TYPE: ClassVar[str] = "fd_restore"
    where: bytes
    replace: str = "always"
    strip_prefix: bytes | None = None
    add_prefix: bytes | None = None
    add_suffix: bytes | None = None
    regex_where: str | None = None
    # Hardlink carriers the selection did not include: their data goes to the next selected name.
    hidden_indexes: tuple[tuple[int, int], ...] = ()  # (job id, file index)
    # Privileged content (setuid/setgid bits, device nodes, security.*/trusted.* xattrs) is restored
    # verbatim only to the client that was backed up at where=/, or when the restore asks for it.
    # An empty `where` means the File Daemon's default: <Working Directory>/restores, mode 0700.
    privileged_content: bool = False
    same_client: bool = True
    OPTIONAL_ON_WIRE: ClassVar[frozenset[str]] = frozenset({"privileged_content", "same_client"})


class FdEstimate(Message):
    """Walk the fileset without reading data: count files and bytes (optionally list them)."""

    TYPE: ClassVar[str] = "fd_estimate"
    listing: bool = False


class EstimateResult(Message):
    TYPE: ClassVar[str] = "estimate"
    code: int
    files: int
    bytes: int
    listing: tuple[builtins.bytes, ...] = ()


# ---- File Daemon <-> Storage Daemon (data session, authenticated with the job key) -----------


class AppendOpen(Message):
    """FD: I will now send record batches for this job; EOD ends them."""

    TYPE: ClassVar[str] = "append_open"


class AppendDone(Message):
    """SD: every record up to EOD is on the volume (flushed and synced)."""

    TYPE: ClassVar[str] = "append_done"
    code: int
    files: int
    bytes: int


class SdLabel(Message):
    """Director → SD: write a volume label on a device (the console's `label` command)."""

    TYPE: ClassVar[str] = "sd_label"
    volume_name: VolumeName
    pool_name: str
    pool_type: str
    media_type: str
    device: str


class RunScriptCommand(Message):
    """Director → FD: run a job's client-side script (RunScript with Runs On Client = yes)."""

    TYPE: ClassVar[str] = "fd_runscript"
    command: str
    timeout: float = 3600.0


class ScriptResult(Message):
    TYPE: ClassVar[str] = "script_result"
    code: int
    exit_status: int
    output: str


class ReadOpen(Message):
    """FD: send me the records the bootstrap selects; EOD ends them."""

    TYPE: ClassVar[str] = "read_open"


for _cls in (
    VolumeAssignment,
    BootstrapSpec,
    SdJobSetup,
    SdJobAccepted,
    SdJobWaiting,
    SdRun,
    CancelJob,
    JobStatusChange,
    VolumeRequest,
    VolumeUpdate,
    JobMediaReport,
    AttributeBatch,
    JobMessage,
    JobProgress,
    JobEnd,
    Ok,
    FdJobSetup,
    AccurateBatch,
    FdStorage,
    FdBackup,
    FdRestore,
    FdEstimate,
    EstimateResult,
    AppendOpen,
    AppendDone,
    ReadOpen,
    SdLabel,
    RunScriptCommand,
    ScriptResult,
    SdReplicate,
):
    register(_cls)
