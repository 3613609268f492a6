"""Consistent copies of the live SQLite stores (the sqlite3 online backup API), taken when the
gateway was running during the snapshot, into ``evidence/sqlite-backup/``."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Mapping
from typing import Any

from moltir.evidence.collector import _Collector
from moltir.evidence.copier import _copy_fd, _DestError, _mkdirs
from moltir.evidence.layout import evidence_rel


def _sqlite_backup(col: _Collector, entry: Mapping[str, Any]) -> None:
    """A consistent copy of a live SQLite db with the online backup API (gateway running)."""
    import sqlite3
    from urllib.parse import quote

    source = str(entry["source"])
    rel = evidence_rel(source, "sqlite-backup")
    _mkdirs(col.case_dir, rel.rpartition("/")[0], col.made_dirs)
    tmp = col.case_dir / f"{rel}.partial"
    try:
        src = sqlite3.connect(f"file:{quote(source)}?mode=ro", uri=True, timeout=10)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                # self-contained copy: opening it later must not create -wal/-shm beside it
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(exc, sqlite3.Error):
            raise
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
            raise _DestError(OSError(errno.ENOSPC, "database or disk is full"), rel) from None
        col.skipped.append({"source": source, "category": "sqlite",
                            "reason": f"consistent copy (sqlite3 backup API) failed: {exc}"})
        return
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            digest, size = _copy_fd(fd, None, col.buf, rel, 0, None)
            os.fchmod(fd, 0o400)
        finally:
            os.close(fd)
        tmp.rename(col.case_dir / rel)
    except OSError as exc:
        raise _DestError(exc, rel) from None
    col.add({"path": rel, "source": source, "root": "sqlite-backup", "category": "sqlite",
                      "size": size, "sha256": digest, "changed_during_copy": False,
                      "sqlite_copy": "consistent (sqlite3 online backup API, gateway running; "
                                     "journal_mode set to DELETE on the copy)",
                      "consistent_copy_of": entry.get("path")})
    col.bytes += size
