"""The configuration reference names every variable the code reads, so docs and code cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib import settings as control_settings
from emulator.meetings_api import ENDPOINT_ENV_VAR
from media_worker.settings import ENV

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _control_plane_variables() -> set[str]:
    return {
        value
        for name in control_settings.__all__
        if name.isupper() and isinstance(value := getattr(control_settings, name), str)
    }


def _documented(path: Path) -> set[str]:
    """Every `NAME` written as inline code in a Markdown file."""
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", path.read_text(encoding="utf-8")))


def test_control_plane_variables_are_known() -> None:
    assert {"DIAL_PLAN", "CALLS_TABLE", "DIAL_QUEUE_URL", "MAX_DIAL_ATTEMPTS"} <= _control_plane_variables()


@pytest.mark.parametrize(
    "variable",
    sorted(_control_plane_variables() | set(ENV.values()) | {ENDPOINT_ENV_VAR}),
)
def test_configuration_reference_documents_the_variable(variable: str) -> None:
    assert variable in _documented(DOCS / "configuration.md")


def test_documented_worker_variables_exist() -> None:
    """A worker variable in the reference's worker table is one the worker reads (or Powertools does)."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    section = text.split("## Media worker", 1)[1].split("## Local runs", 1)[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE)
    assert rows
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(rows) <= set(ENV.values()) | powertools
    assert set(ENV.values()) <= set(rows)


@pytest.mark.parametrize("page", ["deployment.md", "operations.md", "configuration.md", "architecture.md"])
def test_docs_pages_exist_and_link_to_existing_pages(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([a-z-]+\.md)(?:#[a-z0-9-]+)?\)", text):
        assert (DOCS / target).is_file(), f"{page} links to missing {target}"
