"""Console ACLs (#13): a restricted console, built from real Console and Profile resources and
driven through the console server's `run_command`, is refused every foreign job, client, pool,
storage, fileset and `where`, and allowed its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from director.catalog import FileRow, JobMediaRow, NewJob, PoolRow
from director.config import load_director_config
from director.console.registry import Reply, Session
from director.console.server import DEFAULT_CONSOLE, make_acl, run_command
from director.daemon import DirectorDaemon
from director.joblog import LogLine
from director.jobs.request import RunRequest
from protocol.attributes import FileAttributes, FileType, encode_attributes
from tests.support.director import director_etc


class _Log:
    def bind(self, **_kwargs: Any) -> _Log:
        return self

    def _event(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    info = warning = error = exception = debug = _event


LOG = _Log()
DENIED = "not permitted for console 'restricted'"
OTHER = {
    "client/other-fd.conf": "Client {\n  Name = other-fd\n  Address = 127.0.0.1\n  FD Port = 3\n"
    '  Password = "oooooooooooooooooooo"\n  Catalog = MyCatalog\n  TLS Enable = no\n}\n',
    "storage/OtherStore.conf": "Storage {\n  Name = OtherStore\n  Address = 127.0.0.1\n  SD Port = 2\n"
    '  Password = "ssssssssssssssssssss"\n  Device = FileStorage\n  Media Type = File\n'
    "  TLS Enable = no\n}\n",
    "pool/OtherPool.conf": "Pool {\n  Name = OtherPool\n  Pool Type = Backup\n}\n",
    "fileset/OtherSet.conf": 'FileSet {\n  Name = OtherSet\n  Include {\n    File = "/srv"\n  }\n}\n',
    "messages/Secret.conf": 'Messages {\n  Name = Secret\n  mailcommand = "mailer --password hunter2"\n'
    "  console = all\n}\n",
    "jobdefs/OtherDefs.conf": "JobDefs {\n  Name = OtherDefs\n  Type = Backup\n  Client = other-fd\n"
    "  FileSet = OtherSet\n  Storage = OtherStore\n  Pool = OtherPool\n"
    "  Messages = Secret\n  Schedule = WeeklyCycle\n}\n",
    # permitted Jobs whose runs use a forbidden Pool or come from a forbidden Schedule
    "schedule/PoolCycle.conf": "Schedule {\n  Name = PoolCycle\n  Run = Pool=OtherPool daily at 03:00\n"
    "  Run = Level=Full Storage=OtherStore daily at 04:00\n  Run = Level=Full daily at 05:00\n}\n",
    # permitted Jobs whose default Storage is not
    "job/vault.conf": "Job {\n  Name = backup-vault\n  JobDefs = DefaultJob\n  Storage = OtherStore\n}\n"
    "Job {\n  Name = RestoreVault\n  Type = Restore\n  Client = test-fd\n"
    "  FileSet = QuickstartSet\n  Storage = OtherStore\n  Pool = Incremental\n"
    "  Messages = Standard\n}\n"
    "Job {\n  Name = RestoreForeignPool\n  Type = Restore\n  Client = test-fd\n"
    "  FileSet = QuickstartSet\n  Storage = File\n  Pool = OtherPool\n"
    "  Messages = Standard\n}\n",
    "schedule/SecretCycle.conf": "Schedule {\n  Name = SecretCycle\n  Run = daily at 06:00\n}\n",
    "job/nightly.conf": "Job {\n  Name = nightly\n  JobDefs = DefaultJob\n  Schedule = PoolCycle\n}\n"
    "Job {\n  Name = secret-nightly\n  JobDefs = DefaultJob\n  Schedule = SecretCycle\n}\n",
    "job/backup-other.conf": "Job {\n  Name = backup-other\n  JobDefs = OtherDefs\n}\n",
    # allowed by the Job ACL, but its default client, fileset, pool and storage are not
    "job/backup-sneaky.conf": "Job {\n  Name = backup-sneaky\n  JobDefs = OtherDefs\n"
    '  Run Before Job = "curl -u admin:hunter2 http://x"\n}\n',
    "job/RestoreOther.conf": "Job {\n  Name = RestoreOther\n  Type = Restore\n  Client = other-fd\n"
    "  FileSet = OtherSet\n  Storage = OtherStore\n  Pool = OtherPool\n"
    "  Messages = Standard\n}\n",
    "job/RestoreSneaky.conf": "Job {\n  Name = RestoreSneaky\n  Type = Restore\n  Client = other-fd\n"
    "  FileSet = QuickstartSet\n  Storage = File\n  Pool = Incremental\n"
    "  Messages = Standard\n}\n",
    "profile/own.conf": "Profile {\n  Name = own\n  Command ACL = *all*\n"
    "  Job ACL = backup-test-fd, backup-sneaky, RestoreFiles, RestoreSneaky, nightly,"
    " secret-nightly, backup-vault, RestoreVault, RestoreForeignPool\n"
    "  Client ACL = test-fd\n  Storage ACL = File\n"
    "  Pool ACL = Full, Differential, Incremental\n  FileSet ACL = QuickstartSet\n"
    "  Schedule ACL = WeeklyCycle, PoolCycle\n  Catalog ACL = MyCatalog\n"
    '  Where ACL = "!/srv/restore/secret.*", "/srv/restore/.*", /tmp/ok\n}\n',
    "console/restricted.conf": 'Console {\n  Name = restricted\n  Password = "rrrrrrrrrrrrrrrrrrrr"\n'
    "  Profile = own\n  TLS Enable = no\n}\n",
}


class World:
    def __init__(self, director: DirectorDaemon) -> None:
        self.director = director
        self.mine = Session(
            console="restricted", acl=make_acl(director, "restricted"), director=director, api=True
        )
        self.root = Session(
            console=DEFAULT_CONSOLE,
            acl=make_acl(director, DEFAULT_CONSOLE),
            director=director,
            api=True,
        )
        self.own_job = self.foreign_job = self.disguised_job = 0

    async def as_restricted(self, line: str) -> Reply:
        return await _whole(await run_command(self.mine, line, LOG))

    async def as_root(self, line: str) -> Reply:
        return await _whole(await run_command(self.root, line, LOG))


async def _whole(reply: Reply) -> Reply:
    """A streamed answer gathered as the console shows it: the parts' rows and text in the reply."""
    if reply.stream is None:
        return reply
    rows: dict[str, list[Any]] = {}
    texts = []
    async for part in reply.stream:
        texts.append(part.text)
        if part.rows is not None:
            rows.setdefault(part.rows, []).extend(part.data)
    data = dict(reply.data or {})
    for key, values in rows.items():
        data[key] = values + list(data.get(key) or [])
    return Reply(text="\n".join([*texts, reply.text]), data=data, ok=reply.ok)


