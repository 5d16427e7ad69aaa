"""Configuration text for a complete single-host installation (quickstart and `etc/` samples)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Every name, port, path and password a single-host installation needs."""

    root: Path
    director: str
    storage: str
    client: str
    console: str
    address: str
    dir_port: int
    sd_port: int
    fd_port: int
    dir_password: str
    sd_password: str
    fd_password: str
    console_password: str
    tls: bool = True
    auth_timeout: int | None = None
    pki_dir: Path | None = None
    etc_dir: Path | None = None
    log_dir: Path | None = None

    @property
    def etc(self) -> Path:
        return self.etc_dir or self.root / "etc"

    @property
    def pki(self) -> Path:
        return self.pki_dir or self.root / "tls"

    @property
    def storage_dir(self) -> Path:
        return self.root / "storage"

    @property
    def working(self) -> Path:
        return self.root / "working"

    @property
    def logs(self) -> Path:
        return self.log_dir or self.root / "log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def restore_dir(self) -> Path:
        return self.root / "restore"

    def config_path(self, prog: str) -> Path:
        return self.etc / f"{prog}.d"

    @property
    def console_config(self) -> Path:
        return self.etc / "srconsole.conf"


def _q(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _tls(layout: Layout, name: str, indent: str = "  ") -> str:
    if not layout.tls:
        return f"{indent}TLS Enable = no\n"
    return (
        f"{indent}TLS Enable = yes\n"
        f"{indent}TLS Certificate = {_q(layout.pki / f'{name}.pem')}\n"
        f"{indent}TLS Key = {_q(layout.pki / f'{name}.key')}\n"
        f"{indent}TLS CA Certificate File = {_q(layout.pki / 'ca.pem')}\n"
    )


def _auth_timeout(layout: Layout) -> str:
    return (
        "" if layout.auth_timeout is None else f"  Auth Timeout = {layout.auth_timeout} seconds\n"
    )


def _peer_tls(layout: Layout, indent: str = "  ") -> str:
    return "" if layout.tls else f"{indent}TLS Enable = no\n"


def director_files(layout: Layout) -> dict[str, str]:
    """`<type>/<name>.conf` → text for the Director's configuration tree."""
    working = layout.working / "dir"
    return {
        f"director/{layout.director}.conf": (
            "Director {\n"
            f"  Name = {layout.director}\n"
            f"  Dir Address = {layout.address}\n"
            f"  Dir Port = {layout.dir_port}\n"
            f"  Password = {_q(layout.dir_password)}\n"
            "  Maximum Concurrent Jobs = 10\n"
            f"  Working Directory = {_q(working)}\n"
            "  Messages = Daemon\n"
            "  Heartbeat Interval = 1 min\n"
            + _auth_timeout(layout)
            + _tls(layout, layout.director)
            + "}\n"
        ),
        f"client/{layout.client}.conf": (
            "Client {\n"
            f"  Name = {layout.client}\n"
            f"  Address = {layout.address}\n"
            f"  FD Port = {layout.fd_port}\n"
            f"  Password = {_q(layout.fd_password)}\n"
            "  Catalog = MyCatalog\n" + _peer_tls(layout) + "}\n"
        ),
        "storage/File.conf": (
            "Storage {\n"
            "  Name = File\n"
            f"  Address = {layout.address}\n"
            f"  SD Port = {layout.sd_port}\n"
            f"  Password = {_q(layout.sd_password)}\n"
            "  Device = FileStorage\n"
            "  Media Type = File\n"
            "  Maximum Concurrent Jobs = 10\n"
            # The Storage resource is "File", the Storage Daemon (and its certificate) is named
            # after the host: the certificate must carry a name the resource allows.
            + (f"  TLS Allowed CN = {_q(layout.storage)}\n" if layout.tls else "")
            + _peer_tls(layout)
            + "}\n"
        ),
        "catalog/MyCatalog.conf": (
            "Catalog {\n"
            "  Name = MyCatalog\n"
            "  DB Driver = sqlite3\n"
            f"  DB Name = {_q(working / 'catalog.db')}\n"
            "}\n"
        ),
        "messages/Daemon.conf": (
            "Messages {\n"
            "  Name = Daemon\n"
            "  console = all, !skipped, !saved\n"
            f"  append = {_q(layout.logs / 'strongroom.log')} = all, !skipped\n"
            "}\n"
        ),
        "messages/Standard.conf": (
            "Messages {\n"
            "  Name = Standard\n"
            "  console = all, !skipped, !saved\n"
            f"  append = {_q(layout.logs / 'strongroom.log')} = all, !skipped, !saved\n"
            "  catalog = all, !skipped, !saved\n"
            "}\n"
        ),
        "pool/Full.conf": (
            "Pool {\n  Name = Full\n  Pool Type = Backup\n  Recycle = yes\n  AutoPrune = yes\n"
            "  Volume Retention = 365 days\n  Maximum Volume Bytes = 50G\n  Maximum Volumes = 100\n"
            '  Label Format = "Full-"\n}\n'
        ),
        "pool/Differential.conf": (
            "Pool {\n  Name = Differential\n  Pool Type = Backup\n  Recycle = yes\n  AutoPrune = yes\n"
            "  Volume Retention = 90 days\n  Maximum Volume Bytes = 10G\n  Maximum Volumes = 100\n"
            '  Label Format = "Differential-"\n}\n'
        ),
        "pool/Incremental.conf": (
            "Pool {\n  Name = Incremental\n  Pool Type = Backup\n  Recycle = yes\n  AutoPrune = yes\n"
            "  Volume Retention = 30 days\n  Maximum Volume Bytes = 1G\n  Maximum Volumes = 100\n"
            '  Label Format = "Incremental-"\n}\n'
        ),
        "pool/Scratch.conf": "Pool {\n  Name = Scratch\n  Pool Type = Scratch\n}\n",
        "schedule/WeeklyCycle.conf": (
            "Schedule {\n  Name = WeeklyCycle\n  Run = Full 1st sat at 21:00\n"
            "  Run = Differential 2nd-5th sat at 21:00\n  Run = Incremental mon-fri at 21:00\n}\n"
        ),
        "fileset/QuickstartSet.conf": (
            "FileSet {\n"
            "  Name = QuickstartSet\n"
            '  Description = "What the quickstart backs up; change File = to your data."\n'
            "  Include {\n"
            "    Options {\n      Signature = XXH128\n      Sparse = yes\n    }\n"
            f"    File = {_q(layout.root / 'data')}\n"
            "  }\n"
            "}\n"
        ),
        "jobdefs/DefaultJob.conf": (
            "JobDefs {\n"
            "  Name = DefaultJob\n  Type = Backup\n  Level = Incremental\n"
            f"  Client = {layout.client}\n  FileSet = QuickstartSet\n  Schedule = WeeklyCycle\n"
            "  Storage = File\n  Messages = Standard\n  Pool = Incremental\n  Priority = 10\n"
            "  Full Backup Pool = Full\n  Differential Backup Pool = Differential\n"
            "  Incremental Backup Pool = Incremental\n"
            "}\n"
        ),
        f"job/backup-{layout.client}.conf": (
            f"Job {{\n  Name = backup-{layout.client}\n  JobDefs = DefaultJob\n}}\n"
        ),
        "job/RestoreFiles.conf": (
            "Job {\n  Name = RestoreFiles\n  Type = Restore\n"
            f"  Client = {layout.client}\n  FileSet = QuickstartSet\n  Storage = File\n"
            f"  Pool = Incremental\n  Messages = Standard\n  Where = {_q(layout.restore_dir)}\n"
            "}\n"
        ),
        "profile/operator.conf": (
            "Profile {\n  Name = operator\n"
            '  Description = "Everything an operator needs."\n'
            "  Command ACL = *all*\n  Job ACL = *all*\n  Client ACL = *all*\n  Storage ACL = *all*\n"
            "  Schedule ACL = *all*\n  Pool ACL = *all*\n  FileSet ACL = *all*\n  Catalog ACL = *all*\n"
            "  Where ACL = *all*\n"
            "}\n"
        ),
        f"console/{layout.console}.conf": (
            "Console {\n"
            f"  Name = {layout.console}\n"
            f"  Password = {_q(layout.console_password)}\n"
            "  Profile = operator\n" + _tls(layout, layout.console) + "}\n"
        ),
    }


def storage_files(layout: Layout) -> dict[str, str]:
    return {
        f"storage/{layout.storage}.conf": (
            "Storage {\n"
            f"  Name = {layout.storage}\n"
            f"  SD Address = {layout.address}\n"
            f"  SD Port = {layout.sd_port}\n"
            f"  Working Directory = {_q(layout.working / 'sd')}\n"
            "  Heartbeat Interval = 1 min\n"
            + _auth_timeout(layout)
            + _tls(layout, layout.storage)
            + "}\n"
        ),
        f"director/{layout.director}.conf": (
            "Director {\n"
            f"  Name = {layout.director}\n"
            f"  Password = {_q(layout.sd_password)}\n" + _peer_tls(layout) + "}\n"
        ),
        "device/FileStorage.conf": (
            "Device {\n"
            "  Name = FileStorage\n  Media Type = File\n"
            f"  Archive Device = {_q(layout.storage_dir)}\n"
            "  Label Media = yes\n"
            "}\n"
        ),
        "messages/Standard.conf": (
            f"Messages {{\n  Name = Standard\n  Director = {layout.director} = all\n}}\n"
        ),
    }


def client_files(layout: Layout) -> dict[str, str]:
    return {
        f"client/{layout.client}.conf": (
            "Client {\n"
            f"  Name = {layout.client}\n"
            f"  FD Address = {layout.address}\n"
            f"  FD Port = {layout.fd_port}\n"
            f"  Working Directory = {_q(layout.working / 'fd')}\n"
            "  Heartbeat Interval = 1 min\n"
            + _auth_timeout(layout)
            + _tls(layout, layout.client)
            + "}\n"
        ),
        f"director/{layout.director}.conf": (
            "Director {\n"
            f"  Name = {layout.director}\n"
            f"  Password = {_q(layout.fd_password)}\n" + _peer_tls(layout) + "}\n"
        ),
        "messages/Standard.conf": (
            f"Messages {{\n  Name = Standard\n  Director = {layout.director} = all, !skipped, !restored\n}}\n"
        ),
    }


def console_text(layout: Layout) -> str:
    return (
        "Director {\n"
        f"  Name = {layout.director}\n"
        f"  Address = {layout.address}\n"
        f"  Dir Port = {layout.dir_port}\n"
        f"  Password = {_q(layout.dir_password)}\n" + _tls(layout, layout.console) + "}\n\n"
        "Console {\n"
        f"  Name = {layout.console}\n"
        f"  Password = {_q(layout.console_password)}\n"
        f"  Director = {layout.director}\n"
        f"  History File = {_q(layout.root / 'srconsole.history')}\n"
        + _tls(layout, layout.console)
        + "}\n"
    )
