"""The case journal: append-only JSON lines, hash-chained, fsync'd per record.

Each line is a JSON object with ``seq``, ``ts`` (UTC), ``mono_ns``, ``event``, the event's
fields and ``prev``: the SHA-256 of the previous line's bytes (64 zeros for the first). The
journal head is the SHA-256 of the last line. Every value goes through
:func:`moltir.redaction.redact_value` first: a token never reaches the file.

A crash can leave a partial last line. Opening the journal moves such a tail to
``journal.jsonl.partial-<n>`` and journals ``journal.tail_recovered`` so the chain stays whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltir.errors import EXIT_VERIFY, MoltirError
from moltir.fsutil import os_error
from moltir.redaction import redact_value

GENESIS = "0" * 64


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    head: str
    problems: tuple[str, ...]


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block (in the main thread, where Python runs handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class JournalDamaged(MoltirError):
    """A line other than a crash's partial tail is not a JSON record: edited or corrupted (exit 5)."""

    def __init__(self, path: Path, lineno: int) -> None:
        super().__init__(f"the case journal {path} is damaged: line {lineno} is not a JSON record "
                         "(edited or corrupted)",
                         hint="'moltir journal verify --case-dir CASE' lists every break; the case is kept as "
                              "evidence: leave it as it is ('moltir contain' opens a new case)",
                         exit_code=EXIT_VERIFY)
        self.lineno = lineno


class Journal:
    """Append-only writer. ``path=None`` gives a journal that records nothing (dry runs)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.head = GENESIS
        self.seq = 0
        if path is not None and path.exists():
            self._recover_tail()
            for record, raw in self._read_lines():
                self.head = line_hash(raw)
                self.seq = int(record.get("seq", self.seq)) + 1

    def _read_lines(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        assert self.path is not None
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    raise JournalDamaged(self.path, lineno)
                yield record, raw

    def _recover_tail(self) -> None:
        assert self.path is not None
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        partial = data[cut:]
        n = 0
        while (side := self.path.with_name(f"{self.path.name}.partial-{n}")).exists():
            n += 1
        side.write_bytes(partial)
        with self.path.open("r+b") as fh:
            fh.truncate(cut)
            os.fsync(fh.fileno())
        self._pending_note = {"partial_file": side.name, "partial_sha256": hashlib.sha256(partial).hexdigest()}

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        note = getattr(self, "_pending_note", None)
        if note is not None:
            del self._pending_note
            self.append("journal.tail_recovered", **note)
        record: dict[str, Any] = {"seq": self.seq, "ts": utc_now(), "mono_ns": time.monotonic_ns(),
                                  "event": event}
        record.update(redact_value(None, fields))
        record["prev"] = self.head
        line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode("utf-8")
        # A Ctrl-C / SIGTERM between writing the line and advancing seq/head would leave the next
        # record (run.interrupted) with the same seq and a stale prev: the chain would break. The
        # signals wait until both are done (they are delivered right after).
        with _signals_deferred():
            if self.path is not None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                    try:
                        os.write(fd, line + b"\n")
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    raise os_error(exc, f"writing the journal {self.path}") from None
            self.head = hashlib.sha256(line).hexdigest()
            self.seq += 1
        return record

    def records(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        return [r for r, _ in self._read_lines()]


def verify_chain(path: Path) -> ChainReport:
    """Check every ``prev`` link and ``seq``; report each break by line number."""
    problems: list[str] = []
    prev = GENESIS
    count = 0
    try:
        raw_lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        return ChainReport(False, 0, GENESIS, (f"cannot read {path}: {exc.strerror}",))
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            record = json.loads(raw)
        except ValueError:
            problems.append(f"line {lineno}: not JSON (truncated or edited)")
            prev = line_hash(raw)
            continue
        if record.get("prev") != prev:
            problems.append(f"line {lineno}: hash chain broken (prev does not match line {lineno - 1})")
        if record.get("seq") != count:
            problems.append(f"line {lineno}: seq {record.get('seq')} where {count} was expected")
        prev = line_hash(raw)
        count += 1
    return ChainReport(not problems, count, prev, tuple(problems))
