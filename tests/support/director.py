"""A Director configuration for tests that run a DirectorDaemon in-process (no sockets used)."""

from __future__ import annotations

from pathlib import Path

from console.admin import write_installation
from console.templates import Layout


def director_etc(root: Path, catalog_db: Path) -> Path:
    """Write a plain (no TLS) test installation under `root` whose Director keeps its catalog in
    `catalog_db`; the Director's configuration directory, for more resources and the daemon."""
    layout = Layout(
        root=root,
        director="test-dir",
        storage="test-sd",
        client="test-fd",
        console="admin",
        address="127.0.0.1",
        dir_port=1,
        sd_port=2,
        fd_port=3,
        dir_password="p" * 20,
        sd_password="s" * 20,
        fd_password="f" * 20,
        console_password="c" * 20,
        tls=False,
    )
    write_installation(layout)
    etc = layout.etc / "strongroom-dir.d"
    (etc / "catalog" / "MyCatalog.conf").write_text(
        f'Catalog {{\n  Name = MyCatalog\n  DB Driver = sqlite3\n  DB Name = "{catalog_db}"\n}}\n'
    )
    return etc
