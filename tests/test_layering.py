"""The sans-I/O protocol core never does I/O, reads the clock or talks to AWS (DESIGN.md, style.md §5)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = [
    ROOT / "media_worker" / "sip",
    ROOT / "media_worker" / "rtp",
    ROOT / "media_worker" / "audio",
    ROOT / "media_worker" / "sdp.py",
    ROOT / "media_worker" / "sdp_fields.py",
    ROOT / "media_worker" / "sdes.py",
    ROOT / "media_worker" / "negotiation.py",
]
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "boto3", "botocore", "pydantic", "selectors", "threading"}


def _core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        if entry.is_dir():
            files.extend(sorted(entry.rglob("*.py")))
        elif entry.exists():
            files.append(entry)
    return files


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_exists() -> None:
    assert _core_files(), "the sans-I/O core has no modules"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_io(path: Path) -> None:
    assert not (_imported_roots(path) & FORBIDDEN)


def test_chalicelib_never_imports_the_worker() -> None:
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        assert "media_worker" not in _imported_roots(path), path