async def _job(director: DirectorDaemon, name: str, client: str, pool: str, fileset: str) -> int:
    client_id = await director.db.ensure_client(client)
    pool_id = await director.db.ensure_pool(PoolRow(name=pool))
    fileset_id = await director.db.ensure_fileset(fileset, "md5")
    job_id: int = await director.db.create_job(
        NewJob(
            job=f"{name}.{time.time()}",
            name=name,
            type="B",
            level="F",
            client_id=client_id,
            fileset_id=fileset_id,
            pool_id=pool_id,
            sched_time=time.time(),
            status="T",
        ),
    )
    return job_id


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    etc = director_etc(tmp_path / "inst", tmp_path / "catalog.db")
    for rel, text in OTHER.items():
        (etc / rel).parent.mkdir(exist_ok=True)
        (etc / rel).write_text(text)
    director = DirectorDaemon(etc, load_director_config(etc), _Log())
    await director.db.open()
    w = World(director)
    w.own_job = await _job(director, "backup-test-fd", "test-fd", "Incremental", "QuickstartSet")
    w.foreign_job = await _job(director, "backup-other", "other-fd", "OtherPool", "OtherSet")
    # an allowed job name, run for a foreign client: the row is foreign
    w.disguised_job = await _job(
        director, "backup-test-fd", "other-fd", "Incremental", "QuickstartSet"
    )
    for volume, pool in (("own-vol", "Incremental"), ("other-vol", "OtherPool")):
        pool_id = await director.db.ensure_pool(PoolRow(name=pool))
        await director.db.create_media(volume, pool_id, "File", "File")
    try:
        yield w
    finally:
        director.db.close()


