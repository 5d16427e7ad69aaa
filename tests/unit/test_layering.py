"""The import layers hold (STYLE.md 1-2): protocol imports nothing of ours; common imports only
protocol; the daemons never import each other; the console never imports the Director; bench never
imports tests. Read from the source with `ast`, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset(
    {"protocol", "common", "director", "storaged", "filed", "console", "bench", "tests"}
)
# What each top-level package may import of ours (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "common": frozenset({"protocol"}),
    "director": frozenset({"protocol", "common"}),
    "storaged": frozenset({"protocol", "common"}),
    "filed": frozenset({"protocol", "common"}),
    "console": frozenset({"protocol", "common"}),
    "bench": frozenset({"protocol", "common", "console", "director", "storaged", "filed", "bench"}),
}
# Crossings still being removed would be listed here by name (none left): the test fails on any
# crossing that is not listed.
KNOWN: frozenset[tuple[str, str]] = frozenset()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def _crossings() -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for imported in _imports(path) - {package} - allowed:
                out.add((module, imported))
    return out


def test_no_new_import_crossings() -> None:
    new = sorted(_crossings() - KNOWN)
    assert not new, "imports that cross the layers (STYLE.md): " + ", ".join(
        f"{m} imports {p}" for m, p in new
    )


@pytest.mark.parametrize(
    "source",
    [
        "import director.daemon\n",
        "from storaged import volume\n",
        "def f():\n    from filed.restore import RestoreWriter\n",
    ],
)
def test_the_check_sees_imports(tmp_path: Path, source: str) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports(path) & {"director", "storaged", "filed"}
