"""Events of the SQLite transcripts (2026.8.2, 2026.9.6), streamed a row at a time.

``transcript_events(session_id, seq, event_json TEXT, created_at, event_zstd BLOB, event_utf8_bytes,
...)``: a row holds either ``event_json`` or a zstd-compressed ``event_zstd`` with the decoded size in
``event_utf8_bytes`` (at most 4 MiB; schema of 2026.9.6's openclaw-agent.sqlite, read with ``.schema
transcript_events`` in a harness home). 2026.9.6 compresses an event of 1 KiB or more
(``MIN_COMPRESS_BYTES=1024`` in dist/worker/sqlite-store.worker.mjs, Node's ``zlib.zstdCompressSync``)
when the blob plus its ``navigation_json`` (~1.2 KiB) saves a tenth: in a harness home a 9 KiB tool call
and a 42 KiB read result were stored compressed, a 2 KiB tool call was not. Those rows are decoded with
``compression.zstd`` (Python 3.14) or its backport ``backports.zstd``, bounded to the recorded size;
when neither is importable, or a blob does not decode to its recorded size, the row becomes an
``undecoded`` event that names it (counted in the summary), never silently dropped.
``session_windows(session_id, session_key, channel)`` gives each session its key and channel when the
table has those columns.

The copy in the case is never opened in place (SQLite may write a ``-shm`` or replay the WAL): the
database and its ``-wal`` are copied to a private temporary folder and opened there.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from moltir import zstdio
from moltir.evidence.sqlite_copy import private_copy
from moltir.triage.events import Context, Event, Source, events_of
from moltir.triage.sources import SqliteCopy


def _decoded(blob: object, size: object, decode: Callable[[bytes, int], bytes] | None) -> tuple[str | None, str]:
    """(event_json, "") from an event_zstd blob, or (None, why not)."""
    data, why = zstdio.decode_row(blob, size, decode)
    if data is None:
        return None, why
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "event_zstd is not UTF-8"


def _sessions(conn: sqlite3.Connection) -> dict[str, tuple[str, str, str]]:
    cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(session_windows)")}
    if not {"session_id", "session_key"} <= cols:
        return {}
    channel = "channel" if "channel" in cols else "''"
    account = "account_id" if "account_id" in cols else "''"
    rows = conn.execute(f"SELECT session_id, session_key, coalesce({channel}, ''), coalesce({account}, '') "  # noqa: S608
                        "FROM session_windows")
    return {str(r[0]): (str(r[1] or ""), str(r[2] or ""), str(r[3] or "")) for r in rows}


def sqlite_events(case_dir: Path, copy: SqliteCopy) -> Iterator[Event]:
    """Every event of one copied agent database, ordered by (session_id, seq)."""
    wal = case_dir / copy.wal.path if copy.wal is not None else None
    with private_copy(case_dir / copy.db.path, wal, prefix="moltir-triage-") as conn:
        yield from _rows(conn, copy)


def _rows(conn: sqlite3.Connection, copy: SqliteCopy) -> Iterator[Event]:
    cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(transcript_events)")}
    if not {"session_id", "seq", "event_json"} <= cols:
        return
    sessions = _sessions(conn)
    zstd = "event_zstd, event_utf8_bytes" if {"event_zstd", "event_utf8_bytes"} <= cols else "NULL, NULL"
    rows = conn.execute(f"SELECT session_id, seq, event_json, {zstd} FROM transcript_events "  # noqa: S608
                        "ORDER BY session_id, seq")
    decode = zstdio.row_decoder()
    for session_id, seq, event_json, blob, size in rows:
        sid = str(session_id)
        key, channel, account = sessions.get(sid, ("", "", ""))
        ctx = Context(session_id=sid, agent_id=copy.db.agent_id, session_key=key, channel=channel, account=account)
        source = Source(copy.db.path, copy.db.sha256, session_id=sid, seq=int(seq))
        if event_json is None:
            event_json, why = _decoded(blob, size, decode) if blob is not None else (None, "row has no event")
        if event_json is None:
            yield Event(kind="undecoded", time="", session_id=sid, source=source, agent_id=ctx.agent_id, text=why)
            continue
        record = None
        with contextlib.suppress(ValueError):
            record = json.loads(event_json)
        if record is None:
            yield Event(kind="undecoded", time="", session_id=sid, source=source, agent_id=ctx.agent_id,
                        text="event_json is not JSON")
            continue
        yield from events_of(record, ctx, source)