def refused(reply: Reply, *words: str) -> None:
    assert not reply.ok, reply.text
    for word in words:
        assert word in reply.text, reply.text


def not_refused_by_acl(reply: Reply) -> None:
    assert "not permitted" not in reply.text, reply.text


# -- restore ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "restore jobid={foreign} all yes where=/tmp/ok",
        "restore jobid={disguised} all yes where=/tmp/ok",
        "restore jobid={own},{foreign} all yes where=/tmp/ok",
        "restore jobid={own} all yes where=/",
        "restore jobid={own} all yes",  # the Restore job's default where is not in the Where ACL
        "restore jobid={own} all yes where=/etc",
        "restore jobid={own} all yes where=/srv/restore/secret/x",
        "restore jobid={own} all yes where=/tmp/ok regexwhere=!^/!/etc/!",
        "restore jobid={own} all yes where=/tmp/ok restorejob=RestoreOther",
        "restore jobid={own} all yes where=/tmp/ok restorejob=RestoreSneaky",  # its default client
        "restore jobid={own} all yes where=/tmp/ok storage=OtherStore",
        "restore jobid={own} all yes where=/tmp/ok restoreclient=other-fd",
        "restore client=other-fd all yes where=/tmp/ok",
        "restore client=test-fd fileset=OtherSet all yes where=/tmp/ok",
    ],
)
async def test_restore_refuses_foreign_objects(world: World, line: str) -> None:
    reply = await world.as_restricted(
        line.format(own=world.own_job, foreign=world.foreign_job, disguised=world.disguised_job)
    )
    refused(reply, "not permitted")


@pytest.mark.parametrize("where", ["/tmp/ok", "/srv/restore/alice"])
async def test_restore_of_its_own_job_to_a_permitted_where_passes_the_acls(
    world: World, where: str
) -> None:
    not_refused_by_acl(
        await world.as_restricted(f"restore jobid={world.own_job} all yes where={where}")
    )


# -- run, estimate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "run job=backup-other yes",
        "run job=backup-sneaky yes",  # permitted name, forbidden defaults
        "run job=backup-test-fd client=other-fd yes",
        "run job=backup-test-fd fileset=OtherSet yes",
        "run job=backup-test-fd pool=OtherPool yes",
        "run job=backup-test-fd storage=OtherStore yes",
        "run job=backup-test-fd",
        "estimate job=backup-other listing",
        "estimate job=backup-sneaky listing",
        "estimate job=backup-test-fd client=other-fd listing",
        "estimate job=backup-test-fd fileset=OtherSet listing",
    ],
)
async def test_run_and_estimate_refuse_foreign_objects(world: World, line: str) -> None:
    if line == "run job=backup-test-fd":  # the allowed case, as a control
        reply = await world.as_restricted(line)
        assert reply.ok and reply.data["run"]["resolved"]["client"] == "test-fd", reply.text
        return
    refused(await world.as_restricted(line), "not permitted")


async def test_estimate_of_its_own_job_passes_the_acls(world: World) -> None:
    not_refused_by_acl(await world.as_restricted("estimate job=backup-test-fd listing"))


