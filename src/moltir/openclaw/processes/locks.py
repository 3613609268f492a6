"""The install's gateway lock files, and the live process that wrote one (pid-reuse checked)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from moltir.openclaw.processes.names import WRAPPER_NAMES, is_gateway_name, real_path

if TYPE_CHECKING:
    from moltir.openclaw import Install

LOCK_CLOCK_SLACK_S = 2.0  # lock timestamps and create times come from different clocks/roundings


@dataclass(frozen=True)
class LockFile:
    """One gateway lock file of the install (parsed, not yet verified)."""

    path: str
    pid: int | None
    port: int | None
    config_path: str | None
    state_dir: str | None
    role: str | None
    created: float  # epoch seconds: ``createdAt`` when parseable, else the file's mtime
    start_ticks: int | None  # ``startTime`` (Linux: /proc/PID/stat field 22)


def _parse_time(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_lock(path: Path) -> LockFile | None:
    """Parse one lock file; None when it is unreadable or not a gateway lock payload."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
        mtime = path.stat().st_mtime
    except OSError:
        return None
    try:
        data = json.loads(raw.strip() or "null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    created = _parse_time(data.get("createdAt"))
    port = _as_int(data.get("port"))
    return LockFile(
        path=str(path),
        pid=_as_int(data.get("pid")),
        port=port if port and 0 < port < 65536 else None,
        config_path=data.get("configPath") if isinstance(data.get("configPath"), str) else None,
        state_dir=data.get("stateDir") if isinstance(data.get("stateDir"), str) else None,
        role=data.get("role") if isinstance(data.get("role"), str) else None,
        created=created if created is not None else mtime,
        start_ticks=_as_int(data.get("startTime")),
    )


def install_locks(install: Install) -> list[LockFile]:
    """The gateway lock files that belong to ``install`` (by location, configPath or stateDir)."""
    state_real = real_path(install.state_dir)
    config_real = real_path(install.config_path)
    found: list[LockFile] = []
    seen: set[str] = set()
    for folder in install.lock_dirs():
        try:
            names = sorted(p for p in folder.glob("gateway*.lock") if p.is_file())
        except OSError:
            continue
        inside_state = state_real is not None and (real_path(folder) or "").startswith(state_real + os.sep)
        for path in names:
            real = real_path(path) or str(path)
            if real in seen:
                continue
            seen.add(real)
            lock = read_lock(path)
            if lock is None or (lock.role not in (None, "gateway")):
                continue
            ours = inside_state or (config_real is not None and real_path(lock.config_path) == config_real) or (
                state_real is not None and real_path(lock.state_dir) == state_real)
            if ours:
                found.append(lock)
    return found


def _linux_start_ticks(pid: int) -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def lock_owner(lock: LockFile) -> psutil.Process | None:
    """The live gateway that wrote ``lock``, or None (dead pid, reused pid, not a gateway)."""
    if lock.pid is None or lock.pid <= 0:
        return None
    try:
        proc = psutil.Process(lock.pid)
        name = proc.name()
        if proc.status() == psutil.STATUS_ZOMBIE or not (is_gateway_name(name) or name in WRAPPER_NAMES):
            return None
        if lock.start_ticks is not None:
            ticks = _linux_start_ticks(lock.pid)
            if ticks is not None:
                return proc if ticks == lock.start_ticks else None
        # a process younger than the lock cannot have written it: the pid was reused
        return proc if proc.create_time() <= lock.created + LOCK_CLOCK_SLACK_S else None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None
