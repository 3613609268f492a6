"""manifest.json read back a file entry at a time (:func:`_manifest_files`): verifying a
20,000-file case does not hold its whole manifest in memory."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple


class _FileRef(NamedTuple):
    """What verify needs of a manifest file entry (a 20,000-file manifest as full dicts is ~60 MiB)."""

    path: str
    size: object
    sha256: object


def _compact_file_entry(pairs: list[tuple[str, Any]]) -> Any:
    """json object hook: a copied file's entry (it has a string ``path`` and a ``sha256``) becomes a
    :class:`_FileRef`; every other object stays a dict."""
    obj = dict(pairs)
    path = obj.get("path")
    if isinstance(path, str) and "sha256" in obj and "source" in obj:
        return _FileRef(path, obj.get("size"), obj.get("sha256"))
    return obj


_WS_RE = re.compile(r"[ \t\n\r]*")


class _JsonStream:
    """A JSON text read a chunk at a time, decoded one value at a time (``json.raw_decode``)."""

    CHUNK = 1 << 20

    def __init__(self, fh: IO[str], hook: Callable[[list[tuple[str, Any]]], Any] = _compact_file_entry) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.decoder = json.JSONDecoder(object_pairs_hook=hook)

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(self.CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            m = _WS_RE.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._fill():
                    continue
                raise
            if end == len(self.buf) and self._fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return obj


def _manifest_files(path: Path, hook: Callable[[list[tuple[str, Any]]], Any] = _compact_file_entry) -> Iterator[Any]:
    """The items of manifest.json's top-level ``files`` list, one at a time (file entries as
    :class:`_FileRef`, or as ``hook`` makes each JSON object): verifying a 20,000-file case does not
    hold its whole manifest in memory. Raises ValueError when the text is not one JSON object."""
    with open(path, encoding="utf-8") as fh:
        js = _JsonStream(fh, hook)
        js.take("{")
        more = js.peek() != "}"
        while more:
            key = js.value()
            js.take(":")
            if key == "files" and js.peek() == "[":
                js.take("[")
                items = js.peek() != "]"
                while items:
                    yield js.value()
                    items = js.peek() == ","
                    if items:
                        js.take(",")
                js.take("]")
            else:
                js.value()
            more = js.peek() == ","
            if more:
                js.take(",")
        js.take("}")
        if js.peek() != "":
            raise ValueError("data after the manifest's object")
