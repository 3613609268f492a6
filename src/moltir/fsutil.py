"""Small filesystem primitives: atomic writes that never leave a half-written file."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError

WRITE_BATCH = 1 << 20


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename, fsync the folder.

    On any failure the temp file is removed and ``path`` is left exactly as it was. ENOSPC and
    EROFS/EACCES become one-line ``MoltirError``s.
    """
    atomic_write_chunks(path, (data,), mode=mode, owner=owner)


def atomic_write_chunks(path: Path, chunks: Iterable[bytes], *, mode: int = 0o600,
                        owner: tuple[int, int] | None = None) -> None:
    """:func:`atomic_write` of the concatenation of ``chunks``, written as they come (a big file
    never has to be held in memory whole)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.moltir-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            pending = bytearray()  # many small chunks (manifest lines) go out in ~1 MiB writes
            for data in chunks:
                pending += data
                if len(pending) >= WRITE_BATCH:
                    _write_all(fd, bytes(pending))
                    pending.clear()
            if pending:
                _write_all(fd, bytes(pending))
            os.fchmod(fd, mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, owner[0], owner[1])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise os_error(exc, f"writing {path}") from None
    except BaseException:  # Ctrl-C mid-write: no temp file is left next to the target
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def os_error(exc: OSError, doing: str) -> MoltirError:
    """Turn an OSError into a one-line MoltirError naming the problem and the fix."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return MoltirError(f"disk full while {doing}", hint="free some space and run the command again",
                           exit_code=EXIT_STEP_FAILED)
    if exc.errno in (errno.EROFS,):
        return MoltirError(f"read-only file system while {doing}", hint="remount it read-write",
                           exit_code=EXIT_ENV)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return MoltirError(f"permission denied while {doing}",
                           hint="run moltir as the user who owns the OpenClaw install", exit_code=EXIT_ENV)
    return MoltirError(f"{exc.strerror or exc} while {doing}", exit_code=EXIT_STEP_FAILED)


def write_json(path: Path, obj: object, *, mode: int = 0o600) -> None:
    import json

    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(), mode=mode)


def make_private_dirs(path: Path) -> list[Path]:
    """Create ``path`` and every missing parent, each with mode 0700; return the folders this call
    created, outermost first (so a caller that fails later can remove exactly those).

    ``Path.mkdir(parents=True)`` gives the parents it creates the umask's mode (0755), which is how a
    case's ``evidence/`` and ``evidence/audit/`` came out world-readable when the deep audit wrote
    ``evidence/audit/<step>/...`` before (or without) the evidence snapshot. Folders that already
    exist are left as they are. OSError propagates (see :func:`ensure_private_dir`).
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made concurrently by another run: not ours to remove
        created.append(folder)
    return created


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and every missing parent with mode 0700 (existing folders are left as they are)."""
    try:
        make_private_dirs(path)
    except OSError as exc:
        raise os_error(exc, f"creating {path}") from None
    return path
