"""Unit-test helper: an Install whose capability answers are those of a given release.

``Install.caps`` is computed on first use from the package, ``--version`` or the config; unit
tests pin it instead (no openclaw package in a unit test)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from moltir.openclaw import Install, Package
from moltir.openclaw import capabilities as capmod

EARLY = "2026.1.29"
CURRENT = "2026.9.6"


def pin(install: Install, release: str | None, product: str = "openclaw") -> Install:
    """A copy of ``install`` answering as ``release`` (None: an unknown release) of ``product``."""
    package = Package(product, release, Path("/nonexistent/package")) if release and product == "clawdbot" \
        else install.package
    out = dataclasses.replace(install, package=package)
    out.__dict__["caps"] = capmod.for_install(product, release, "pinned by the test", package_root=None,
                                              state_dir=install.state_dir)
    return out