# -- list, llist ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["list", "llist"])
async def test_list_shows_only_permitted_jobs_volumes_and_pools(world: World, command: str) -> None:
    jobs = await world.as_restricted(f"{command} jobs")
    assert [r["jobid"] for r in jobs.data["jobs"]] == [world.own_job], jobs.text
    assert "backup-other" not in jobs.text and "other-fd" not in jobs.text
    everyone = await world.as_root(f"{command} jobs")
    assert len(everyone.data["jobs"]) == 3
    limited = await world.as_restricted(f"{command} jobs limit=1 offset=0")
    assert [r["jobid"] for r in limited.data["jobs"]] == [world.own_job]
    assert (await world.as_restricted(f"{command} jobs limit=1 offset=1")).data["jobs"] == []
    assert (await world.as_restricted(f"{command} jobid={world.foreign_job}")).data["jobs"] == []
    assert (await world.as_restricted(f"{command} jobid={world.own_job}")).data["jobs"][0][
        "jobid"
    ] == world.own_job
    refused(await world.as_restricted(f"{command} jobs client=other-fd"), "not permitted")
    refused(await world.as_restricted(f"{command} jobs job=backup-other"), "not permitted")
    for what in ("files", "joblog"):
        refused(
            await world.as_restricted(f"{command} {what} jobid={world.foreign_job}"),
            "not permitted",
        )
        refused(
            await world.as_restricted(f"{command} {what} jobid={world.disguised_job}"),
            "not permitted",
        )
        assert (await world.as_restricted(f"{command} {what} jobid={world.own_job}")).ok
    volumes = await world.as_restricted(f"{command} volumes")
    assert [v["volumename"] for v in volumes.data["volumes"]] == ["own-vol"]
    refused(await world.as_restricted(f"{command} volumes pool=OtherPool"), "not permitted")
    pools = await world.as_restricted(f"{command} pools")
    assert "OtherPool" not in {p["name"] for p in pools.data["pools"]}
    assert "OtherPool" in {
        p["name"] for p in (await world.as_root(f"{command} pools")).data["pools"]
    }


# -- status, cancel, wait ---------------------------------------------------------------------


async def test_status_cancel_and_wait_see_only_permitted_jobs(world: World) -> None:
    later = time.time() + 3600
    own = await world.director.submit(RunRequest(job="backup-test-fd", when=later))
    foreign = await world.director.submit(RunRequest(job="backup-other", when=later))
    status = await world.as_restricted("status dir")
    assert (
        f"JobId {own.job_id} " in status.text and f"JobId {foreign.job_id} " not in status.text
    ), status.text
    assert f"JobId {foreign.job_id} " in (await world.as_root("status dir")).text
    refused(await world.as_restricted(f"status job={foreign.job_id}"), "not permitted")
    refused(await world.as_restricted(f"status job={world.foreign_job}"), "not permitted")
    assert (await world.as_restricted(f"status job={own.job_id}")).ok
    refused(await world.as_restricted("status client=other-fd"), "not permitted")
    refused(await world.as_restricted("status storage=OtherStore"), "not permitted")
    refused(await world.as_restricted(f"cancel jobid={foreign.job_id}"), "not running or queued")
    refused(await world.as_restricted(f"cancel job={foreign.unique}"), "not found")
    refused(await world.as_restricted(f"wait jobid={foreign.job_id} timeout=0.01"), "not permitted")
    refused(await world.as_restricted(f"wait jobid={world.foreign_job}"), "not permitted")
    assert (await world.as_restricted(f"cancel jobid={own.job_id}")).ok
    assert (await world.as_root(f"cancel jobid={foreign.job_id}")).ok


# -- delete, update, label --------------------------------------------------------------------


async def test_delete_update_and_label_refuse_foreign_objects(world: World) -> None:
    refused(await world.as_restricted(f"delete jobid={world.foreign_job} yes"), "not permitted")
    refused(
        await world.as_restricted(f"delete jobid={world.own_job},{world.disguised_job} yes"),
        "not permitted",
    )
    assert await world.director.db.get_job(world.own_job) is not None  # nothing deleted
    refused(
        await world.as_restricted("update volume=other-vol volstatus=Disabled"), "no volume named"
    )
    assert (await world.director.db.get_media("other-vol")).status != "Disabled"
    assert (await world.as_restricted("update volume=own-vol volstatus=Disabled")).ok
    refused(
        await world.as_restricted("label storage=OtherStore pool=Incremental volume=v1"),
        "not permitted",
    )
    refused(
        await world.as_restricted("label storage=File pool=OtherPool volume=v1"), "not permitted"
    )
    not_refused_by_acl(await world.as_restricted("label storage=File pool=Incremental volume=v1"))
    assert (await world.as_restricted(f"delete jobid={world.own_job} yes")).ok


# -- show -------------------------------------------------------------------------------------


