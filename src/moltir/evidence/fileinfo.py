"""What the manifest and the skip reasons say of a file or folder: its stat fields and times,
its owner, its kind, why it could not be read, whether its folder is world-writable."""

from __future__ import annotations

import errno
import functools
import os
import pwd
import stat
import time
from pathlib import Path
from typing import Any


def _iso(ns: int) -> str:
    """UTC ISO 8601 with microseconds (``2026-11-30T23:46:14.123456Z``), truncated from ``ns``."""
    sec, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{rest // 1000:06d}Z"


@functools.lru_cache(maxsize=64)
def _owner_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _stat_fields(st: os.stat_result) -> dict[str, Any]:
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid,
            "owner": _owner_name(st.st_uid), "inode": st.st_ino, "dev": st.st_dev, "nlink": st.st_nlink,
            "atime_ns": st.st_atime_ns, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "atime": _iso(st.st_atime_ns), "mtime": _iso(st.st_mtime_ns), "ctime": _iso(st.st_ctime_ns)}


def _changed(a: os.stat_result, b: os.stat_result, copied: int) -> bool:
    return ((a.st_size, a.st_mtime_ns, a.st_ctime_ns) != (b.st_size, b.st_mtime_ns, b.st_ctime_ns)
            or copied != a.st_size)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _cannot(doing: str, exc: OSError, st: os.stat_result) -> str:
    """Why an entry could not be read; for a permission problem, whose it is and what to do.

    A file in the user's own state dir owned by root is typically left by a gateway once run
    with sudo: the reason names the owner and mode so the user can take it deliberately.
    """
    if exc.errno not in (errno.EACCES, errno.EPERM):
        return f"cannot {doing}: {exc.strerror}"
    owner = _owner_name(st.st_uid) or f"uid {st.st_uid}"
    return (f"cannot {doing}: permission denied (owned by {owner}, mode {stat.S_IMODE(st.st_mode):04o}); "
            f"not collected: run moltir as {owner} to take it")


def _world_writable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IWOTH)
    except OSError:
        return False


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
