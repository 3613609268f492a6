"""Where credential values appear in a sealed case's copies: transcripts (JSONL, SQLite
``transcript_events``), gateway logs, the journal export, config backups, shell histories of the gateway's
user, files of the agent's workspace, any other copied text file.

Read-only over the case: text files are read a line at a time from the case; a copied SQLite store
(with its ``-wal``, which holds what was not yet checkpointed) is opened from a private temporary copy
(0700 folder, removed afterwards) because SQLite cannot apply a WAL to a read-only file. Values are
held in memory only and matched as bytes (also in their JSON-escaped form); a hit records the source
path, the line or row, and how it was found, never the value. ``.gz`` files are read decompressed,
``.jsonl.zst`` archives (2026.9's cold transcripts) and the compressed ``event_zstd`` of large
``transcript_events`` rows (a big tool result: an agent that read a config file) through
:mod:`moltir.zstdio` (when no zstd module is importable, each is named in ``notes``). Values shorter than
:data:`MIN_LEN` are not matched (too many false hits).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, cast

from moltir import zstdio
from moltir.evidence import masks as masking
from moltir.evidence.sqlite_copy import private_copy

MIN_LEN: Final = 8
MAX_LINE: Final = 4 << 20
OVERLAP: Final = 4096
_HOW: Final[Mapping[str, str]] = {"transcript": "transcript line", "log": "gateway log line",
                                  "journal": "systemd journal record", "config": "config copy",
                                  "persistence": "file line", "state": "file line",
                                  "history": "shell history line", "workspace": "agent workspace file line"}


@dataclass(frozen=True)
class Needle:
    id: str
    value: str = field(repr=False)
    # where the value lives, not an exposure: source paths, or "<source>#<table>" for a SQLite store's table
    skip: frozenset[str] = frozenset()

    def forms(self) -> tuple[bytes, ...]:
        raw = self.value.encode("utf-8")
        escaped = json.dumps(self.value)[1:-1].encode("utf-8")
        return (raw,) if escaped == raw else (raw, escaped)


@dataclass
class Scan:
    hits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    masks: dict[str, list[str]] = field(default_factory=dict)  # mask -> credential ids (empty: not searched)
    masks_searched: bool = False
    unattributed: list[dict[str, Any]] = field(default_factory=list)  # masked spans of no known credential

    def add(self, cid: str, hit: dict[str, Any]) -> None:
        self.hits.setdefault(cid, []).append(hit)

    def add_masked(self, data: bytes, where: dict[str, Any]) -> None:
        """The masked spans of one transcript record (:mod:`moltir.evidence.masks`), when searched."""
        if not self.masks_searched:
            return
        for hit in masking.masked_spans(data, self.masks):
            rec = {**where, "how": masking.HOW, "time": hit.time, "tool": hit.tool}
            if not hit.ids:
                self.unattributed.append(rec)
            for cid in hit.ids:
                self.add(cid, {**rec, "matches": len(hit.ids)} if len(hit.ids) > 1 else rec)


def _copied(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in manifest.get("files", []) if isinstance(f, Mapping) and isinstance(f.get("path"), str)
            and str(f.get("category")) != "case"]


def scan_case(case_dir: Path, needles: Iterable[Needle], *, masks: bool = False) -> Scan:
    """Every place a needle's value appears among the case's copied files; with ``masks`` (a release
    that masks secrets in transcripts) also the masked spans in transcripts' tool results."""
    usable = [n for n in needles if len(n.value) >= MIN_LEN]
    scan = Scan(masks_searched=masks)
    for n in usable:
        mask = masking.mask_of(n.value)
        if masks and mask is not None and n.id not in scan.masks.get(mask, []):
            scan.masks.setdefault(mask, []).append(n.id)
    try:
        manifest = json.loads((case_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        scan.notes.append("no readable manifest.json: the case has no sealed evidence to search")
        return scan
    entries = _copied(manifest)
    by_source = {str(f.get("source")): f for f in entries}
    for entry in entries:
        source, rel = str(entry.get("source")), str(entry["path"])
        if source.endswith(("-wal", "-shm", "-journal")) and source.rsplit("-", 1)[0] in by_source:
            continue  # read with its database
        if source.endswith(".zst") and not zstdio.available():
            scan.notes.append(f"not searched (a zstd archive, and no zstd module here): {source}")
            continue
        scan.files += 1
        if _is_sqlite(case_dir / rel):
            wal = by_source.get(source + "-wal")
            _scan_sqlite(case_dir / rel, case_dir / str(wal["path"]) if wal else None, entry, usable, scan)
        else:
            _scan_text(case_dir / rel, entry, usable, scan)
    return scan


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes; ``.gz`` and ``.zst`` decompressed in process, as a stream (nothing decompressed
    is written anywhere)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield cast("IO[bytes]", fh)
    elif path.name.endswith(".zst"):
        with zstdio.open_stream(path) as fh:
            yield fh
    else:
        with path.open("rb") as fh:
            yield fh


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) with a line read at most :data:`MAX_LINE` bytes at a time (a file without
    newlines is not loaded whole); a piece of a longer line starts with the last :data:`OVERLAP` bytes
    of the previous piece, so a value across the cut is still found."""
    number, carry = 1, b""
    while True:
        piece = fh.readline(MAX_LINE)
        if not piece:
            return
        yield number, carry + piece
        if piece.endswith(b"\n"):
            number, carry = number + 1, b""
        else:
            carry = piece[-OVERLAP:]


def _scan_text(path: Path, entry: Mapping[str, Any], needles: list[Needle], scan: Scan) -> None:
    rel = str(entry["path"])
    todo = [(n, n.forms()) for n in needles if str(entry.get("source")) not in n.skip]
    transcript = entry.get("category") == "transcript" and scan.masks_searched
    if not todo and not transcript:
        return
    how = _HOW.get(str(entry.get("category")), "file line")
    if str(entry.get("rule", "")).startswith("{config}."):
        how = "config backup"
    elif entry.get("rule") == "workspace/*.md":  # the state dir's rule for the agent's prompt files
        how = _HOW["workspace"]
    try:
        with _open(path) as fh:
            for number, line in _lines(fh):
                for needle, forms in todo:
                    if any(form in line for form in forms):
                        scan.add(needle.id, {"path": entry.get("source"), "case_path": rel, "line": number,
                                             "how": how})
                if transcript:
                    scan.add_masked(line, {"path": entry.get("source"), "case_path": rel, "line": number})
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        scan.notes.append(f"could not read {rel}: {exc}")


def _scan_sqlite(db: Path, wal: Path | None, entry: Mapping[str, Any], needles: list[Needle], scan: Scan) -> None:
    todo = [(n, n.forms()) for n in needles]
    try:
        with private_copy(db, wal if wal is not None and wal.is_file() else None, prefix="moltir-exposure-") as conn:
            conn.text_factory = bytes
            tables = [r[0].decode() for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in tables:
                _scan_table(conn, name, entry, todo, scan)
    except sqlite3.Error as exc:
        scan.notes.append(f"could not read {entry['path']} as SQLite: {exc}")


def _scan_table(conn: sqlite3.Connection, name: str, entry: Mapping[str, Any],
                todo: list[tuple[Needle, tuple[bytes, ...]]], scan: Scan) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    try:
        cursor = conn.execute(f"SELECT rowid, * FROM {quoted}")  # noqa: S608 -- a name from sqlite_master, quoted
    except sqlite3.Error:
        return  # WITHOUT ROWID or virtual tables: skipped
    cols = [d[0] for d in cursor.description][1:]
    source = str(entry.get("source"))
    todo = [(n, f) for n, f in todo if source not in n.skip and f"{source}#{name}" not in n.skip]
    event_at = cols.index("event_json") if name == "transcript_events" and "event_json" in cols else None
    zstd_at = cols.index("event_zstd") if name == "transcript_events" and "event_zstd" in cols else None
    size_at = cols.index("event_utf8_bytes") if zstd_at is not None and "event_utf8_bytes" in cols else None
    decode = zstdio.row_decoder() if zstd_at is not None else None
    for row in cursor:
        cells = [c for c in row[1:] if isinstance(c, bytes)]
        if zstd_at is not None and row[1 + zstd_at] is not None:
            size = row[1 + size_at] if size_at is not None else None
            cells.append(_row_content(row, cols, zstd_at, size, decode, entry, scan))
        for needle, forms in todo:
            if any(form in cell for cell in cells for form in forms):
                scan.add(needle.id, {"path": entry.get("source"), "case_path": entry["path"],
                                     "row": _row_name(name, row, cols),
                                     "how": "transcript_events row" if name == "transcript_events"
                                     else f"SQLite table {name} row"})
        if event_at is not None:
            scan.add_masked(_event_of(row, event_at, zstd_at, cells), {
                "path": entry.get("source"), "case_path": entry["path"], "row": _row_name(name, row, cols)})


def _event_of(row: tuple[Any, ...], event_at: int, zstd_at: int | None, cells: list[bytes]) -> bytes:
    """A transcript_events row's record: ``event_json``, else the decoded ``event_zstd`` (the last cell)."""
    event = row[1 + event_at]
    if isinstance(event, bytes):
        return event
    return cells[-1] if zstd_at is not None and row[1 + zstd_at] is not None and cells else b""


def _row_content(row: tuple[Any, ...], cols: list[str], zstd_at: int, size: object, decode: Any,
                 entry: Mapping[str, Any], scan: Scan) -> bytes:
    """The decoded ``event_zstd`` of a transcript_events row (b"" and a note when it does not decode)."""
    data, why = zstdio.decode_row(row[1 + zstd_at], size, decode)
    if data is None:
        scan.notes.append(f"not searched: {entry['path']} {_row_name('transcript_events', row, cols)}: {why}")
    return data or b""


def _row_name(table: str, row: tuple[Any, ...], cols: list[str]) -> str:
    values = dict(zip(cols, row[1:], strict=False))
    if table == "transcript_events" and "session_id" in values and "seq" in values:
        sid = values["session_id"]
        sid = sid.decode("utf-8", "replace") if isinstance(sid, bytes) else sid
        return f"transcript_events session_id={sid} seq={values['seq']}"
    return f"{table} rowid={row[0]}"
