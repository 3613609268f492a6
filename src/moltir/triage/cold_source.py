"""Events of cold transcript archives (2026.9.x ``agents/<id>/sessions/cold/<sha256>.jsonl.zst``).

With ``session.maintenance.coldStorage`` on, 2026.9.6 moves old transcripts out of SQLite into zstd
archives (docs/reference/database-schemas/layout.md). The format, read from the package
(dist/session-cold-storage-worker-*.mjs writes it, dist/session-cold-storage-codec-*.mjs validates it):
one JSON record per line, ``{"kind": "header", "version": 1, "sessionId", "generation"}`` first, then
``{"kind": "event", "row": {"seq", "event_json", "created_at"}}`` per transcript row in ``seq`` order,
then ``identity`` / active-event records (not events here). ``event_json`` is the same transcript record
as a ``transcript_events`` row.

The archive is decompressed as a stream (:func:`moltir.zstdio.open_stream`: nothing decompressed is
written anywhere); every event cites the archive (path, manifest SHA-256), the line of the
decompressed stream and the row (session id, seq). A damaged archive, a line that is not JSON, or no
zstd module here: an ``undecoded`` event naming it, never a silent gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from moltir import zstdio
from moltir.triage.events import Context, Event, Source, events_of
from moltir.triage.jsonlines import NOT_JSON, json_lines
from moltir.triage.sources import CaseFile


def _undecoded(f: CaseFile, session_id: str, why: str, line: int | None = None) -> Event:
    return Event(kind="undecoded", time="", session_id=session_id, source=Source(f.path, f.sha256, line=line),
                 agent_id=f.agent_id, text=why)


def cold_events(case_dir: Path, f: CaseFile) -> Iterator[Event]:
    """Every transcript event of one copied cold archive, in archive order."""
    session_id = f.path.rsplit("/", 1)[-1].removesuffix(".jsonl.zst")  # until the header names it
    try:
        stream = zstdio.open_stream(case_dir / f.path)
    except (RuntimeError, OSError) as exc:
        yield _undecoded(f, session_id, f"cold archive not read: {exc}")
        return
    lineno = 0
    try:
        with stream:
            for lineno, record in json_lines(stream):
                if record is NOT_JSON:
                    yield _undecoded(f, session_id, "cold archive line is not JSON", lineno)
                    continue
                if not isinstance(record, dict):
                    continue
                if record.get("kind") == "header" and isinstance(record.get("sessionId"), str):
                    session_id = record["sessionId"]
                elif record.get("kind") == "event":
                    yield from _event(f, session_id, lineno, record.get("row"))
    except (OSError, EOFError, ValueError) as exc:  # a damaged frame part-way
        yield _undecoded(f, session_id, f"cold archive damaged after line {lineno}: {exc}", lineno + 1)


def _event(f: CaseFile, session_id: str, lineno: int, row: object) -> Iterator[Event]:
    seq = row.get("seq") if isinstance(row, dict) else None
    text = row.get("event_json") if isinstance(row, dict) else None
    source = Source(f.path, f.sha256, line=lineno, session_id=session_id,
                    seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None)
    try:
        record = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        record = None
    if record is None:
        yield Event(kind="undecoded", time="", session_id=session_id, source=source, agent_id=f.agent_id,
                    text="cold archive event_json is not JSON")
        return
    yield from events_of(record, Context(session_id=session_id, agent_id=f.agent_id), source)
