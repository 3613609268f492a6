"""What triage writes: ``timeline.jsonl`` (Timesketch's JSONL import format), ``timeline.csv`` and
``findings.json``, each written to a temporary name and renamed into place.

Timesketch imports JSONL where every line is an object with ``message``, ``datetime`` (ISO 8601)
and ``timestamp_desc``; any other key becomes a field (timesketch docs, "Import from JSON or CSV").
An event with no time of its own (an undecodable line) gets the Unix epoch and ``time_unknown``.
CSV cells that a spreadsheet would run as a formula (``= + - @``) are prefixed with ``'``, and control
characters are shown as ``\\xNN`` escapes. What a tool
returned is not copied out of the evidence (a result may be a private key the agent read): the
timeline gives its size and ``content_sha256``; secrets moltir knows of are redacted.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from moltir.redaction import redactor
from moltir.text import shown
from moltir.triage.events import SHOWN, Event
from moltir.triage.rules import Rule

EPOCH: Final = "1970-01-01T00:00:00+00:00"
CSV_COLUMNS: Final = ("datetime", "timestamp_desc", "message", "kind", "session_id", "agent_id", "channel", "role",
                      "sender", "tool", "command", "path", "url", "size", "is_error", "rules", "level",
                      "source_path", "source_sha256", "source_line", "source_row")
WRITE_BUFFER: Final = 1 << 20  # bytes a timeline file buffers between writes
_DESC: Final = {"message": "Message Recorded", "tool_call": "Tool Call Recorded",
                "tool_result": "Tool Result Recorded", "undecoded": "Record Not Decoded"}


@functools.lru_cache(maxsize=1 << 14)  # a record's events share its time; sessions repeat times
def iso_utc(text: str) -> str | None:
    """An ISO 8601 time in UTC (``+00:00``), or None when ``text`` is not one."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


# the fields that carry text from the transcript (shortened for display, registered secrets redacted)
_FREE_TEXT: Final = ("message", "text", "command", "path", "url", "sender", "action", "session_key")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def timeline_row(event: Event, hits: Sequence[Rule]) -> dict[str, Any]:
    when = iso_utc(event.time) if event.time else None
    row: dict[str, Any] = {"message": event.summary(), "datetime": when or EPOCH,
                           "timestamp_desc": _DESC.get(event.kind, "Recorded")}
    row.update(event.match_fields())  # read, not kept: the row is a new dict
    row.pop("time", None)
    row.update(event.extra)
    if event.kind == "tool_result":
        row.pop("text", None)  # what a tool returned (a key it read ...) stays in the evidence: size and hash only
    elif len(row.get("text", "")) > 1000:
        row["text"] = row["text"][:1000] + "…"
    clean = redactor()  # the registered secrets, looked up once per row
    for key in _FREE_TEXT:
        value = row.get(key)
        if isinstance(value, str):
            row[key] = clean(value if len(value) <= SHOWN else value[:SHOWN] + "…")
    if when is None:
        row["time_unknown"] = True
    src = event.source
    row["source_path"] = src.path
    row["source_sha256"] = src.sha256
    if src.line is not None:
        row["source_line"] = src.line
    if src.seq is not None:
        row["source_row"] = f"{src.session_id}#{src.seq}"
    if hits:
        row["rules"] = ",".join(r.id for r in hits)
        row["level"] = max((r.level for r in hits), key=("informational", "low", "medium", "high", "critical").index)
        row["tag"] = [r.id for r in hits]
    return row


def _cell(value: object) -> str:
    """A CSV cell: control characters made visible (a CSV gets ``cat``-ed to terminals too), and a
    leading ``= + - @`` defused for spreadsheets."""
    text = "" if value is None else (json.dumps(value) if isinstance(value, bool) else str(value))
    if _CONTROL.search(text):
        text = shown(text, 1 << 20, newlines=True)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _text(value: object) -> str:
    return "" if value is None else ("true" if value else "false") if isinstance(value, bool) else str(value)


_FORMULA: Final = frozenset("=+-@")
# what makes a CSV cell quoted (the csv module's QUOTE_MINIMAL with "\r\n" line ends): a comma, a quote, a line break
_CSV_SPECIAL: Final = re.compile(r'[,"\r\n]')
_CSV_QUOTED: Final = re.compile(r'["\r\n]')
# either of the two: a control character (escaped first) or a character that gets its cell quoted
_PLAIN_SPECIAL: Final = re.compile(_CONTROL.pattern[:-1] + ',"]')
_JSON: Final = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # json.dumps(row, ...) without a new encoder a row


def csv_line(cells: Sequence[str]) -> str:
    """One CSV row of :data:`CSV_COLUMNS` cells as ``csv.writer`` (excel dialect) writes it, without its line
    end: a cell with a comma, a quote or a line break quoted (quotes doubled). Faster than the csv module for
    a row at a time, and the same text (tests/unit/test_triage_perf.py compares them)."""
    line = ",".join(cells)
    if line.count(",") == len(cells) - 1 and not _CSV_QUOTED.search(line):
        return line  # no cell needs quoting (the usual row)
    return ",".join(['"' + c.replace('"', '""') + '"' if _CSV_SPECIAL.search(c) else c for c in cells])


def formatted(row: dict[str, Any]) -> tuple[str, str]:
    """A timeline row as its JSONL line and its CSV line (neither with its line terminator; the CSV
    line may hold a quoted cell with a line break or a tab).

    The same cells as :func:`_cell` gives, cheaper: one search for control characters over the whole
    row (a row without any, the usual case, skips the escaping of each cell)."""
    get = row.get
    texts = ["" if (v := get(c)) is None else v if v.__class__ is str else _text(v) for c in CSV_COLUMNS]
    if not _PLAIN_SPECIAL.search("".join(texts)):  # the usual row: no control character, nothing to quote
        return _JSON.encode(row), ",".join(["'" + t if t and t[0] in _FORMULA else t for t in texts])
    if _CONTROL.search("".join(texts)):
        texts = [shown(t, 1 << 20, newlines=True) if _CONTROL.search(t) else t for t in texts]
    return _JSON.encode(row), csv_line(["'" + t if t and t[0] in _FORMULA else t for t in texts])


class TimelineWriter:
    """timeline.jsonl and timeline.csv, one row per event, written as the events stream by."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows = 0
        self._jsonl: IO[str] = open(out_dir / ".timeline.jsonl.tmp", "w", encoding="utf-8",  # noqa: SIM115
                                    buffering=WRITE_BUFFER)
        self._csv_fh: IO[str] = open(out_dir / ".timeline.csv.tmp", "w", encoding="utf-8", newline="",  # noqa: SIM115
                                     buffering=WRITE_BUFFER)
        self._csv = csv.writer(self._csv_fh)
        self._csv.writerow(CSV_COLUMNS)

    def write(self, event: Event, hits: Sequence[Rule]) -> None:
        self.write_lines(*formatted(timeline_row(event, hits)))

    def write_lines(self, json_text: str, csv_text: str) -> None:
        """One row as :func:`formatted` gives it."""
        self._jsonl.write(json_text + "\n")
        self._csv_fh.write(csv_text + "\r\n")
        self.rows += 1

    def __enter__(self) -> TimelineWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._jsonl.close()
        self._csv_fh.close()
        for name in ("timeline.jsonl", "timeline.csv"):
            tmp = self.out_dir / f".{name}.tmp"
            if et is None:
                os.replace(tmp, self.out_dir / name)
            else:
                tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
