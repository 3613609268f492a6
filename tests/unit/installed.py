"""The pinned OpenClaw packages `make deps` installs under .cache/, for unit tests that pin a capability
row against a release's own docs or dist: missing fails with CI=true, else skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[2] / ".cache"


def installed_package(version: str) -> Path:
    """``.cache/openclaw-<version>/node_modules/openclaw`` (fails with CI=true, else skips, when missing)."""
    package = CACHE / f"openclaw-{version}" / "node_modules" / "openclaw"
    if not package.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{package} missing (make deps installs the pinned releases)")
        pytest.skip(f"{package} not installed")
    return package
