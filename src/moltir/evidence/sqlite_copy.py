"""Open a SQLite database copied into a case without touching the copy.

SQLite opened in place may write a ``-shm`` beside the evidence or replay its ``-wal`` into it, and
cannot apply a WAL to a read-only file. So the database and its ``-wal`` are copied to a private
temporary folder (0700, removed afterwards) and opened there. Used by the credential exposure search
and by triage.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


@contextmanager
def private_copy(db: Path, wal: Path | None, *, prefix: str) -> Iterator[sqlite3.Connection]:
    """A connection to a private copy of ``db`` (with ``wal`` beside it as its ``-wal`` when given)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp) / db.name
        shutil.copyfile(db, work)
        if wal is not None:
            shutil.copyfile(wal, f"{work}-wal")
        with closing(sqlite3.connect(work)) as conn:
            yield conn