async def test_show_lists_only_what_the_console_may_see_and_hides_command_lines(
    world: World,
) -> None:
    shown = await world.as_restricted("show all")
    text = shown.text
    for foreign in (
        "backup-other",
        "RestoreOther",
        "Name = admin",
        "Name = operator",
        "hunter2",
        "curl",
    ):
        assert foreign not in text, foreign
    for kind, names in (
        ("clients", {"test-fd"}),
        ("storages", {"File"}),
        ("filesets", {"QuickstartSet"}),
        ("jobdefs", {"DefaultJob", "OtherDefs"}),  # those its permitted jobs are built on
        (
            "jobs",
            {
                "backup-test-fd",
                "backup-sneaky",
                "RestoreFiles",
                "RestoreSneaky",
                "nightly",
                "secret-nightly",
                "backup-vault",
                "RestoreVault",
                "RestoreForeignPool",
            },
        ),
    ):
        assert {r["name"] for r in shown.data[kind]} == names, kind
    assert "OtherPool" not in {p["name"] for p in shown.data["pools"]}
    assert {c["name"] for c in shown.data["consoles"]} == {"restricted"}
    assert {p["name"] for p in shown.data["profiles"]} == {"own"}
    assert {m["name"] for m in shown.data["messages"]} == {"Standard", "Secret"}
    assert "backup-sneaky" in text and "(hidden)" in text
    everything = (await world.as_root("show all")).text
    assert "hunter2" in everything and "other-fd" in everything
    refused(await world.as_restricted("show client=other-fd"), "no Client resource")


# -- messages ---------------------------------------------------------------------------------


async def test_messages_are_per_console_and_filtered_by_job(world: World) -> None:
    queue = world.director.messages
    queue.add(LogLine(1.0, world.own_job, "own", "info", "own job message"))
    queue.add(LogLine(2.0, world.foreign_job, "other", "info", "foreign job message"))
    queue.add(LogLine(3.0, None, None, "info", "director message"))
    mine = await world.as_restricted("messages")
    assert [m["text"] for m in mine.data["messages"]] == ["own job message"]
    assert (await world.as_restricted("messages")).data["messages"] == []
    # the restricted console's read took nothing from the Director's console
    root = await world.as_root("messages")
    assert [m["text"] for m in root.data["messages"]] == [
        "own job message",
        "foreign job message",
        "director message",
    ]
    assert (await world.as_root("messages")).data["messages"] == []


def test_the_message_ring_is_bounded_and_each_reader_has_a_cursor() -> None:
    from director.joblog import MessageQueue

    queue = MessageQueue(capacity=3)
    for n in range(5):
        queue.add(LogLine(float(n), n, "j", "info", str(n)))
    assert [m.text for m in queue.drain("a")] == ["2", "3", "4"]
    queue.add(LogLine(5.0, 5, "j", "info", "5"))
    assert [m.text for m in queue.drain("a")] == ["5"]
    assert [m.text for m in queue.drain("b")] == ["3", "4", "5"]
    assert queue.pending("a") == 0 and queue.pending("c") == 3


async def test_a_named_console_with_all_acls_reads_the_directors_own_messages(world: World) -> None:
    """The quickstart's `admin` console (Profile operator: every ACL *all*) sees every job, so it
    reads the Director's own messages (an unwritable catalog, a refused schedule) too."""
    admin = Session(console="admin", acl=make_acl(world.director, "admin"), director=world.director)
    world.director.messages.add(LogLine(1.0, None, None, "error", "the catalog is not writable"))
    reply = await _whole(await run_command(admin, "messages", LOG))
    assert [m["text"] for m in reply.data["messages"]] == ["the catalog is not writable"]
    assert (await world.as_restricted("messages")).data["messages"] == []


# -- .events, status scheduler, status dir ----------------------------------------------------


async def _events(world: World, session: Session, line: str, publish: Any) -> list[dict[str, Any]]:
    """Run `.events` as `session`, publish while it listens, return the events it was sent."""
    reply = await run_command(session, line, LOG)
    assert reply.ok and reply.stream is not None, reply.text
    got = [(await anext(reply.stream)).data]
    assert got[0]["event"] == "subscribed"
    await publish()
    async for part in reply.stream:
        got.append(part.data)
    return got[1:]


