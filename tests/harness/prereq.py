"""What to do when a prerequisite (node/openclaw in .cache, dbus, gnome-keyring, openssl) is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip with a one-line reason locally; fail under ``CI=true``, where a skip would hide a gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"prerequisite missing (CI=true): {reason}", pytrace=False)
    pytest.skip(reason)
