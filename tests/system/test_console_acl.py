"""Restricted consoles against the real daemons (#13): `srconsole` logs in over TLS as a named
Console with its own ACLs (`restricted`) and as one whose ACLs come from a Profile (`profiled`).
For every console command, the other tenant's jobs, clients, pools, storages, filesets and `where`
values are refused with a message naming the object, and the console's own are allowed.

One installation for the module, three small backups made by the unrestricted `admin` console:
an own Full (client test-fd, pool Full, storage File), an own Full written on the forbidden
storage Vault (pool Differential), and a foreign Full (Job backup-secret: client other-fd, pool
Secret, storage Vault, FileSet SecretSet). `other-fd` and `Vault` are the same File and Storage
Daemons under other resource names, so the foreign backup is real.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.pki import init_pki
from tests.system.conftest import Installation, _install

CONSOLES = ("restricted", "profiled")
FUTURE = '"2099-01-01 00:00:00"'
ACLS = (
    "  Command ACL = *all*\n"
    "  Job ACL = backup-test-fd, backup-vault, RestoreFiles\n"
    "  Client ACL = test-fd\n"
    "  Storage ACL = File\n"
    "  Pool ACL = Full, Incremental, Differential\n"
    "  FileSet ACL = QuickstartSet\n"
    "  Schedule ACL = WeeklyCycle\n"
    "  Catalog ACL = MyCatalog\n"
    '  Where ACL = "{ok}/.*"\n'
)


def _tls(inst: Installation, name: str) -> str:
    pki = inst.layout.pki
    return (
        "  TLS Enable = yes\n"
        f'  TLS Certificate = "{pki / f"{name}.pem"}"\n'
        f'  TLS Key = "{pki / f"{name}.key"}"\n'
        f'  TLS CA Certificate File = "{pki / "ca.pem"}"\n'
    )


def _configure(inst: Installation) -> None:
    layout = inst.layout
    root = inst.root
    etc = root / "etc" / "strongroom-dir.d"
    ok = root / "restores" / "ok"
    assert not set(str(ok)) & set("^$.[]|()*+?{}\\"), ok  # the Where ACL entry is a regex
    init_pki(layout.pki, list(CONSOLES), hostnames=("localhost", "127.0.0.1"))
    secret = root / "secret-src"
    secret.mkdir()
    (secret / "payroll.txt").write_text("other tenant's data\n")
    files = {
        # the same File Daemon and Storage Daemon under the other tenant's resource names
        "client/other-fd.conf": "Client {\n  Name = other-fd\n"
        f"  Address = {layout.address}\n  FD Port = {layout.fd_port}\n"
        f'  Password = "{layout.fd_password}"\n  Catalog = MyCatalog\n'
        f'  TLS Allowed CN = "{layout.client}"\n}}\n',
        "storage/Vault.conf": "Storage {\n  Name = Vault\n"
        f"  Address = {layout.address}\n  SD Port = {layout.sd_port}\n"
        f'  Password = "{layout.sd_password}"\n  Device = FileStorage\n  Media Type = File\n'
        f'  Maximum Concurrent Jobs = 10\n  TLS Allowed CN = "{layout.storage}"\n}}\n',
        "pool/Secret.conf": 'Pool {\n  Name = Secret\n  Pool Type = Backup\n  Label Format = "Secret-"\n}\n',
        "fileset/SecretSet.conf": f'FileSet {{\n  Name = SecretSet\n  Include {{\n    File = "{secret}"\n  }}\n}}\n',
        "job/backup-secret.conf": "Job {\n  Name = backup-secret\n  Type = Backup\n  Level = Full\n"
        "  Client = other-fd\n  FileSet = SecretSet\n  Pool = Secret\n  Storage = Vault\n"
        "  Messages = Standard\n  Schedule = WeeklyCycle\n}\n",
        # a Job the consoles may name whose default Storage they may not use
        "job/backup-vault.conf": "Job {\n  Name = backup-vault\n  JobDefs = DefaultJob\n"
        "  Storage = Vault\n}\n",
        "console/restricted.conf": 'Console {\n  Name = restricted\n  Password = "restricted-password"\n'
        + ACLS.format(ok=ok)
        + _tls(inst, "restricted")
        + "}\n",
        "profile/tenant.conf": "Profile {\n  Name = tenant\n" + ACLS.format(ok=ok) + "}\n",
        "console/profiled.conf": 'Console {\n  Name = profiled\n  Password = "profiled-password"\n'
        "  Profile = tenant\n" + _tls(inst, "profiled") + "}\n",
    }
    for rel, text in files.items():
        (etc / rel).parent.mkdir(exist_ok=True)
        (etc / rel).write_text(text)
    # other-fd is test-fd: the Storage Daemon accepts its certificate for the job's client
    sd = root / "etc" / "strongroom-sd.d" / "storage" / f"{layout.storage}.conf"
    allowed = f'  TLS Allowed CN = "{layout.director}", "{layout.client}"\n}}\n'
    sd.write_text(sd.read_text().rstrip().removesuffix("}") + allowed)
    for name in CONSOLES:
        (layout.etc / f"{name}.conf").write_text(
            f"Director {{\n  Name = {layout.director}\n  Address = {layout.address}\n"
            f'  Dir Port = {layout.dir_port}\n  Password = "{layout.dir_password}"\n'
            + _tls(inst, name)
            + "}\n\n"
            f'Console {{\n  Name = {name}\n  Password = "{name}-password"\n'
            f"  Director = {layout.director}\n" + _tls(inst, name) + "}\n"
        )


@dataclass
class Tenants:
    inst: Installation
    own: int  # backup-test-fd Full on storage File, pool Full
    own_on_vault: int  # backup-test-fd Full written on storage Vault (pool Differential)
    foreign: int  # backup-secret: other-fd, SecretSet, pool Secret, storage Vault
    own_volume: str
    foreign_volume: str

    @property
    def ok(self) -> Path:
        return self.inst.root / "restores" / "ok"

    def ask(self, who: str, *commands: str, timeout: float = 300) -> list[dict[str, Any]]:
        """Run commands as console `who` ("admin": the unrestricted one) with --json; one JSON
        document per command (`{"result": ...}` or `{"error": {"message": ...}}`)."""
        config = None if who == "admin" else self.inst.layout.etc / f"{who}.conf"
        done = self.inst.console(*commands, args=("--json",), config=config, timeout=timeout)
        docs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert len(docs) == len(commands), f"{who}: {commands}\n{done.stdout}\n{done.stderr}"
        return docs

    def result(self, who: str, command: str) -> dict[str, Any]:
        (doc,) = self.ask(who, command)
        assert "result" in doc, f"{who}: {command}: {doc}"
        return dict(doc["result"])

    def job(self, line: str, who: str = "admin") -> int:
        """Queue a job, wait for it; its JobId (it must end T)."""
        started = self.result(who, line)
        jobid = int((started.get("run") or started["restore"])["jobid"])
        self.result(who, f"wait jobid={jobid}")
        return jobid


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    for inst in _install(tmp_path_factory.mktemp("acl"), tls=True, before_start=_configure):
        t = Tenants(inst, 0, 0, 0, "", "")
        t.own = t.job("run job=backup-test-fd level=Full yes")
        t.own_on_vault = t.job(
            "run job=backup-test-fd level=Full pool=Differential storage=Vault yes"
        )
        t.foreign = t.job("run job=backup-secret yes")
        volumes = {v["pool"]: v for v in t.result("admin", "list volumes")["volumes"]}
        assert {"Full", "Differential", "Secret"} <= set(volumes), volumes
        assert volumes["Differential"]["storage"] == "Vault", volumes
        t.own_volume, t.foreign_volume = (
            volumes["Full"]["volumename"],
            volumes["Secret"]["volumename"],
        )
        yield t


def _refused(doc: dict[str, Any], command: str, *words: str) -> None:
    assert "error" in doc, f"{command}: not refused: {doc}"
    message = str(doc["error"]["message"])
    for word in words:
        assert word in message, f"{command}: {message!r} does not say {word!r}"


# (command, words the refusal must contain); {foreign} etc. are filled in per installation
REFUSED = [
    ("run job=backup-secret yes", "job 'backup-secret' is not permitted for console"),
    ("run job=backup-test-fd client=other-fd yes", "client 'other-fd' is not permitted"),
    ("run job=backup-test-fd fileset=SecretSet yes", "fileset 'SecretSet' is not permitted"),
    ("run job=backup-test-fd pool=Secret yes", "pool 'Secret' is not permitted"),
    ("run job=backup-test-fd storage=Vault yes", "storage 'Vault' is not permitted"),
    ("run job=backup-vault yes", "storage 'Vault' is not permitted"),  # the Job's default
    ("estimate job=backup-secret listing", "job 'backup-secret' is not permitted"),
    ("estimate job=backup-test-fd client=other-fd", "client 'other-fd' is not permitted"),
    ("estimate job=backup-test-fd fileset=SecretSet", "fileset 'SecretSet' is not permitted"),
    ("estimate job=backup-vault", "storage 'Vault' is not permitted"),
    ("restore jobid={foreign} all where={ok}/x yes", "JobId '{foreign}' is not permitted"),
    ("restore jobid={own},{foreign} all where={ok}/x yes", "JobId '{foreign}' is not permitted"),
    ("restore jobid={own_on_vault} all where={ok}/x yes", "storage 'Vault' is not permitted"),
    ("restore jobid={own} all where=/ yes", "where '/' is not permitted"),
    ("restore jobid={own} all where=/tmp/x yes", "where '/tmp/x' is not permitted"),
    ("restore jobid={own} all yes", "where '{default_where}' is not permitted"),  # the default
    ("restore jobid={own} all where={ok}/x storage=Vault yes", "storage 'Vault' is not permitted"),
    (
        "restore jobid={own} all where={ok}/x restoreclient=other-fd yes",
        "restoreclient 'other-fd' is not permitted",
    ),
    ("restore client=other-fd all where={ok}/x yes", "client 'other-fd' is not permitted"),
    (
        "restore client=test-fd fileset=SecretSet all where={ok}/x yes",
        "fileset 'SecretSet' is not permitted",
    ),
    ("list jobs client=other-fd", "client 'other-fd' is not permitted"),
    ("list jobs job=backup-secret", "job 'backup-secret' is not permitted"),
    ("list files jobid={foreign}", "JobId '{foreign}' is not permitted"),
    ("llist joblog jobid={foreign}", "JobId '{foreign}' is not permitted"),
    ("list volumes pool=Secret", "pool 'Secret' is not permitted"),
    ("status client=other-fd", "client 'other-fd' is not permitted"),
    ("status storage=Vault", "storage 'Vault' is not permitted"),
    ("status job={foreign}", "JobId '{foreign}' is not permitted"),
    ("status scheduler job=backup-secret", "is not permitted"),
    ("wait jobid={foreign}", "JobId '{foreign}' is not permitted"),
    ("delete jobid={foreign} yes", "JobId '{foreign}' is not permitted"),
    ("label storage=Vault pool=Full volume=Tenant-1", "storage 'Vault' is not permitted"),
    ("label storage=File pool=Secret volume=Tenant-1", "pool 'Secret' is not permitted"),
    ("update volume={foreign_volume} volstatus=Disabled", "no volume named"),
    ("show client=other-fd", "no Client resource named 'other-fd'"),
    ("show job=backup-secret", "no Job resource named 'backup-secret'"),
    (".events jobid={foreign} count=1", "JobId '{foreign}' is not permitted"),
    (".events job=backup-secret count=1", "job 'backup-secret' is not permitted"),
]


def _fill(t: Tenants, text: str) -> str:
    return text.format(
        own=t.own,
        own_on_vault=t.own_on_vault,
        foreign=t.foreign,
        ok=t.ok,
        default_where=t.inst.layout.restore_dir,
        foreign_volume=t.foreign_volume,
    )


@pytest.mark.parametrize("who", CONSOLES)
def test_foreign_objects_are_refused_with_a_clear_message(tenants: Tenants, who: str) -> None:
    commands = [_fill(tenants, c) for c, _ in REFUSED]
    before = tenants.result("admin", "list jobs")["jobs"]
    docs = tenants.ask(who, *commands)
    for (command, words), doc in zip(REFUSED, docs, strict=True):
        _refused(doc, _fill(tenants, command), _fill(tenants, words))
    after = tenants.result("admin", "list jobs")["jobs"]
    assert [j["jobid"] for j in after] == [j["jobid"] for j in before]  # nothing ran, nothing went
    volumes = tenants.result("admin", "list volumes")["volumes"]
    assert "Tenant-1" not in {v["volumename"] for v in volumes}
    assert {v["volumename"]: v["volstatus"] for v in volumes}[tenants.foreign_volume] != "Disabled"


@pytest.mark.parametrize("who", CONSOLES)
def test_listings_show_only_the_consoles_own(tenants: Tenants, who: str) -> None:
    for command in ("list", "llist"):
        jobs = {j["jobid"] for j in tenants.result(who, f"{command} jobs")["jobs"]}
        assert {tenants.own, tenants.own_on_vault} <= jobs and tenants.foreign not in jobs, jobs
        assert tenants.result(who, f"{command} jobid={tenants.foreign}")["jobs"] == []
        assert (
            tenants.result(who, f"{command} jobid={tenants.own}")["jobs"][0]["jobid"] == tenants.own
        )
        assert tenants.result(who, f"{command} files jobid={tenants.own}")["files"]
        volumes = {v["volumename"]: v for v in tenants.result(who, f"{command} volumes")["volumes"]}
        assert tenants.own_volume in volumes and tenants.foreign_volume not in volumes, volumes
        assert not [v for v in volumes.values() if v["storage"] == "Vault"], volumes
        pools = {p["name"] for p in tenants.result(who, f"{command} pools")["pools"]}
        assert "Full" in pools and "Secret" not in pools, pools
    everything = {j["jobid"] for j in tenants.result("admin", "list jobs")["jobs"]}
    assert tenants.foreign in everything


@pytest.mark.parametrize("who", CONSOLES)
def test_status_and_show_show_only_the_consoles_own(tenants: Tenants, who: str) -> None:
    # a scheduled job of each tenant, so `status dir` has something to hide
    own = tenants.result("admin", f"run job=backup-test-fd when={FUTURE} yes")["run"]["jobid"]
    foreign = tenants.result("admin", f"run job=backup-secret when={FUTURE} yes")["run"]["jobid"]
    try:
        config = tenants.inst.layout.etc / f"{who}.conf"
        text = tenants.inst.console("status dir", config=config).stdout
        assert f"JobId {own} " in text and f"JobId {foreign} " not in text, text
        assert "backup-secret" not in text, text
        assert f"JobId {foreign} " in tenants.inst.console("status dir").stdout
        assert tenants.result(who, f"status job={own}")["job"]["jobid"] == own
        refusal = tenants.ask(who, f"status job={foreign}", f"cancel jobid={foreign}")
        _refused(refusal[0], "status job=", "is not permitted")
        _refused(refusal[1], "cancel jobid=", "is not running or queued")
        assert tenants.ask(who, f"cancel jobid={own}")[0]["result"]["cancel"]["jobid"] == own
    finally:
        tenants.ask("admin", f"cancel jobid={foreign}", f"cancel jobid={own}")
    assert tenants.result(who, "status client=test-fd")["client"]["name"] == "test-fd"
    assert tenants.result(who, "status storage=File")["storage"]["role"] == "storage"
    runs = tenants.result(who, "status scheduler days=31")["scheduler"]["runs"]
    assert runs and {r["job"] for r in runs} == {"backup-test-fd"}, runs  # not -secret, -vault
    assert "backup-secret" in {
        r["job"] for r in tenants.result("admin", "status scheduler days=31")["scheduler"]["runs"]
    }
    shown = tenants.result(who, "show all")
    assert {j["name"] for j in shown["jobs"]} == {"backup-test-fd", "backup-vault", "RestoreFiles"}
    assert {c["name"] for c in shown["clients"]} == {"test-fd"}
    assert {s["name"] for s in shown["storages"]} == {"File"}
    assert {c["name"] for c in shown["consoles"]} == {who}
    assert "Secret" not in {p["name"] for p in shown["pools"]}


@pytest.mark.parametrize("who", CONSOLES)
def test_the_consoles_own_commands_are_allowed(tenants: Tenants, who: str) -> None:
    where = tenants.ok / who
    restored = tenants.job(f"restore jobid={tenants.own} all where={where} yes", who=who)
    row = tenants.result(who, f"list jobid={restored}")["jobs"][0]
    assert row["jobstatus"] == "T", tenants.result(who, f"list joblog jobid={restored}")
    data = tenants.inst.root / "data" / "README.txt"
    assert (where / str(data).lstrip("/")).read_bytes() == data.read_bytes()
    # no client=: the client is chosen among the console's jobs (the catalog has other-fd too,
    # so the unrestricted console must choose); its newest Full was written on Vault
    (latest,) = tenants.ask(who, f"restore all where={where}-latest yes")
    _refused(latest, "restore all", "storage 'Vault' is not permitted")
    assert "other-fd" not in json.dumps(latest)
    (everyone,) = tenants.ask("admin", f"restore all where={where}-latest yes")
    _refused(everyone, "restore all (admin)", "choose a client", "other-fd")
    estimate = tenants.result(who, "estimate job=backup-test-fd listing")["estimate"]
    assert estimate["files"] >= 1 and estimate["client"] == "test-fd"
    label = f"Tenant-{who}"
    assert tenants.result(who, f"label storage=File pool=Incremental volume={label}")["label"]
    assert tenants.result(who, f"update volume={label} volstatus=Used")["update"]
    scheduled = tenants.result(who, f"run job=backup-test-fd when={FUTURE} yes")["run"]["jobid"]
    assert tenants.result(who, f"cancel jobid={scheduled}")["cancel"]["jobid"] == scheduled
    assert tenants.result(who, f"delete jobid={scheduled} yes")["delete"][0]["jobid"] == scheduled


class _Lines:
    """A running `srconsole .events`: its JSON lines, read by a thread as they come."""

    def __init__(self, inst: Installation, who: str, timeout: float) -> None:
        config = inst.layout.etc / f"{who}.conf"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "-c", str(config), "--json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(f".events timeout={timeout}\n")
        self.process.stdin.close()
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def next(self, timeout: float = 30) -> dict[str, Any]:
        return self.lines.get(timeout=timeout)

    def until(self, wanted: Any, timeout: float = 60) -> list[dict[str, Any]]:
        """Every event until one `wanted(event)` is true (that one included)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; events so far: {seen}"
            doc = self.next(left)
            event = doc.get("result", {})
            seen.append(event)
            if wanted(event):
                return seen

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("who", CONSOLES)
def test_events_show_only_the_consoles_own_jobs(tenants: Tenants, who: str) -> None:
    events = _Lines(tenants.inst, who, timeout=120)
    try:
        assert events.next()["result"]["event"] == "subscribed"
        foreign = tenants.job("run job=backup-secret level=Incremental yes")
        own = tenants.job("run job=backup-test-fd level=Incremental yes", who=who)
        seen = events.until(lambda e: e.get("jobid") == own and e.get("status") == "T")
    finally:
        events.close()
    jobids = {e.get("jobid") for e in seen if "jobid" in e}
    assert own in jobids and foreign not in jobids, seen
    assert "backup-secret" not in json.dumps(seen) and "Vault" not in json.dumps(seen)


@pytest.mark.parametrize("who", CONSOLES)
def test_messages_are_the_consoles_own(tenants: Tenants, who: str) -> None:
    tenants.job("run job=backup-secret level=Incremental yes")  # news for every console
    text = "\n".join(m["text"] for m in tenants.result(who, "messages")["messages"])
    assert text, "no messages at all"
    assert "backup-secret" not in text and "other-fd" not in text, text
    everything = "\n".join(m["text"] for m in tenants.result("admin", "messages")["messages"])
    assert "backup-secret" in everything