async def test_events_show_only_permitted_jobs_and_resources(world: World) -> None:
    later = time.time() + 3600
    own: list[int] = []
    foreign: list[int] = []

    async def publish() -> None:
        own.append(
            (await world.director.submit(RunRequest(job="backup-test-fd", when=later))).job_id
        )
        foreign.append(
            (await world.director.submit(RunRequest(job="backup-other", when=later))).job_id
        )
        # a job permitted by name whose default client, pool and fileset are not
        foreign.append(
            (await world.director.submit(RunRequest(job="backup-sneaky", when=later))).job_id
        )
        world.director.events.publish(
            "queue_waiting",
            status="S",
            wait_reason={
                "status": "S",
                "code": "max_storage_jobs",
                "resource": "storage=OtherStore",
            },
            jobs=3,
            jobids=[own[0], *foreign],
        )
        world.director.events.publish("director_note", text="about every job")

    events = await _events(world, world.mine, ".events timeout=0.3", publish)
    assert {e.get("jobid") for e in events if e["event"] == "job_status"} == {own[0]}, events
    (waiting,) = [e for e in events if e["event"] == "queue_waiting"]
    assert waiting["jobids"] == [own[0]] and waiting["jobs"] == 1
    assert waiting["wait_reason"]["resource"] == "storage=(hidden)"
    assert not [e for e in events if e["event"] == "director_note"]
    everything = await _events(world, world.root, ".events timeout=0.3", publish)
    assert {e.get("jobid") for e in everything if e["event"] == "job_status"} == {
        own[1],
        *foreign[2:],
    }
    (waiting,) = [e for e in everything if e["event"] == "queue_waiting"]
    assert waiting["wait_reason"]["resource"] == "storage=OtherStore" and waiting["jobs"] == 3
    assert [e for e in everything if e["event"] == "director_note"]


async def test_events_of_a_foreign_job_are_refused(world: World) -> None:
    refused(
        await world.as_restricted(f".events jobid={world.foreign_job} count=1"), "not permitted"
    )
    refused(
        await world.as_restricted(f".events jobid={world.disguised_job} count=1"), "not permitted"
    )
    refused(await world.as_restricted(".events job=backup-other count=1"), "not permitted")


async def test_status_scheduler_lists_only_runs_of_permitted_resources(world: World) -> None:
    def runs(reply: Reply) -> set[tuple[str, str, str, str]]:
        assert reply.ok, reply.text
        return {
            (r["job"], r["schedule"], r["pool"], r["storage"])
            for r in reply.data["scheduler"]["runs"]
        }

    everything = runs(await world.as_root("status scheduler days=2"))
    assert {
        ("backup-other", "WeeklyCycle", "OtherPool", "OtherStore"),
        ("nightly", "PoolCycle", "OtherPool", "File"),
        ("nightly", "PoolCycle", "Full", "OtherStore"),
        ("nightly", "PoolCycle", "Full", "File"),
        ("secret-nightly", "SecretCycle", "Incremental", "File"),
    } <= everything, everything
    assert "backup-sneaky" in {job for job, *_ in everything}
    mine = runs(await world.as_restricted("status scheduler days=2"))
    assert {job for job, *_ in mine} == {"backup-test-fd", "nightly"}, mine
    assert {(s, p, st) for job, s, p, st in mine if job == "nightly"} == {
        ("PoolCycle", "Full", "File")
    }
    for job, _, pool, storage in mine:
        assert pool in ("Full", "Incremental", "Differential") and storage == "File", job
    refused(await world.as_restricted("status scheduler job=backup-other"), "not permitted")
    refused(await world.as_restricted("status scheduler job=backup-sneaky"), "not permitted")
    assert runs(await world.as_restricted("status scheduler job=nightly days=2"))


async def test_status_dir_data_names_only_permitted_jobs(world: World) -> None:
    own = await world.director.submit(RunRequest(job="backup-test-fd"))
    foreign = await world.director.submit(RunRequest(job="backup-other"))
    try:
        everything = (await world.as_root("status dir")).data
        listed = {j["job_id"] for j in everything["director"]["running_jobs"]}
        assert {own.job_id, foreign.job_id} <= listed, everything
        mine = (await world.as_restricted("status dir")).data
        assert {j["job_id"] for j in mine["director"]["running_jobs"]} == {own.job_id}, mine
        assert foreign.unique not in str(mine)
    finally:
        for jcr in (own, foreign):
            await world.director.cancel(jcr)


