"""Golden byte vectors for every registered message type: the wire format, frozen.

Each registered type has one sample with realistic, non-default values and the exact bytes
`encode_message` gives for it. A changed vector is a protocol change and is reviewed as one (bump
`PROTOCOL_VERSION` and say so in docs/protocol.md); a new message type needs a sample and a vector
here before the registry test passes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

import pytest
from pydantic import BaseModel

import protocol
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.jobs import (
    AccurateBatch,
    AppendDone,
    AppendOpen,
    AttributeBatch,
    BootstrapSpec,
    CancelJob,
    EstimateResult,
    FdBackup,
    FdEstimate,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobEnd,
    JobMediaReport,
    JobMessage,
    JobProgress,
    JobStatusChange,
    Ok,
    ReadOpen,
    RunScriptCommand,
    ScriptResult,
    SdJobAccepted,
    SdJobSetup,
    SdJobWaiting,
    SdLabel,
    SdReplicate,
    SdRun,
    VolumeAssignment,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import (
    MESSAGE_TYPES,
    AuthResult,
    Challenge,
    ChallengeResponse,
    Code,
    ConnectionCounts,
    ConsoleCommand,
    ConsoleReply,
    DaemonStatus,
    DeviceStatus,
    ErrorReply,
    Hello,
    Message,
    RunningJob,
    StatusRequest,
    decode_message,
    encode_message,
)


def registered_types() -> dict[str, type[Message]]:
    """Every message type on the wire: import each protocol module (each registers its own), then
    copy the registry. New modules under protocol/ are picked up without editing this test."""
    for module in pkgutil.iter_modules(protocol.__path__, prefix="protocol."):
        importlib.import_module(module.name)
    return dict(MESSAGE_TYPES)


_PATH = b"/home/ren\xe9e/caf\xe9 menu.txt"  # Latin-1 bytes: not UTF-8, must travel as bin
_ANOTHER = b"/srv/data/\xff\xfe raw\nname"

_RUNNING = RunningJob(
    job_id=4711,
    job="BackupCatalog.2026-03-14_23.10.00_42",
    status="R",
    files=1234,
    bytes=987_654_321,
)
_COUNTS = ConnectionCounts(active=3, total=128, refused=2)
_DEVICE = DeviceStatus(
    name="FileStorage-2",
    media_type="File",
    mode="append",
    max_jobs=4,
    reserved_by=("BackupCatalog.2026-03-14_23.10.00_42",),
    volumes=("Full-0007", "Full-0008"),
    waiting=(
        "Restore.2026-03-14_23.11.00_43 (waiting_for_device device=FileStorage-2): "
        "device 'FileStorage-2' is appending for BackupCatalog.2026-03-14_23.10.00_42",
    ),
)
_VOLUME = VolumeAssignment(
    volume_name="Full-0007",
    media_id=7,
    pool_name="Full",
    pool_type="Backup",
    media_type="File",
    max_bytes=53_687_091_200,
    max_jobs=10,
    needs_label=True,
)
_BSR = BootstrapSpec(
    volume_name="Full-0003",
    session_id=17,
    session_time=1_773_526_200,
    file_indexes=((1, 1), (5, 120)),
    start_block=12,
    start_addr=12_582_936,
    job_id=39,
)
_FILESET = FileSetSpec(
    name="LinuxAll",
    include=(
        IncludeSpec(
            files=(b"/etc", b"/home/ren\xe9e"),
            options=(OptionsSpec(signature="SHA256", compression="zstd", wild=("*.o",)),),
            exclude_dir_containing=(".nobackup",),
        ),
    ),
    exclude=(b"/proc",),
).model_dump()

# One sample of every registered type, with every field that has a default set to something else
# (so optional-on-wire fields are on the wire too).
SAMPLES: tuple[Message, ...] = (
    # protocol.messages
    Hello(role="storage", name="sd1-fd", version="0.1.0", protocol=7),
    Challenge(nonce=bytes(range(32))),
    ChallengeResponse(digest=bytes(range(0xE0, 0x100))),
    AuthResult(code=Code.AUTH_FAILED, text="Authorization failed"),
    ErrorReply(
        code=Code.VERSION_MISMATCH,
        text="protocol version 7 is not supported (this daemon speaks 1)",
    ),
    StatusRequest(),
    _RUNNING,
    _DEVICE,
    _COUNTS,
    DaemonStatus(
        code=Code.SD_OK,
        role="storage",
        name="sd1",
        version="0.1.0",
        pid=31337,
        started_at=1_773_526_200.5,
        uptime=3600.25,
        addresses=("0.0.0.0:9103", "[::]:9103"),
        tls=True,
        running_jobs=(_RUNNING,),
        connections=_COUNTS,
        devices=(_DEVICE,),
    ),
    ConsoleCommand(line="restore client=web1-fd select current all done"),
    ConsoleReply(
        code=Code.DIR_OK,
        ok=True,
        text="2 files",
        data={"files": (_PATH, "b"), "n": 2, "x": None},
        prompt="Select (1-3): ",
        more=True,
        rows="files",
    ),
    # protocol.jobs: Director -> Storage Daemon
    _VOLUME,
    _BSR,
    SdJobSetup(
        job_id=42,
        job="CopyFull.2026-03-14_23.10.00_42",
        job_name="CopyFull",
        client="web1-fd",
        fileset="LinuxAll",
        job_type="c",
        level="F",
        device="FileStorage-2",
        media_type="File",
        append=True,
        volume=_VOLUME,
        devices=("FileStorage-1", "FileStorage-2"),
        bootstrap=(_BSR,),
        read_device="FileStorage-1",
        read_media_type="File",
        listen=True,
    ),
    SdReplicate(
        address="sd2.example.net",
        port=9103,
        job="CopyFull.2026-03-14_23.10.01_44",
        key="k3y-0123",
        tls=False,
        peer_names=("File2", "sd2.example.net"),
    ),
    SdJobAccepted(
        code=Code.SD_OK,
        session_id=17,
        session_time=1_773_526_200,
        key="Zm9vYmFy",
        device="FileStorage-2",
    ),
    SdJobWaiting(
        code=Code.SD_WAITING,
        reason="waiting_for_device",
        resource="device=FileStorage-2",
        text="device 'FileStorage-2' is appending for BackupCatalog.2026-03-14_23.10.00_42",
    ),
    SdRun(peer_names=("sd1.example.net",)),
    CancelJob(job="BackupCatalog.2026-03-14_23.10.00_42"),
    # protocol.jobs: Storage Daemon -> Director
    JobStatusChange(job="BackupCatalog.2026-03-14_23.10.00_42", status="F"),
    VolumeRequest(
        job="BackupCatalog.2026-03-14_23.10.00_42",
        full_volume="Full-0007",
        reason="reached Maximum Volume Bytes (53687091200)",
    ),
    VolumeUpdate(
        job="BackupCatalog.2026-03-14_23.10.00_42",
        volume_name="Full-0007",
        bytes=53_687_092_000,
        blocks=51_201,
        status="Full",
        jobs_written=2,
        files_written=1234,
        reason="reached Maximum Volume Bytes (53687091200)",
    ),
    JobMediaReport(
        job="BackupCatalog.2026-03-14_23.10.00_42",
        volume_name="Full-0007",
        media_id=7,
        first_index=1,
        last_index=1234,
        start_block=3,
        end_block=51_200,
        start_addr=2_097_224,
        end_addr=53_686_042_648,
        bytes=53_683_944_000,
    ),
    AttributeBatch(
        job="BackupCatalog.2026-03-14_23.10.00_42",
        records=(
            (1, 1, b"\x93\x01" + _PATH),
            (1, 3, b"\x92\xa6SHA256\xc4\x02\xab\xcd"),
            (2, 10, _ANOTHER),
        ),
    ),
    JobMessage(
        job="BackupCatalog.2026-03-14_23.10.00_42",
        level="warning",
        text="/home/ren\ufffde/caf\ufffd menu.txt: file changed during backup",
        time=1_773_526_260.125,
    ),
    JobProgress(
        job="BackupCatalog.2026-03-14_23.10.00_42", files=17, bytes=1_048_576, current_file=_PATH
    ),
    JobEnd(
        code=Code.SD_JOB_END,
        job="BackupCatalog.2026-03-14_23.10.00_42",
        status="W",
        files=1234,
        bytes=987_654_321,
        read_bytes=1_000_000_000,
        errors=1,
        warnings=3,
        text="1 file vanished",
    ),
    Ok(code=Code.FD_OK, text="OK Job started"),
    # protocol.jobs: Director -> File Daemon
    FdJobSetup(
        job_id=42,
        job="BackupCatalog.2026-03-14_23.10.00_42",
        job_type="B",
        level="I",
        since_ns=1_773_439_800_123_456_789,
        fileset=_FILESET,
        accurate=True,
    ),
    AccurateBatch(
        entries=(
            (_PATH, 1_773_439_800_123_456_789, 1_773_439_800_223_456_789, 4096, 0o100644),
            (b"/etc", 1_700_000_000_000_000_000, 1_700_000_000_000_000_001, 0, 0o40755),
        )
    ),
    FdStorage(address="sd1.example.net", port=9103, key="Zm9vYmFy", tls=False, name="sd1-sd"),
    FdBackup(),
    FdRestore(
        where=b"/tmp/bareos-restores/\xff",
        replace="ifnewer",
        strip_prefix=b"/home/ren\xe9e",
        add_prefix=b"/restored",
        add_suffix=b".orig",
        regex_where="!/home/!/restore/home/!",
        hidden_indexes=((39, 7), (40, 2)),
        privileged_content=True,
        same_client=False,
    ),
    FdEstimate(listing=True),
    EstimateResult(code=Code.FD_OK, files=2, bytes=4096, listing=(_PATH, _ANOTHER)),
    # protocol.jobs: File Daemon <-> Storage Daemon
    AppendOpen(),
    AppendDone(code=Code.SD_OK, files=1234, bytes=987_654_321),
    SdLabel(
        volume_name="Full-0009",
        pool_name="Full",
        pool_type="Backup",
        media_type="File",
        device="FileStorage-1",
    ),
    RunScriptCommand(command="/usr/local/bin/dump-db --all", timeout=120.5),
    ScriptResult(
        code=Code.FD_OK, exit_status=3, output="pg_dump: warning: table \u00e9t\u00e9 skipped\n"
    ),
    ReadOpen(),
)

# The bytes every daemon of this protocol version puts on the wire, one per message tag.
GOLDEN: dict[str, str] = {
    "hello": (
        "85a174a568656c6c6fa4726f6c65a773746f72616765a46e616d65a67364312d6664a776657273696f6ea5302e312e30"
        "a870726f746f636f6c07"
    ),
    "challenge": (
        "82a174a96368616c6c656e6765a56e6f6e6365c420000102030405060708090a0b0c0d0e0f101112131415161718191a"
        "1b1c1d1e1f"
    ),
    "response": (
        "82a174a8726573706f6e7365a6646967657374c420e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fa"
        "fbfcfdfeff"
    ),
    "auth": (
        "83a174a461757468a4636f6465cd07cfa474657874b4417574686f72697a6174696f6e206661696c6564"
    ),
    "error": (
        "83a174a56572726f72a4636f6465cd07cea474657874d93a70726f746f636f6c2076657273696f6e2037206973206e6f"
        "7420737570706f72746564202874686973206461656d6f6e20737065616b73203129"
    ),
    "status": ("81a174a6737461747573"),
    "running_job": (
        "86a174ab72756e6e696e675f6a6f62a66a6f625f6964cd1267a36a6f62d9244261636b7570436174616c6f672e323032"
        "362d30332d31345f32332e31302e30305f3432a6737461747573a152a566696c6573cd04d2a56279746573ce3ade68b1"
    ),
    "device_status": (
        "88a174ad6465766963655f737461747573a46e616d65ad46696c6553746f726167652d32aa6d656469615f74797065a4"
        "46696c65a46d6f6465a6617070656e64a86d61785f6a6f627304ab72657365727665645f627991d9244261636b757043"
        "6174616c6f672e323032362d30332d31345f32332e31302e30305f3432a7766f6c756d657392a946756c6c2d30303037"
        "a946756c6c2d30303038a777616974696e6791d996526573746f72652e323032362d30332d31345f32332e31312e3030"
        "5f3433202877616974696e675f666f725f646576696365206465766963653d46696c6553746f726167652d32293a2064"
        "6576696365202746696c6553746f726167652d322720697320617070656e64696e6720666f72204261636b7570436174"
        "616c6f672e323032362d30332d31345f32332e31302e30305f3432"
    ),
    "connections": (
        "84a174ab636f6e6e656374696f6e73a661637469766503a5746f74616ccc80a77265667573656402"
    ),
    "daemon_status": (
        "8da174ad6461656d6f6e5f737461747573a4636f6465cd0bb8a4726f6c65a773746f72616765a46e616d65a3736431a7"
        "76657273696f6ea5302e312e30a3706964cd7a69aa737461727465645f6174cb41da6d772e200000a6757074696d65cb"
        "40ac208000000000a961646472657373657392ac302e302e302e303a39313033a95b3a3a5d3a39313033a3746c73c3ac"
        "72756e6e696e675f6a6f62739186a174ab72756e6e696e675f6a6f62a66a6f625f6964cd1267a36a6f62d9244261636b"
        "7570436174616c6f672e323032362d30332d31345f32332e31302e30305f3432a6737461747573a152a566696c6573cd"
        "04d2a56279746573ce3ade68b1ab636f6e6e656374696f6e7384a174ab636f6e6e656374696f6e73a661637469766503"
        "a5746f74616ccc80a77265667573656402a7646576696365739188a174ad6465766963655f737461747573a46e616d65"
        "ad46696c6553746f726167652d32aa6d656469615f74797065a446696c65a46d6f6465a6617070656e64a86d61785f6a"
        "6f627304ab72657365727665645f627991d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31"
        "302e30305f3432a7766f6c756d657392a946756c6c2d30303037a946756c6c2d30303038a777616974696e6791d99652"
        "6573746f72652e323032362d30332d31345f32332e31312e30305f3433202877616974696e675f666f725f6465766963"
        "65206465766963653d46696c6553746f726167652d32293a20646576696365202746696c6553746f726167652d322720"
        "697320617070656e64696e6720666f72204261636b7570436174616c6f672e323032362d30332d31345f32332e31302e"
        "30305f3432"
    ),
    "command": (
        "82a174a7636f6d6d616e64a46c696e65d92e726573746f726520636c69656e743d776562312d66642073656c65637420"
        "63757272656e7420616c6c20646f6e65"
    ),
    "reply": (
        "88a174a57265706c79a4636f6465cd03e8a26f6bc3a474657874a7322066696c6573a46461746183a566696c657392c4"
        "192f686f6d652f72656ee9652f636166e9206d656e752e747874a162a16e02a178c0a670726f6d7074ae53656c656374"
        "2028312d33293a20a46d6f7265c3a4726f7773a566696c6573"
    ),
    "volume": (
        "89a174a6766f6c756d65ab766f6c756d655f6e616d65a946756c6c2d30303037a86d656469615f696407a9706f6f6c5f"
        "6e616d65a446756c6ca9706f6f6c5f74797065a64261636b7570aa6d656469615f74797065a446696c65a96d61785f62"
        "79746573cf0000000c80000000a86d61785f6a6f62730aab6e656564735f6c6162656cc3"
    ),
    "bsr": (
        "88a174a3627372ab766f6c756d655f6e616d65a946756c6c2d30303033aa73657373696f6e5f696411ac73657373696f"
        "6e5f74696d65ce69b5dcb8ac66696c655f696e646578657392920101920578ab73746172745f626c6f636b0caa737461"
        "72745f61646472ce00c00018a66a6f625f696427"
    ),
    "sd_job": (
        "de0011a174a673645f6a6f62a66a6f625f69642aa36a6f62bf436f707946756c6c2e323032362d30332d31345f32332e"
        "31302e30305f3432a86a6f625f6e616d65a8436f707946756c6ca6636c69656e74a7776562312d6664a766696c657365"
        "74a84c696e7578416c6ca86a6f625f74797065a163a56c6576656ca146a6646576696365ad46696c6553746f72616765"
        "2d32aa6d656469615f74797065a446696c65a6617070656e64c3a6766f6c756d6589a174a6766f6c756d65ab766f6c75"
        "6d655f6e616d65a946756c6c2d30303037a86d656469615f696407a9706f6f6c5f6e616d65a446756c6ca9706f6f6c5f"
        "74797065a64261636b7570aa6d656469615f74797065a446696c65a96d61785f6279746573cf0000000c80000000a86d"
        "61785f6a6f62730aab6e656564735f6c6162656cc3a76465766963657392ad46696c6553746f726167652d31ad46696c"
        "6553746f726167652d32a9626f6f7473747261709188a174a3627372ab766f6c756d655f6e616d65a946756c6c2d3030"
        "3033aa73657373696f6e5f696411ac73657373696f6e5f74696d65ce69b5dcb8ac66696c655f696e6465786573929201"
        "01920578ab73746172745f626c6f636b0caa73746172745f61646472ce00c00018a66a6f625f696427ab726561645f64"
        "6576696365ad46696c6553746f726167652d31af726561645f6d656469615f74797065a446696c65a66c697374656ec3"
    ),
    "sd_replicate": (
        "87a174ac73645f7265706c6963617465a761646472657373af7364322e6578616d706c652e6e6574a4706f7274cd238f"
        "a36a6f62bf436f707946756c6c2e323032362d30332d31345f32332e31302e30315f3434a36b6579a86b33792d303132"
        "33a3746c73c2aa706565725f6e616d657392a546696c6532af7364322e6578616d706c652e6e6574"
    ),
    "sd_job_ok": (
        "86a174a973645f6a6f625f6f6ba4636f6465cd0bb8aa73657373696f6e5f696411ac73657373696f6e5f74696d65ce69"
        "b5dcb8a36b6579a85a6d3976596d4679a6646576696365ad46696c6553746f726167652d32"
    ),
    "sd_job_wait": (
        "85a174ab73645f6a6f625f77616974a4636f6465cd0e12a6726561736f6eb277616974696e675f666f725f6465766963"
        "65a87265736f75726365b46465766963653d46696c6553746f726167652d32a474657874d94c64657669636520274669"
        "6c6553746f726167652d322720697320617070656e64696e6720666f72204261636b7570436174616c6f672e32303236"
        "2d30332d31345f32332e31302e30305f3432"
    ),
    "sd_run": ("82a174a673645f72756eaa706565725f6e616d657391af7364312e6578616d706c652e6e6574"),
    "cancel": (
        "82a174a663616e63656ca36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31302e30"
        "305f3432"
    ),
    "job_status": (
        "83a174aa6a6f625f737461747573a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e"
        "31302e30305f3432a6737461747573a146"
    ),
    "volume_request": (
        "84a174ae766f6c756d655f72657175657374a36a6f62d9244261636b7570436174616c6f672e323032362d30332d3134"
        "5f32332e31302e30305f3432ab66756c6c5f766f6c756d65a946756c6c2d30303037a6726561736f6ed92a7265616368"
        "6564204d6178696d756d20566f6c756d652042797465732028353336383730393132303029"
    ),
    "volume_update": (
        "89a174ad766f6c756d655f757064617465a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f"
        "32332e31302e30305f3432ab766f6c756d655f6e616d65a946756c6c2d30303037a56279746573cf0000000c80000320"
        "a6626c6f636b73cdc801a6737461747573a446756c6cac6a6f62735f7772697474656e02ad66696c65735f7772697474"
        "656ecd04d2a6726561736f6ed92a72656163686564204d6178696d756d20566f6c756d65204279746573202835333638"
        "3730393132303029"
    ),
    "jobmedia": (
        "8ba174a86a6f626d65646961a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e3130"
        "2e30305f3432ab766f6c756d655f6e616d65a946756c6c2d30303037a86d656469615f696407ab66697273745f696e64"
        "657801aa6c6173745f696e646578cd04d2ab73746172745f626c6f636b03a9656e645f626c6f636bcdc800aa73746172"
        "745f61646472ce00200048a8656e645f61646472cf0000000c7ff00018a56279746573cf0000000c7fcffa40"
    ),
    "attrs": (
        "83a174a56174747273a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31302e3030"
        "5f3432a77265636f72647393930101c41b93012f686f6d652f72656ee9652f636166e9206d656e752e747874930103c4"
        "0c92a6534841323536c402abcd93020ac4152f7372762f646174612ffffe207261770a6e616d65"
    ),
    "jmsg": (
        "85a174a46a6d7367a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31302e30305f"
        "3432a56c6576656ca77761726e696e67a474657874d9392f686f6d652f72656eefbfbd652f636166efbfbd206d656e75"
        "2e7478743a2066696c65206368616e67656420647572696e67206261636b7570a474696d65cb41da6d773d080000"
    ),
    "progress": (
        "85a174a870726f6772657373a36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e3130"
        "2e30305f3432a566696c657311a56279746573ce00100000ac63757272656e745f66696c65c4192f686f6d652f72656e"
        "e9652f636166e9206d656e752e747874"
    ),
    "job_end": (
        "8aa174a76a6f625f656e64a4636f6465cd0c1ba36a6f62d9244261636b7570436174616c6f672e323032362d30332d31"
        "345f32332e31302e30305f3432a6737461747573a157a566696c6573cd04d2a56279746573ce3ade68b1aa726561645f"
        "6279746573ce3b9aca00a66572726f727301a87761726e696e677303a474657874af312066696c652076616e69736865"
        "64"
    ),
    "ok": ("83a174a26f6ba4636f6465cd07d0a474657874ae4f4b204a6f622073746172746564"),
    "fd_job": (
        "88a174a666645f6a6f62a66a6f625f69642aa36a6f62d9244261636b7570436174616c6f672e323032362d30332d3134"
        "5f32332e31302e30305f3432a86a6f625f74797065a142a56c6576656ca149a873696e63655f6e73cf189c861a24e5fd"
        "15a766696c6573657483a46e616d65a84c696e7578416c6ca7696e636c7564659183a566696c657392c4042f657463c4"
        "0b2f686f6d652f72656ee965a76f7074696f6e7391de0013a97369676e6174757265a6534841323536ab636f6d707265"
        "7373696f6ea47a737464b1636f6d7072657373696f6e5f6c6576656cc0a66f6e655f6673c3a6737061727365c2aa6861"
        "72645f6c696e6b73c3ad78617474725f737570706f7274c3ab61636c5f737570706f7274c3a86e6f5f6174696d65c2aa"
        "6d74696d655f6f6e6c79c2a772656375727365c3a76578636c756465c2ab69676e6f72655f63617365c2a477696c6491"
        "a32a2e6fa877696c645f64697290a977696c645f66696c6590a5726567657890a972656765785f64697290aa72656765"
        "785f66696c6590b66578636c7564655f6469725f636f6e7461696e696e6791a92e6e6f6261636b7570a76578636c7564"
        "6591c4052f70726f63a86163637572617465c3"
    ),
    "accurate": (
        "82a174a86163637572617465a7656e74726965739295c4192f686f6d652f72656ee9652f636166e9206d656e752e7478"
        "74cf189c861a24e5fd15cf189c861a2adbde15cd1000cd81a495c4042f657463cf17979cfe362a0000cf17979cfe362a"
        "000100cd41ed"
    ),
    "fd_storage": (
        "86a174aa66645f73746f72616765a761646472657373af7364312e6578616d706c652e6e6574a4706f7274cd238fa36b"
        "6579a85a6d3976596d4679a3746c73c2a46e616d65a67364312d7364"
    ),
    "fd_backup": ("81a174a966645f6261636b7570"),
    "fd_restore": (
        "8aa174aa66645f726573746f7265a57768657265c4162f746d702f626172656f732d726573746f7265732fffa7726570"
        "6c616365a769666e65776572ac73747269705f707265666978c40b2f686f6d652f72656ee965aa6164645f7072656669"
        "78c4092f726573746f726564aa6164645f737566666978c4052e6f726967ab72656765785f7768657265b7212f686f6d"
        "652f212f726573746f72652f686f6d652f21ae68696464656e5f696e646578657392922707922802b270726976696c65"
        "6765645f636f6e74656e74c3ab73616d655f636c69656e74c2"
    ),
    "fd_estimate": ("82a174ab66645f657374696d617465a76c697374696e67c3"),
    "estimate": (
        "85a174a8657374696d617465a4636f6465cd07d0a566696c657302a56279746573cd1000a76c697374696e6792c4192f"
        "686f6d652f72656ee9652f636166e9206d656e752e747874c4152f7372762f646174612ffffe207261770a6e616d65"
    ),
    "append_open": ("81a174ab617070656e645f6f70656e"),
    "append_done": (
        "84a174ab617070656e645f646f6e65a4636f6465cd0bb8a566696c6573cd04d2a56279746573ce3ade68b1"
    ),
    "sd_label": (
        "86a174a873645f6c6162656cab766f6c756d655f6e616d65a946756c6c2d30303039a9706f6f6c5f6e616d65a446756c"
        "6ca9706f6f6c5f74797065a64261636b7570aa6d656469615f74797065a446696c65a6646576696365ad46696c655374"
        "6f726167652d31"
    ),
    "fd_runscript": (
        "83a174ac66645f72756e736372697074a7636f6d6d616e64bc2f7573722f6c6f63616c2f62696e2f64756d702d646220"
        "2d2d616c6ca774696d656f7574cb405e200000000000"
    ),
    "script_result": (
        "84a174ad7363726970745f726573756c74a4636f6465cd07d0ab657869745f73746174757303a66f7574707574d92670"
        "675f64756d703a207761726e696e673a207461626c6520c3a974c3a920736b69707065640a"
    ),
    "read_open": ("81a174a9726561645f6f70656e"),
}

# Optional-on-wire fields (added after their message was frozen) stay off the wire at their
# default, so these bytes are what older peers sent and still accept.
DEFAULTS_OFF_THE_WIRE: tuple[tuple[Message, str], ...] = (
    (SdRun(), "81a174a673645f72756e"),
    (
        SdReplicate(
            address="sd2.example.net",
            port=9103,
            job="CopyFull.2026-03-14_23.10.01_44",
            key="k3y-0123",
            tls=False,
        ),
        (
            "86a174ac73645f7265706c6963617465a761646472657373af7364322e6578616d706c652e6e6574a4706f7274cd238f"
            "a36a6f62bf436f707946756c6c2e323032362d30332d31345f32332e31302e30315f3434a36b6579a86b33792d303132"
            "33a3746c73c2"
        ),
    ),
    (
        DaemonStatus(
            code=Code.FD_OK,
            role="client",
            name="web1-fd",
            version="0.1.0",
            pid=812,
            started_at=1_773_526_200.5,
            uptime=60.0,
            addresses=("0.0.0.0:9102",),
            tls=True,
            running_jobs=(),
            connections=_COUNTS,
        ),
        (
            "8ca174ad6461656d6f6e5f737461747573a4636f6465cd07d0a4726f6c65a6636c69656e74a46e616d65a7776562312d"
            "6664a776657273696f6ea5302e312e30a3706964cd032caa737461727465645f6174cb41da6d772e200000a675707469"
            "6d65cb404e000000000000a961646472657373657391ac302e302e302e303a39313032a3746c73c3ac72756e6e696e67"
            "5f6a6f627390ab636f6e6e656374696f6e7384a174ab636f6e6e656374696f6e73a661637469766503a5746f74616ccc"
            "80a77265667573656402"
        ),
    ),
    (
        ConsoleReply(
            code=Code.COMMAND_FAILED, ok=False, text="no such job", data=None, prompt=None
        ),
        (
            "86a174a57265706c79a4636f6465cd076ca26f6bc2a474657874ab6e6f2073756368206a6f62a464617461c0a670726f"
            "6d7074c0"
        ),
    ),
    (
        FdStorage(address="sd1.example.net", port=9103, key="Zm9vYmFy", tls=False),
        (
            "85a174aa66645f73746f72616765a761646472657373af7364312e6578616d706c652e6e6574a4706f7274cd238fa36b"
            "6579a85a6d3976596d4679a3746c73c2"
        ),
    ),
    (
        FdRestore(
            where=b"",
            replace="never",
            strip_prefix=None,
            add_prefix=None,
            add_suffix=None,
            regex_where=None,
        ),
        (
            "88a174aa66645f726573746f7265a57768657265c400a77265706c616365a56e65766572ac73747269705f7072656669"
            "78c0aa6164645f707265666978c0aa6164645f737566666978c0ab72656765785f7768657265c0ae68696464656e5f69"
            "6e646578657390"
        ),
    ),
)


def coverage_problems(
    registry: Mapping[str, type[Message]], samples: tuple[Message, ...], golden: Mapping[str, str]
) -> list[str]:
    """Everything that keeps the golden table from covering exactly the registered types."""
    problems: list[str] = []
    tags = [sample.TYPE for sample in samples]
    problems += [
        f"two samples of {tag!r}" for tag in sorted({t for t in tags if tags.count(t) > 1})
    ]
    problems += [
        f"{tag!r} ({cls.__name__}) has no sample"
        for tag, cls in sorted(registry.items())
        if tag not in tags
    ]
    problems += [
        f"{tag!r} ({cls.__name__}) has no golden vector"
        for tag, cls in sorted(registry.items())
        if tag not in golden
    ]
    problems += [
        f"golden vector {tag!r} names no registered type"
        for tag in sorted(set(golden) - set(registry))
    ]
    problems += [
        f"sample {type(s).__name__} is not the registered {tag!r} type"
        for s in samples
        if (tag := s.TYPE) in registry and registry[tag] is not type(s)
    ]
    problems += [
        f"sample {type(s).__name__} ({s.TYPE!r}) is not registered"
        for s in samples
        if s.TYPE not in registry
    ]
    return problems


def test_every_registered_type_has_a_sample_and_a_golden_vector() -> None:
    registry = registered_types()
    assert len(registry) >= 42  # the registry was collected, not empty
    assert coverage_problems(registry, SAMPLES, GOLDEN) == []


def test_the_coverage_check_fails_on_a_new_type_and_on_a_stale_vector() -> None:
    """The check above can fail: a type registered without a vector, and a vector whose type is gone."""

    class Throwaway(Message):
        TYPE = "throwaway_golden_check"
        reason: str

    registry = registered_types()
    with_new: dict[str, type[Message]] = {**registry, Throwaway.TYPE: Throwaway}
    assert coverage_problems(with_new, SAMPLES, GOLDEN) == [
        "'throwaway_golden_check' (Throwaway) has no sample",
        "'throwaway_golden_check' (Throwaway) has no golden vector",
    ]
    without_hello = {tag: cls for tag, cls in registry.items() if tag != "hello"}
    assert coverage_problems(without_hello, SAMPLES, GOLDEN) == [
        "golden vector 'hello' names no registered type",
        "sample Hello ('hello') is not registered",
    ]
    assert coverage_problems(registry, (*SAMPLES, StatusRequest()), GOLDEN) == [
        "two samples of 'status'"
    ]
    assert Throwaway.TYPE not in MESSAGE_TYPES  # the real registry was left alone


def _defaults_kept(msg: BaseModel) -> list[str]:
    return [
        name
        for name, info in type(msg).model_fields.items()
        if not info.is_required() and getattr(msg, name) == info.default
    ]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.TYPE)
def test_samples_set_every_optional_field(sample: Message) -> None:
    """A field left at its default would be frozen only by accident (or not be on the wire at all)."""
    assert _defaults_kept(sample) == []


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.TYPE)
def test_golden_vector(sample: Message) -> None:
    golden = bytes.fromhex(GOLDEN[sample.TYPE])
    assert encode_message(sample).hex() == golden.hex()
    decoded = decode_message(golden)
    assert type(decoded) is type(sample)
    assert decoded == sample


@pytest.mark.parametrize(
    ("sample", "golden"),
    DEFAULTS_OFF_THE_WIRE,
    ids=[sample.TYPE for sample, _golden in DEFAULTS_OFF_THE_WIRE],
)
def test_optional_fields_stay_off_the_wire_at_their_default(sample: Message, golden: str) -> None:
    assert type(sample).OPTIONAL_ON_WIRE
    assert encode_message(sample).hex() == golden
    assert decode_message(bytes.fromhex(golden)) == sample
    for name in type(sample).OPTIONAL_ON_WIRE:
        assert name.encode() not in bytes.fromhex(golden)


def test_every_type_with_optional_wire_fields_has_a_defaults_vector() -> None:
    with_optional = {tag for tag, cls in registered_types().items() if cls.OPTIONAL_ON_WIRE}
    assert {sample.TYPE for sample, _golden in DEFAULTS_OFF_THE_WIRE} == with_optional
