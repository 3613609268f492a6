"""Where moltir keeps its own state: cases, locks, drill history, the per-install index.

``MOLTIR_HOME`` > ``$XDG_STATE_HOME/moltir`` > ``~/.local/state/moltir``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def moltir_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("MOLTIR_HOME"):
        return Path(env["MOLTIR_HOME"]).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base).expanduser() / "moltir"


def cases_root(env: Mapping[str, str] | None = None) -> Path:
    return moltir_home(env) / "cases"


def locks_dir(env: Mapping[str, str] | None = None) -> Path:
    return moltir_home(env) / "locks"


def installs_dir(env: Mapping[str, str] | None = None) -> Path:
    return moltir_home(env) / "installs"


def drills_dir(env: Mapping[str, str] | None = None) -> Path:
    return moltir_home(env) / "drills"


def unwritable(folder: Path) -> str | None:
    """Why moltir could not create files under ``folder`` (it or its nearest existing parent is not a
    writable folder), or None. Writes nothing: for ``--dry-run``'s prediction of the real run."""
    probe = Path(folder)
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None