# -- what a restore reads: defaults and volumes ----------------------------------------------


async def _backed_up(director: DirectorDaemon, volume: str, storage: str | None) -> int:
    """A job of the console's own (its Job, Client, Pool, FileSet) with one file on `volume`,
    a volume of a permitted pool labeled on `storage` (None: no Storage recorded)."""
    job_id = await _job(director, "backup-test-fd", "test-fd", "Incremental", "QuickstartSet")
    pool_id = await director.db.ensure_pool(PoolRow(name="Incremental"))
    media_id = await director.db.create_media(volume, pool_id, "File", storage)
    attrs = FileAttributes(
        path=b"/data/f",
        type=FileType.REGULAR,
        mode=0o100644,
        uid=0,
        gid=0,
        size=1,
        atime_ns=0,
        mtime_ns=0,
        ctime_ns=0,
    )
    await director.db.insert_files(
        job_id, [FileRow(job_id, b"/data/", b"f", 1, encode_attributes(attrs))]
    )
    await director.db.add_jobmedia(
        JobMediaRow(job_id, media_id, volume, 1, 1, 0, 0, 0, 100, 100, 1, 1)
    )
    return job_id


@pytest.mark.parametrize(
    ("volume_storage", "restore_job", "denied"),
    [
        ("OtherStore", "RestoreFiles", "storage 'OtherStore'"),  # the volume's own Storage
        (None, "RestoreVault", "storage 'OtherStore'"),  # the Restore job's default Storage
        ("File", "RestoreForeignPool", "pool 'OtherPool'"),  # the Restore job's default Pool
    ],
)
async def test_restore_checks_the_storage_and_defaults_it_will_use(
    world: World, volume_storage: str | None, restore_job: str, denied: str
) -> None:
    job_id = await _backed_up(world.director, f"vol-{restore_job}", volume_storage)
    line = f"restore jobid={job_id} all yes where=/tmp/ok restorejob={restore_job}"
    refused(await world.as_restricted(line), denied, "not permitted")
    assert not world.director.queue.jobs  # nothing was queued
    reply = await world.as_root(line)
    assert reply.ok and "Job queued" in reply.text, reply.text


async def test_restore_of_its_own_volume_on_its_own_storage_is_queued(world: World) -> None:
    job_id = await _backed_up(world.director, "vol-own", "File")
    reply = await world.as_restricted(f"restore jobid={job_id} all yes where=/tmp/ok")
    assert reply.ok and "Job queued" in reply.text, reply.text
    (jcr,) = world.director.queue.jobs.values()
    assert (jcr.name, jcr.client, jcr.storage) == ("RestoreFiles", "test-fd", "File")


async def test_a_clients_latest_state_is_chosen_among_the_consoles_jobs_only(world: World) -> None:
    """Without client=, the catalog's backups of other-fd are not offered (nor named)."""
    await _backed_up(world.director, "vol-latest", "File")
    reply = await world.as_restricted("restore all yes where=/tmp/ok")
    assert reply.ok and "Job queued" in reply.text, reply.text
    assert "other-fd" not in reply.text
    refused(await world.as_root("restore all yes where=/tmp/ok"), "choose a client")


async def test_volumes_on_a_foreign_storage_are_not_listed_nor_updated(world: World) -> None:
    pool_id = await world.director.db.ensure_pool(PoolRow(name="Incremental"))
    await world.director.db.create_media("vault-vol", pool_id, "File", "OtherStore")
    listed = await world.as_restricted("list volumes")
    assert "vault-vol" not in {v["volumename"] for v in listed.data["volumes"]}
    assert "vault-vol" in {
        v["volumename"] for v in (await world.as_root("list volumes")).data["volumes"]
    }
    refused(await world.as_restricted("update volume=vault-vol volstatus=Disabled"), "no volume")


async def test_run_and_estimate_check_the_jobs_default_storage(world: World) -> None:
    refused(await world.as_restricted("run job=backup-vault yes"), "storage 'OtherStore'")
    refused(await world.as_restricted("estimate job=backup-vault"), "storage 'OtherStore'")
