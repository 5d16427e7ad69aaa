"""The catalog: Bareos-shaped tables behind one interface (SQLite embedded; PostgreSQL next)."""

from director.catalog.models import FileRow, JobMediaRow, JobRow, MediaRow, NewJob, PoolRow
from director.catalog.sqlite import (
    FINAL_STATUSES,
    Catalog,
    CatalogError,
    CatalogWriteError,
    DuplicateJobName,
    open_catalog,
)

__all__ = [
    "FINAL_STATUSES",
    "Catalog",
    "CatalogError",
    "CatalogWriteError",
    "DuplicateJobName",
    "FileRow",
    "JobMediaRow",
    "JobRow",
    "MediaRow",
    "NewJob",
    "PoolRow",
    "open_catalog",
]
