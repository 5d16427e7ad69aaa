"""The catalog facade: typed async methods that run on one catalog thread, by name on the backend."""

from __future__ import annotations

import threading
from pathlib import Path

from director.catalog import Catalog, NewJob
from director.catalog.service import CatalogService


async def test_methods_run_on_one_thread_and_keep_their_order(tmp_path: Path) -> None:
    def opener() -> Catalog:
        catalog = Catalog(tmp_path / "c.db")
        catalog.migrate()
        return catalog

    service = CatalogService(opener)
    await service.open()
    threads: set[str] = set()

    def where(_catalog: Catalog) -> None:
        threads.add(threading.current_thread().name)

    client = await service.ensure_client("fd1")
    job_ids = [
        await service.create_job(
            NewJob(
                job=f"j.{n}",
                name="j",
                type="B",
                level="F",
                client_id=client,
                fileset_id=None,
                pool_id=None,
                sched_time=1.0,
                priority=10,
            )
        )
        for n in range(5)
    ]
    for job_id in job_ids:
        await service.update_job(job_id, JobStatus="T")
        await service.run(where)
    rows = [await service.get_job(job_id) for job_id in job_ids]
    assert [r.status for r in rows if r is not None] == ["T"] * 5
    assert len(threads) == 1 and next(iter(threads)).startswith("catalog")
    assert service.backend.get_job(job_ids[0]) == rows[0]
    service.close()


async def test_a_method_calls_the_backend_by_name(tmp_path: Path) -> None:
    calls: list[tuple[str, tuple[object, ...]]] = []

    class Fake:
        def get_job(self, job_id: int) -> None:
            calls.append(("get_job", (job_id,)))

        def update_job(self, /, job_id: int, **columns: object) -> None:
            calls.append(("update_job", (job_id, columns)))

        def close(self) -> None:
            pass

    service = CatalogService(Fake)  # type: ignore[arg-type]  # a backend by duck typing
    assert await service.get_job(7) is None
    await service.update_job(7, JobStatus="E", self="a column may be called self")
    assert calls == [
        ("get_job", (7,)),
        ("update_job", (7, {"JobStatus": "E", "self": "a column may be called self"})),
    ]
    service.close()


def test_the_facade_offers_every_catalog_method() -> None:
    """A backend method the facade lacks would be reachable only through strings again."""
    import inspect

    internal = {"version", "migrate", "close"}
    # Generators and contexts of several steps: used inside `run` and `batches`, on the thread.
    internal |= {"chain_reader", "walk_chain"}
    public = {
        name
        for name, _ in inspect.getmembers(Catalog, inspect.isfunction)
        if not name.startswith("_")
    }
    missing = sorted(public - internal - set(vars(CatalogService)))
    assert not missing, f"CatalogService lacks {missing}: add them with _on_thread"
