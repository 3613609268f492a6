"""One moltir run at a time per OpenClaw state dir.

An ``flock`` on ``<moltir state>/locks/<install key>.lock``. The kernel frees it when the holder
exits, even by ``kill -9``, so a crash never leaves a stale lock. The file holds the holder's pid
and start time so the loser can say who holds it (exit 4).

The CLI takes the lock before it reads anything a run depends on (the case, the restore
record) and before it asks for confirmation, and the engine takes it again around the steps:
within one process the lock is re-entrant, so the inner ``run_lock`` just nests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from moltir.errors import EXIT_ENV, EXIT_LOCKED, EXIT_STEP_FAILED, MoltirError
from moltir.fsutil import ensure_private_dir, os_error

_HELD: dict[str, int] = {}  # lock file -> nesting depth, for this process


@contextlib.contextmanager
def run_lock(lock_dir: Path, key: str, what: str, command: str, *, anchor: Path | None = None) -> Iterator[None]:
    """Hold the run lock for the install ``key``; exit 4 naming the holder when another run has it.

    ``anchor`` (the OpenClaw state dir) is flocked too, through a read-only descriptor on the
    folder itself: nothing is written there, and two moltir runs with different moltir homes
    (``MOLTIR_HOME``, ``XDG_STATE_HOME``, another user's sudo environment) still exclude each other
    on the same install.
    """
    path = lock_dir / f"{key}.lock"
    try:
        ensure_private_dir(lock_dir)
    except MoltirError as exc:
        raise _unwritable(exc) from None
    held = os.path.realpath(path)
    if held in _HELD:  # this process holds it already (the CLI around the engine)
        _HELD[held] += 1
        try:
            yield
        finally:
            _HELD[held] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise _unwritable(os_error(exc, f"opening the run lock {path}")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise MoltirError(
                f"another moltir run holds the lock for {what}: pid {holder.get('pid', '?')}, "
                f"'{holder.get('command', '?')}' started {holder.get('started_at', '?')}",
                hint="wait for it to finish (the lock frees itself when that process exits)",
                exit_code=EXIT_LOCKED) from None
        with _anchor_lock(anchor, what):
            info = {"pid": os.getpid(), "command": command,
                    "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(info).encode(), 0)
            except OSError as exc:
                raise _unwritable(os_error(exc, f"writing the run lock {path}")) from None
            _HELD[held] = 1
            try:
                yield
            finally:
                del _HELD[held]
    finally:
        os.close(fd)


def _unwritable(exc: MoltirError) -> MoltirError:
    """The lock could not be written (disk full, read-only moltir home): nothing has run yet, so it is
    exit 3 (environment not ready) saying nothing was changed, never an internal-error crash."""
    return MoltirError(f"{exc.message}; nothing was changed", hint=exc.hint or "fix the cause and run again",
                       exit_code=EXIT_ENV if exc.exit_code == EXIT_STEP_FAILED else exc.exit_code)


@contextlib.contextmanager
def _anchor_lock(anchor: Path | None, what: str) -> Iterator[None]:
    try:
        dfd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY) if anchor is not None else None
    except OSError:  # no state dir yet (a config-only install): the moltir-home lock alone
        dfd = None
    if dfd is None:
        yield
        return
    try:
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MoltirError(
                f"another moltir run holds the lock for {what}, from another moltir home "
                "(MOLTIR_HOME / XDG_STATE_HOME, or another user's environment)",
                hint="wait for it to finish ('pgrep -af moltir' shows it); the lock frees itself when it exits",
                exit_code=EXIT_LOCKED) from None
        yield
    finally:
        os.close(dfd)


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data) if data else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def current_holder(lock_dir: Path, key: str) -> dict[str, object] | None:
    """Who holds the lock right now (pid, command, started_at), or None; read-only.

    Never takes the lock itself (a probe could make a run that starts at that moment exit 4):
    the holder record must name a live process that was already running when it wrote it.
    """
    path = lock_dir / f"{key}.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        holder = _read_holder(fd)
    finally:
        os.close(fd)
    pid = holder.get("pid")
    started = holder.get("started_at")
    if not isinstance(pid, int) or not isinstance(started, str) or pid == os.getpid():
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
        alive = proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return None
    try:
        wrote = dt.datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return holder if alive and created <= wrote + 1 else None
