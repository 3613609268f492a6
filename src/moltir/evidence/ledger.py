"""The OpenClaw audit ledger exported into the case: ``evidence/ledger/audit_events.jsonl``.

The ledger (``openclaw audit``, capability ``audit_ledger``) is the ``audit_events`` table of the shared
state database ``<state>/state/openclaw.sqlite`` (2026.7.35: ``dist/openclaw-state-db-*.js``; 2026.9.6:
``dist/openclaw-state-db-read-connection-*.mjs`` adds message columns; docs/gateway/audit.md "Storage,
retention, and migration"). It keeps 30 days, at most 100,000 rows, and **expired rows are deleted at
gateway start-up**: ``restore`` itself prunes it. So the snapshot exports every row while it still can.

It is read from the COPY in the case (the consistent ``evidence/sqlite-backup/`` copy when the gateway
was running, else the byte copy with its ``-wal``), through a private temporary copy: never from a
gateway that is up, never by ``openclaw audit`` (which would start a client and page through an RPC).
One JSON object per row, in ``sequence`` order, every column as stored plus ``occurred_at_utc`` (the
``occurred_at`` Unix milliseconds as ISO 8601). The export is hashed into the manifest like every copy,
and the manifest's ``audit_ledger`` says whether the release has a ledger (and where that answer came
from), which database the rows were read from and how many there were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from moltir.evidence.collector import _Collector
from moltir.evidence.copier import _DestError, _mkdirs
from moltir.evidence.layout import EVIDENCE
from moltir.evidence.sqlite_copy import private_copy

TABLE: Final = "audit_events"
LEDGER_DIR: Final = "ledger"
EXPORT: Final = f"{EVIDENCE}/{LEDGER_DIR}/{TABLE}.jsonl"
STATE_DB: Final = "/state/openclaw.sqlite"


def _state_db(col: _Collector) -> dict[str, Any] | None:
    """The case's copy of the shared state database: the consistent (backup API) copy when there is one."""
    found = [e for e in col.sqlite if str(e["source"]).endswith(STATE_DB) and e.get("path")]
    backup = [e for e in found if e.get("root") == "sqlite-backup"]
    chosen = backup or found
    return chosen[0] if chosen else None


def _iso(ms: object) -> str | None:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return None


def _rows(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    cur = conn.execute(f"SELECT * FROM {TABLE} ORDER BY sequence")  # noqa: S608 -- a constant
    names = [d[0] for d in cur.description]
    for values in cur:
        row = {n: (v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, values, strict=True)}
        row["occurred_at_utc"] = _iso(row.get("occurred_at"))
        yield row


def _has_table(conn: sqlite3.Connection) -> bool:
    cols = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({TABLE})")}
    return {"sequence", "occurred_at", "kind"} <= cols


def export_ledger(col: _Collector, has_ledger: bool | None, answer_source: str) -> None:
    """Export the ledger rows from the case's copy of the state database; ``col.ledger`` says what happened."""
    info: dict[str, Any] = {"release_has_ledger": has_ledger, "answer_source": answer_source, "table": TABLE,
                            "exported": None, "rows": 0, "read_from": None}
    col.ledger = info
    db = _state_db(col)
    if db is None:
        info["note"] = ("no ledger in this release" if has_ledger is False
                        else "no state/openclaw.sqlite copied: nothing to export")
        return
    info["read_from"] = db["path"]
    wal = col.case_dir / f"{db['path']}-wal"
    try:
        with private_copy(col.case_dir / db["path"], wal if wal.is_file() else None,
                          prefix="moltir-ledger-") as conn:
            if not _has_table(conn):
                info["note"] = ("no ledger in this release" if has_ledger is False
                                else f"the state database has no {TABLE} table (ledger never written)")
                return
            _write(col, conn, info, db)
    except sqlite3.Error as exc:
        info["note"] = f"the ledger could not be read from the copy: {exc} (the database copy is in the case)"


def _write(col: _Collector, conn: sqlite3.Connection, info: dict[str, Any], db: Mapping[str, Any]) -> None:
    """Stream the rows to a temporary file (0400), hash on the way, rename into place, record it."""
    _mkdirs(col.case_dir, f"{EVIDENCE}/{LEDGER_DIR}", col.made_dirs)
    final = col.case_dir / EXPORT
    tmp = final.with_name(final.name + ".partial")
    digest, size, rows = hashlib.sha256(), 0, 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
        with os.fdopen(fd, "wb") as fh:
            for row in _rows(conn):
                line = (json.dumps(row, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
                digest.update(line)
                fh.write(line)
                size += len(line)
                rows += 1
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _DestError(exc, EXPORT) from None
        raise
    info.update(exported=EXPORT, rows=rows)
    col.add({"path": EXPORT, "source": f"{db['source']}#{TABLE}", "root": LEDGER_DIR, "category": "ledger",
             "size": size, "sha256": digest.hexdigest(), "changed_during_copy": False,
             "exported_from": db["path"], "rows": rows,
             "export": f"every row of {TABLE}, ordered by sequence, one JSON object per line"})
    col.bytes += size
