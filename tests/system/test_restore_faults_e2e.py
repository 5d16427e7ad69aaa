"""A restore survives a bad record, through the real daemons (#11).

A compressed chunk of one file is damaged on the volume (the block checksum recomputed, so the
Storage Daemon delivers it): the File Daemon reports that file and skips it, restores every other
file exactly and still ends the job with its JobEnd; the Director ends the restore E, naming both
counts. An invalid regexwhere is refused before anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from protocol.attributes import decode_attributes
from protocol.records import Stream
from storaged import volume as vol
from tests.system.conftest import Installation
from tests.system.test_backup_restore import messages, run, run_job

JOB = "faults"
VICTIM = "victim.log"


@pytest.fixture(scope="module")
def backed_up(installation: Installation) -> tuple[Installation, Path, dict[str, Any]]:
    src = installation.root / "faults-src"
    (src / "sub").mkdir(parents=True)
    for name in ("a.log", VICTIM, "sub/b.log", "sub/c.log"):
        (src / name).write_text(
            "".join(f"{name} line {i}: compressible text\n" for i in range(20000))
        )
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    (etc / "fileset" / "Faults.conf").write_text(
        "FileSet {\n  Name = Faults\n  Include {\n    Options {\n      Signature = SHA256\n"
        f'      Compression = GZIP\n    }}\n    File = "{src}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{JOB}.conf").write_text(
        f"Job {{\n  Name = {JOB}\n  JobDefs = DefaultJob\n  FileSet = Faults\n}}\n"
    )
    (reply,) = run(installation, "reload")
    assert "reloaded" in json.dumps(reply), reply
    row = run_job(installation, f"run job={JOB} level=Full yes")
    assert row["jobstatus"] == "T", messages(installation)
    return installation, src, row


def _damage_first_chunk(storage: Path, path: bytes) -> tuple[Path, bytes]:
    """Overwrite the start of the file's first compressed chunk and recompute its block's checksum;
    return the volume and its original bytes."""
    for volume in sorted(p for p in storage.iterdir() if p.is_file()):
        try:
            records = vol.VolumeReader(volume).records()
            names: dict[int, bytes] = {}
            for record in records:
                if record.stream == Stream.ATTRIBUTES:
                    names[record.file_index] = decode_attributes(record.payload).path
                elif (
                    record.stream == Stream.COMPRESSED_DATA and names.get(record.file_index) == path
                ):
                    chunk = bytes(record.payload)
                    position = record.position
                    break
            else:
                continue
        except vol.VolumeError:
            continue
        original = volume.read_bytes()
        with volume.open("rb") as f:
            f.seek(position.offset)
            header = vol.read_block_header(f, volume, None)
        assert header is not None and header.session is not None
        start = position.offset + header.size - header.length
        data = bytearray(original[start : start + header.length])
        at = data.find(chunk)
        assert at >= 0
        data[at + 8 : at + 12] = (
            b"\xde\xad\xbe\xef"  # after the 8-byte offset: the zlib header and more
        )
        crc = vol.block_crc(header.number, header.length, *header.session, [bytes(data)])
        damaged = bytearray(original)
        damaged[position.offset : start] = vol.block_header(
            header.number, header.length, *header.session, crc
        )
        damaged[start : start + header.length] = data
        volume.write_bytes(bytes(damaged))
        return volume, original
    raise AssertionError(f"no compressed chunk of {path!r} on any volume in {storage}")


def test_a_corrupt_chunk_costs_one_file_and_ends_the_restore_E(
    backed_up: tuple[Installation, Path, dict[str, Any]], tmp_path: Path
) -> None:
    inst, src, _row = backed_up
    volume, original = _damage_first_chunk(inst.layout.storage_dir, os.fsencode(src / VICTIM))
    try:
        where = tmp_path / "r"
        row = run_job(
            inst,
            f'restore client={inst.layout.client} fileset=Faults where="{where}" select all done yes',
        )
    finally:
        volume.write_bytes(original)
    text = messages(inst)
    assert row["jobstatus"] == "E", text
    restored = where / str(src).lstrip("/")
    assert not (restored / VICTIM).exists()
    for name in ("a.log", "sub/b.log", "sub/c.log"):
        assert (restored / name).read_bytes() == (src / name).read_bytes(), name
    assert not list(where.rglob(".strongroom*"))
    assert f"{src / VICTIM}: corrupt compressed chunk at offset 0" in text, text
    # src, sub and four files were selected; the victim is the one missing
    assert "restored 5 of 6 files the catalog selected" in text, text
    assert "restored 5 of 6 files" in (row.get("comment") or ""), row
    assert row["joberrors"] >= 1, row


def test_an_invalid_regexwhere_is_refused_before_anything_is_written(
    backed_up: tuple[Installation, Path, dict[str, Any]], tmp_path: Path
) -> None:
    inst, _src, _row = backed_up
    where = tmp_path / "r"
    row = run_job(
        inst,
        f'restore client={inst.layout.client} fileset=Faults where="{where}" '
        'regexwhere="!faults(!x!" select all done yes',
    )
    assert row["jobstatus"] == "E"
    assert "invalid regexwhere" in messages(inst)
    assert not where.exists()


def test_a_where_the_client_cannot_create_ends_E_before_any_data_is_read(
    backed_up: tuple[Installation, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The File Daemon's writer is rejected: the FD ends the job at once with the reason and never
    opens the Storage Daemon's read session, which ends without sending anything."""
    inst, _src, _row = backed_up
    (tmp_path / "a-file").write_text("not a directory\n")
    where = tmp_path / "a-file" / "r"
    row = run_job(
        inst,
        f'restore client={inst.layout.client} fileset=Faults where="{where}" select all done yes',
    )
    text = messages(inst)
    assert row["jobstatus"] == "E", text
    assert (
        f"restore rejected: cannot create {where}: Not a directory; nothing was restored" in text
    ), text
    assert "could not be restored" not in text, text
    assert row["jobfiles"] == 0 and row["jobbytes"] == 0, row
    (status,) = run(inst, "status storage=File")
    assert status["storage"]["running_jobs"] == [], status
