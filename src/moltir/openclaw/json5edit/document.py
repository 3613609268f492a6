"""The parsed document: the plain value of a JSON5 text plus the span tree, and the entry points that
scan a text (:func:`parse`, checked against the reference parse; :func:`scan_value`, the scanner alone)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from moltir.errors import EXIT_USAGE, MoltirError
from moltir.openclaw.json5edit.reference import reference_parse, same_value
from moltir.openclaw.json5edit.scanner import _line_col, _Scanner
from moltir.openclaw.json5edit.tree import Item, Json5Error, KeyPath, Member, Node, PathKey


@dataclass
class Document:
    """A parsed JSON5 text: the plain value plus where every part of it is written."""

    text: str
    source: str
    root: Node
    comments: list[tuple[int, int]]
    _starts: list[int] = field(repr=False, default_factory=list)

    @property
    def value(self) -> Any:
        return self.root.value

    @property
    def newline(self) -> str:
        m = re.search(r"\r\n|\r|\n", self.text)
        return m.group(0) if m else "\n"

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        return _line_col(self.text, self._starts, offset)

    def error_at(self, offset: int, problem: str, hint: str = "") -> Json5Error:
        line, col = self.position(offset)
        return Json5Error(self.source, line, col, problem, *((hint,) if hint else ()))

    def _walk(self, path: Sequence[PathKey]) -> tuple[Node, Member | Item | None, int]:
        """Deepest node on ``path``: (node, the member/item that holds it, depth reached)."""
        node = self.root
        holder: Member | Item | None = None
        for depth, key in enumerate(path):
            nxt: Member | Item | None = None
            if node.kind == "object" and isinstance(key, str):
                nxt = node.member(key)
            elif (node.kind == "array" and isinstance(key, int) and not isinstance(key, bool)
                  and -len(node.items) <= key < len(node.items)):
                nxt = node.items[key]
            if nxt is None:
                return node, holder, depth
            node, holder = nxt.value, nxt
        return node, holder, len(path)

    def node_at(self, path: Sequence[PathKey]) -> Node | None:
        node, _, depth = self._walk(path)
        return node if depth == len(path) else None

    def has(self, path: Sequence[PathKey]) -> bool:
        return self._walk(path)[2] == len(path)

    def locate(self, path: Sequence[PathKey]) -> tuple[int, int]:
        """(line, column) of the value at ``path``, or of the deepest existing parent."""
        node, _, _ = self._walk(path)
        return self.position(node.start)

    def key_location(self, path: Sequence[PathKey]) -> tuple[int, int]:
        """(line, column) of the key of the last element of ``path`` (an item: its value)."""
        node, holder, _ = self._walk(path)
        if isinstance(holder, Member):
            return self.position(holder.key_start)
        return self.position(node.start)

    def missing_prefix(self, path: KeyPath) -> KeyPath | None:
        """The shortest prefix of ``path`` that does not exist (what an insert would create)."""
        _, _, depth = self._walk(path)
        return None if depth == len(path) else path[:depth + 1]


@functools.lru_cache(maxsize=8)
def scan_value(text: str) -> Any:
    """The value of ``text`` read by moltir's own scanner alone, without the json5 reference parse.

    For READING a config (its port, its token, what a step would change): the scanner equals
    ``json5.loads`` (property-tested in tests/unit/test_json5edit.py) and is some 50 times faster,
    which matters before the gateway is signalled. Every EDIT still goes through :func:`parse`,
    whose reference parse proves the text means what moltir thinks. Raises :class:`Json5Error`
    where the scanner refuses (a syntax error, duplicate keys). Shared value: copy before mutating.
    """
    return _parse(text, "config", check=False).value


def parse(text: str, *, source: str = "config") -> Document:
    """Scan ``text`` with positions; the value equals ``json5.loads(text)`` or this raises."""
    return _parse(text, source, check=True)


def _parse(text: str, source: str, *, check: bool) -> Document:
    """``check=False`` skips the reference parse (intermediate texts whose result is checked anyway)."""
    scanner = _Scanner(text, source)
    scanner.skip()
    if scanner.i >= scanner.n:
        raise Json5Error(source, 1, 1, "the file is empty (no JSON5 value)")
    root = scanner.value()
    scanner.skip()
    if scanner.i < scanner.n:
        raise scanner.error(scanner.i, f"unexpected {scanner._what(scanner.i)} after the end of the document")
    if not check:
        return Document(text, source, root, scanner.comments, scanner.line_starts)
    reference, err = reference_parse(text)
    if err is not None:
        m = re.search(r":(\d+) .*column (\d+)", err)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        raise Json5Error(source, line, col, f"not valid JSON5: {err}")
    if not same_value(reference, root.value):
        raise MoltirError(f"{source}: moltir's JSON5 scanner reads this file differently from json5; "
                          "refusing to edit it",
                          hint="please report this file's shape; moltir changed nothing", exit_code=EXIT_USAGE)
    return Document(text, source, root, scanner.comments, scanner.line_starts)
