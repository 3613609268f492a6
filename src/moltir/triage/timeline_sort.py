"""The timeline in time order (UTC) across sessions and sources, in bounded memory.

Events arrive in source order (JSONL files by path, then each database by session and seq). Each
timeline row is kept as one line ``KEY\\tJSON``, where KEY sorts as text: ``0`` + the time in UTC
(``YYYY-MM-DDTHH:MM:SS.ffffff``) + the event's arrival number (12 digits), or ``1`` + the arrival
number for an event with no time of its own. Rows with the same time therefore keep source order,
and rows without a time come last, in source order (they carry ``time_unknown: true``).

Rows are held in memory up to :data:`RUN_BYTES`, then sorted and spilled as a run to a private
temporary folder (mode 0700) inside the output folder; at the end the runs are merged
(:func:`heapq.merge`, at most :data:`FAN_IN` files open at once: more runs are merged in passes) and
the folder is removed, whatever happens. Memory is one run plus a line per open run, whatever the
case size.
"""

from __future__ import annotations

import functools
import heapq
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final

RUN_BYTES: Final = 16 << 20
FAN_IN: Final = 256  # runs merged at once: 256 x 16 MiB = 4 GiB of rows (a 1 GiB case) in one pass


def sort_key(when: str | None, arrival: int) -> str:
    """The text that orders a row: by UTC time (``when`` as :func:`outputs.iso_utc` gives it), then arrival."""
    if when is None:
        return f"1{arrival:012d}"
    return f"{_time_key(when)}{arrival:012d}"


@functools.lru_cache(maxsize=1 << 14)  # the events of a record (and often of a turn) share a time
def _time_key(when: str) -> str:
    dt = datetime.fromisoformat(when).astimezone(UTC)
    return f"0{dt:%Y-%m-%dT%H:%M:%S.%f}"


def _unpack(field: str) -> str:
    if field[:1] == "J":
        text: str = json.loads(field[1:])
        return text
    return field[1:]


class SortedRows:
    """Add ``(key, row)`` pairs with :meth:`add`; :meth:`rows` gives the rows back sorted by key."""

    def __init__(self, parent: Path, run_bytes: int = RUN_BYTES, fan_in: int = FAN_IN) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=".timeline-sort-", dir=parent))
        self._run_bytes, self._fan_in = run_bytes, max(2, fan_in)
        self._buf: list[str] = []
        self._size = 0
        self._runs: list[Path] = []
        self.spilled = 0  # runs written (for tests and the curious)

    def add(self, key: str, *fields: str) -> None:
        """One row: ``key`` (no tab or line break) and its fields, any text (a field with a tab or a line
        break, such as a quoted multi-line CSV cell, is kept JSON-encoded in the run)."""
        parts = [key]
        for f in fields:  # a plain field as "P" + itself, one with a tab or a line break JSON-encoded
            parts.append("J" + json.dumps(f) if "\t" in f or "\n" in f or "\r" in f else "P" + f)
        parts[-1] += "\n"
        line = "\t".join(parts)
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self._run_bytes:
            self._spill()

    def _spill(self) -> None:
        if not self._buf:
            return
        self._buf.sort()
        path = self._dir / f"run-{len(self._runs):06d}"
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(self._buf)
        self._runs.append(path)
        self.spilled += 1
        self._buf, self._size = [], 0

    def _merge_into(self, paths: list[Path], target: Path) -> None:
        with ExitStack() as stack, open(target, "w", encoding="utf-8", newline="\n") as out:
            files = [stack.enter_context(open(p, encoding="utf-8", newline="\n")) for p in paths]
            out.writelines(heapq.merge(*files))
        for p in paths:
            p.unlink()

    def lines(self) -> Iterator[str]:
        """Every ``KEY\\tJSON`` line in key order."""
        if not self._runs:  # everything fitted in memory: no file at all
            self._buf.sort()
            yield from self._buf
            return
        self._spill()
        while len(self._runs) > self._fan_in:  # merge passes keep open files bounded
            head, self._runs = self._runs[:self._fan_in], self._runs[self._fan_in:]
            merged = self._dir / f"merged-{self.spilled:06d}"
            self.spilled += 1
            self._merge_into(head, merged)
            self._runs.append(merged)
        with ExitStack() as stack:
            files = [stack.enter_context(open(p, encoding="utf-8", newline="\n")) for p in self._runs]
            yield from heapq.merge(*files)

    def rows(self) -> Iterator[list[str]]:
        """Each row's fields (as given to :meth:`add`) in key order."""
        for line in self.lines():
            fields = line[:-1].split("\t")
            yield [f[1:] if f[0] == "P" else _unpack(f) for f in fields[1:]]

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
        self._buf = []

    def __enter__(self) -> SortedRows:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
