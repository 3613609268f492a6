"""Comment-preserving JSON5 edits: a span-aware scanner plus byte-range splices.

Why not load -> modify -> dump: the ``json5`` library cannot keep comments, quoting, trailing
commas or layout (shared/research/ir-anchors.md §C.1), and OpenClaw's own writers already
strip comments. So moltir reads a config twice:

* for **meaning** with ``json5.loads`` (the reference parser), and
* for **where** with the small scanner below, which records the span of every key, value,
  comma and comment.

An edit is a set of splices on the original text: a replaced value keeps everything around
it; an inserted key goes on its own line with the indentation (and key-quoting style) of its
siblings, or inline when the object is written on one line; a deleted key takes its line (or
its comma) with it. The result is re-parsed and must equal the original value with exactly
the requested changes, else nothing is returned.

Refused (``Json5Error``, exit 2, message ``<file>:<line>:<column>: <problem>``): syntax errors,
duplicate keys (JSON5 keeps the last one silently; an operator reading the file would see
the first), and a path that runs through a value that is not an object.

Known limits (documented, tested): a deleted member takes the comments on its own line with
it; deleting the only member of a one-line object gives ``{}`` (so ``{ }`` does not survive
an insert-then-delete round trip).
"""

from __future__ import annotations

import bisect
import copy
import difflib
import functools
import itertools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from moltir.errors import EXIT_STEP_FAILED, EXIT_USAGE, MoltirError

PathKey = str | int
Path = tuple[PathKey, ...]
KeyPath = tuple[str, ...]

_LINE_TERMINATORS: Final = "\n\r\u2028\u2029"
_WS: Final = frozenset(" \t\v\f\xa0\ufeff\n\r\u2028\u2029")
_ESCAPES: Final = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "'": "'", '"': '"', "\\": "\\"}
_ID_START_CATS: Final = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})
_ID_CONTINUE_CATS: Final = _ID_START_CATS | {"Mn", "Mc", "Nd", "Pc"}
_PLAIN_KEY_RE: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_DIGITS: Final = frozenset("0123456789")
_MAX_INLINE: Final = 100  # a rendered object longer than this goes on several lines


class Json5Error(MoltirError):
    """The file cannot be read or edited safely: names file, line and column. Exit 2."""

    def __init__(self, source: str, line: int, column: int, problem: str,
                 hint: str = "fix the file by hand; moltir changed nothing") -> None:
        super().__init__(f"{source}:{line}:{column}: {problem}", hint=hint, exit_code=EXIT_USAGE)
        self.source = source
        self.line = line
        self.column = column
        self.problem = problem


class _Delete:
    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"

    def __reduce__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Value for :func:`set_values`: remove the key (and its comma, and its line when alone on it)."""


# ---- the span tree ---------------------------------------------------------------------------

NodeKind = Literal["object", "array", "string", "number", "literal"]


@dataclass
class Node:
    kind: NodeKind
    start: int  # offset of the first character
    end: int  # offset one past the last character
    value: Any = None  # the plain Python value of this node
    quote: str = ""  # strings: the quote character used
    members: list[Member] = field(default_factory=list)  # objects
    items: list[Item] = field(default_factory=list)  # arrays

    def member(self, key: str) -> Member | None:
        for m in self.members:
            if m.key == key:
                return m
        return None


@dataclass
class Member:
    key: str
    key_start: int
    key_end: int
    key_quote: str  # "" for an identifier key
    value: Node
    comma: int | None = None  # offset of the comma after the value


@dataclass
class Item:
    value: Node
    comma: int | None = None


@dataclass(frozen=True)
class Splice:
    """Replace ``text[start:end]`` by ``new`` (``start == end``: a pure insertion)."""

    start: int
    end: int
    new: str


# ---- scanning --------------------------------------------------------------------------------

def _is_id_start(c: str) -> bool:
    if c.isascii():
        return c.isalpha() or c in "$_"
    return unicodedata.category(c) in _ID_START_CATS


def _is_id_continue(c: str) -> bool:
    if c.isascii():
        return c.isalnum() or c in "$_"
    return c in "\u200c\u200d" or unicodedata.category(c) in _ID_CONTINUE_CATS


class _Scanner:
    def __init__(self, text: str, source: str) -> None:
        self.t = text
        self.n = len(text)
        self.i = 0
        self.source = source
        self.comments: list[tuple[int, int]] = []
        self.line_starts = _line_starts(text)

    # errors ------------------------------------------------------------------------------
    def error(self, pos: int, problem: str) -> Json5Error:
        line, col = _line_col(self.t, self.line_starts, pos)
        return Json5Error(self.source, line, col, problem)

    def _what(self, pos: int) -> str:
        if pos >= self.n:
            return "end of file"
        c = self.t[pos]
        return repr(c) if c.isprintable() else f"U+{ord(c):04X}"

    # whitespace and comments ---------------------------------------------------------------
    def skip(self) -> None:
        t, n, i = self.t, self.n, self.i
        while i < n:
            c = t[i]
            if c in _WS:
                i += 1
            elif c == "/" and i + 1 < n and t[i + 1] == "/":
                j = i + 2
                while j < n and t[j] not in _LINE_TERMINATORS:
                    j += 1
                self.comments.append((i, j))
                i = j
            elif c == "/" and i + 1 < n and t[i + 1] == "*":
                j = t.find("*/", i + 2)
                if j < 0:
                    raise self.error(i, "unterminated /* comment")
                self.comments.append((i, j + 2))
                i = j + 2
            elif not c.isascii() and unicodedata.category(c) == "Zs":
                i += 1
            else:
                break
        self.i = i

    # values ----------------------------------------------------------------------------------
    def value(self, depth: int = 0) -> Node:
        if depth > 500:
            raise self.error(self.i, "nesting too deep")
        i = self.i
        if i >= self.n:
            raise self.error(i, "unexpected end of file, expected a value")
        c = self.t[i]
        if c == "{":
            return self.obj(depth)
        if c == "[":
            return self.arr(depth)
        if c in "\"'":
            return self.string()
        for word, val in (("null", None), ("true", True), ("false", False)):
            if self.t.startswith(word, i):
                self.i = i + len(word)
                return Node("literal", i, self.i, val)
        if c in "+-.0123456789IN":
            return self.number()
        raise self.error(i, f"unexpected {self._what(i)}, expected a value")

    def obj(self, depth: int) -> Node:
        node = Node("object", self.i, -1, {})
        self.i += 1
        seen: dict[str, Member] = {}
        while True:
            self.skip()
            if self.i >= self.n:
                raise self.error(self.i, "unexpected end of file inside an object (missing '}')")
            if self.t[self.i] == "}":
                self.i += 1
                break
            key_start = self.i
            if self.t[key_start] in "\"'":
                key_node = self.string()
                key, quote = str(key_node.value), key_node.quote
            else:
                key, quote = self.ident(), ""
            key_end = self.i
            if key in seen:
                first = _line_col(self.t, self.line_starts, seen[key].key_start)
                raise self.error(key_start, f"duplicate key {key!r} (first defined at line {first[0]}, "
                                            f"column {first[1]}); JSON5 would silently keep the last one")
            self.skip()
            if self.i >= self.n or self.t[self.i] != ":":
                raise self.error(self.i, f"expected ':' after key {key!r}, found {self._what(self.i)}")
            self.i += 1
            self.skip()
            val = self.value(depth + 1)
            member = Member(key, key_start, key_end, quote, val)
            seen[key] = member
            node.members.append(member)
            node.value[key] = val.value
            self.skip()
            if self.i < self.n and self.t[self.i] == ",":
                member.comma = self.i
                self.i += 1
                continue
            self.skip()
            if self.i < self.n and self.t[self.i] == "}":
                self.i += 1
                break
            raise self.error(self.i, f"expected ',' or '}}' after the value of {key!r}, "
                                     f"found {self._what(self.i)}")
        node.end = self.i
        return node

    def arr(self, depth: int) -> Node:
        node = Node("array", self.i, -1, [])
        self.i += 1
        while True:
            self.skip()
            if self.i >= self.n:
                raise self.error(self.i, "unexpected end of file inside an array (missing ']')")
            if self.t[self.i] == "]":
                self.i += 1
                break
            val = self.value(depth + 1)
            item = Item(val)
            node.items.append(item)
            node.value.append(val.value)
            self.skip()
            if self.i < self.n and self.t[self.i] == ",":
                item.comma = self.i
                self.i += 1
                continue
            if self.i < self.n and self.t[self.i] == "]":
                self.i += 1
                break
            raise self.error(self.i, f"expected ',' or ']' in an array, found {self._what(self.i)}")
        node.end = self.i
        return node

    def _hex_digits(self, pos: int, count: int) -> str:
        digits = self.t[pos:pos + count]
        if len(digits) != count or any(d not in _HEX for d in digits):
            raise self.error(pos - 2, "invalid escape sequence")
        return digits

    def _escape(self) -> str:
        """At a backslash: consume the escape, return what it stands for."""
        t = self.t
        i = self.i + 1
        if i >= self.n:
            raise self.error(self.i, "unterminated string")
        c = t[i]
        if c in _ESCAPES:
            self.i = i + 1
            return _ESCAPES[c]
        if c == "\r":
            self.i = i + 2 if t.startswith("\r\n", i) else i + 1
            return ""
        if c in "\n\u2028\u2029":
            self.i = i + 1
            return ""
        if c == "0" and not (i + 1 < self.n and t[i + 1] in _DIGITS):
            self.i = i + 1
            return "\0"
        if c == "x":
            self.i = i + 3
            return chr(int(self._hex_digits(i + 1, 2), 16))
        if c == "u":
            self.i = i + 5
            return chr(int(self._hex_digits(i + 1, 4), 16))
        if c in _DIGITS:
            raise self.error(self.i, f"invalid escape sequence \\{c} (octal escapes are not JSON5)")
        self.i = i + 1
        return c

    def string(self) -> Node:
        start = self.i
        quote = self.t[start]
        self.i += 1
        out: list[str] = []
        t, n = self.t, self.n
        while True:
            j = self.i
            while j < n and t[j] != quote and t[j] != "\\" and t[j] not in "\r\n":
                j += 1
            out.append(t[self.i:j])
            self.i = j
            if j >= n or t[j] in "\r\n":
                raise self.error(start, "unterminated string (a line break inside quotes must be escaped)")
            if t[j] == quote:
                self.i = j + 1
                break
            out.append(self._escape())
        return Node("string", start, self.i, "".join(out), quote=quote)

    def ident(self) -> str:
        start = self.i
        out: list[str] = []
        first = True
        t = self.t
        while self.i < self.n:
            c = t[self.i]
            if c == "\\":
                if not t.startswith("\\u", self.i):
                    break
                out.append(chr(int(self._hex_digits(self.i + 2, 4), 16)))
                self.i += 6
            elif (_is_id_start(c) if first else _is_id_continue(c)):
                out.append(c)
                self.i += 1
            else:
                break
            first = False
        if not out:
            raise self.error(start, f"unexpected {self._what(start)}, expected a key")
        return "".join(out)

    def number(self) -> Node:
        start = self.i
        t, n = self.t, self.n
        i = start
        sign = ""
        if t[i] in "+-":
            sign = t[i]
            i += 1
        if t.startswith("Infinity", i) or t.startswith("NaN", i):
            word = "Infinity" if t.startswith("Infinity", i) else "NaN"
            self.i = i + len(word)
            val: Any = float(("-" if sign == "-" else "") + ("inf" if word == "Infinity" else "nan"))
            return Node("number", start, self.i, val)
        if t.startswith(("0x", "0X"), i):
            j = i + 2
            while j < n and t[j] in _HEX:
                j += 1
            if j == i + 2:
                raise self.error(start, "invalid hexadecimal number")
            self.i = j
            return Node("number", start, j, int(("-" if sign == "-" else "") + t[i + 2:j], 16))
        j = i
        if j < n and t[j] == "0":
            j += 1
            if j < n and t[j] in _DIGITS:
                raise self.error(start, "numbers must not have leading zeros")
        else:
            while j < n and t[j] in _DIGITS:
                j += 1
        int_end = j
        is_float = False
        if j < n and t[j] == ".":
            is_float = True
            j += 1
            while j < n and t[j] in _DIGITS:
                j += 1
        if j < n and t[j] in "eE":
            is_float = True
            j += 1
            if j < n and t[j] in "+-":
                j += 1
            while j < n and t[j] in _DIGITS:
                j += 1
        if j == i or (int_end == i and not is_float):
            raise self.error(start, f"unexpected {self._what(start)}, expected a value")
        if j < n and (_is_id_start(t[j]) or t.startswith("\\u", j)):
            raise self.error(j, f"unexpected {self._what(j)} after a number")
        literal = t[i:j]
        try:
            val = float(literal) if is_float else int(literal)
        except ValueError:
            raise self.error(start, f"invalid number {t[start:j]!r}") from None
        if sign == "-":
            val = -val
        self.i = j
        return Node("number", start, j, val)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer(r"\r\n|\r|\n", text):
        starts.append(m.end())
    return starts


def _line_col(text: str, starts: list[int], pos: int) -> tuple[int, int]:
    idx = bisect.bisect_right(starts, pos) - 1
    col = pos - starts[idx] + 1
    if idx == 0 and text.startswith("\ufeff") and pos > 0:
        col -= 1  # editors do not show the BOM
    return idx + 1, col


# ---- the parsed document ---------------------------------------------------------------------

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


@functools.lru_cache(maxsize=32)
def reference_parse(text: str) -> tuple[Any, str | None]:
    """``json5.loads(text)`` and its error message, cached: the one reference parse of a text.

    json5 is a pure-Python parser (~40-90 ms for a 6 KiB config on 2 cores) and one contain
    run meets the same few texts many times (the editor's checks, ``Install.read_config`` in
    every step and every stop-verify poll): each distinct text is parsed once. The value is
    shared: read-only use, copy before mutating.
    """
    import json5  # lazy: keeps `moltir --help` fast

    try:
        return json5.loads(text), None
    except ValueError as exc:
        return None, str(exc)


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


def same_value(a: Any, b: Any) -> bool:
    """Type-strict deep equality (True is not 1, 1 is not 1.0, NaN equals NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ---- rendering new values --------------------------------------------------------------------

@dataclass(frozen=True)
class _Style:
    key_quote: str  # "" (identifier keys when possible), '"' or "'"
    str_quote: str
    sep: str  # between key and value, e.g. ": "
    newline: str
    unit: str  # one level of indentation
    trailing_commas: bool


def _quote(s: str, q: str) -> str:
    dumped = json.dumps(s, ensure_ascii=False)
    if q == '"':
        return dumped
    inner = dumped[1:-1].replace('\\"', '"').replace("'", "\\'")
    return f"'{inner}'"


def _render_key(key: str, style: _Style) -> str:
    if style.key_quote == "" and _PLAIN_KEY_RE.match(key):
        return key
    return _quote(key, style.key_quote or '"')


def _render(value: Any, style: _Style, indent: str, *, allow_multiline: bool = True) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return _quote(value, style.str_quote)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(v, style, indent, allow_multiline=False) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        parts = [f"{_render_key(str(k), style)}{style.sep}{_render(v, style, indent, allow_multiline=False)}"
                 for k, v in value.items()]
        inline = "{ " + ", ".join(parts) + " }"
        if not allow_multiline or len(indent) + len(inline) <= _MAX_INLINE:
            return inline
        inner = indent + style.unit
        lines = [f"{inner}{_render_key(str(k), style)}{style.sep}{_render(v, style, inner)}"
                 for k, v in value.items()]
        body = ("," + style.newline).join(lines) + ("," if style.trailing_commas else "")
        return "{" + style.newline + body + style.newline + indent + "}"
    raise TypeError(f"cannot write a {type(value).__name__} into a JSON5 config")


def _check_json_value(value: Any, where: KeyPath) -> None:
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list | tuple):
        for v in value:
            _check_json_value(v, where)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{'.'.join(where)}: object keys must be strings, not {k!r}")
            _check_json_value(v, where)
        return
    raise TypeError(f"{'.'.join(where)}: {type(value).__name__} is not a JSON value")


# ---- layout helpers --------------------------------------------------------------------------

class _Layout:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.t = doc.text
        self.unit = self._indent_unit()
        self.newline = doc.newline
        self.str_quote = self._majority(n.quote for n in self._nodes() if n.kind == "string") or '"'
        self.key_quote_doc = self._majority(m.key_quote for n in self._nodes() for m in n.members)
        self.trailing_commas = self._trailing_commas()

    def _nodes(self) -> Iterable[Node]:
        stack = [self.doc.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(m.value for m in node.members)
            stack.extend(i.value for i in node.items)

    @staticmethod
    def _majority(values: Iterable[str]) -> str | None:
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        if not counts:
            return None
        return max(counts, key=lambda k: (counts[k], k == '"'))

    def line_start(self, pos: int) -> int:
        return max(self.t.rfind("\n", 0, pos), self.t.rfind("\r", 0, pos)) + 1

    def indent_of_line(self, pos: int) -> str:
        start = self.line_start(pos)
        j = start
        while j < len(self.t) and self.t[j] in " \t":
            j += 1
        return self.t[start:j]

    def starts_line(self, pos: int) -> bool:
        start = self.line_start(pos)
        return all(c in " \t\ufeff" for c in self.t[start:pos])

    def clean_line_end(self, pos: int) -> int | None:
        """If only blanks and one-line comments follow ``pos`` on its line: offset after the EOL."""
        t, n, i = self.t, len(self.t), pos
        while i < n:
            c = t[i]
            if c in " \t":
                i += 1
            elif t.startswith("//", i):
                while i < n and t[i] not in "\r\n":
                    i += 1
            elif t.startswith("/*", i):
                j = t.find("*/", i + 2)
                if j < 0 or any(ch in t[i:j] for ch in "\r\n"):
                    return None
                i = j + 2
            elif c == "\r":
                return i + 2 if t.startswith("\r\n", i) else i + 1
            elif c == "\n":
                return i + 1
            else:
                return None
        return None

    def _indent_unit(self) -> str:
        counts: dict[str, int] = {}
        for node in self._nodes():
            if node.kind != "object":
                continue
            parent_indent = self.indent_of_line(node.start)
            for m in node.members:
                if self.starts_line(m.key_start):
                    own = self.indent_of_line(m.key_start)
                    if len(own) > len(parent_indent) and own.startswith(parent_indent):
                        unit = own[len(parent_indent):]
                        counts[unit] = counts.get(unit, 0) + 1
        if not counts:
            return "  "
        return max(counts, key=lambda k: (counts[k], -len(k)))

    def _trailing_commas(self) -> bool:
        yes = no = 0
        for node in self._nodes():
            if node.kind == "object" and node.members and self._multiline(node):
                if node.members[-1].comma is not None:
                    yes += 1
                else:
                    no += 1
        return yes > no

    def _multiline(self, node: Node) -> bool:
        return any(c in self.t[node.start:node.end] for c in "\r\n")

    def style_for(self, obj: Node) -> _Style:
        key_quote = self._majority(m.key_quote for m in obj.members)
        if key_quote is None:
            key_quote = self.key_quote_doc if self.key_quote_doc is not None else '"'
        sep = ": "
        for m in reversed(obj.members):
            between = self.t[m.key_end:m.value.start]
            if re.fullmatch(r"[ \t]*:[ \t]*", between):
                sep = between
                break
        return _Style(key_quote, self.str_quote, sep, self.newline, self.unit, self.trailing_commas)

    # -- insertion -------------------------------------------------------------------------
    def insert(self, obj: Node, new: Mapping[str, Any]) -> list[Splice]:
        style = self.style_for(obj)
        t = self.t
        close = obj.end - 1
        if obj.members:
            last = obj.members[-1]
            after = last.comma + 1 if last.comma is not None else last.value.end
            eol = self.clean_line_end(after)
            if eol is not None and eol <= close and self.starts_line(last.key_start):
                indent = self.indent_of_line(last.key_start)
                trailing = last.comma is not None
                splices = [] if trailing else [Splice(last.value.end, last.value.end, ",")]
                splices.append(Splice(eol, eol, self._lines(new, style, indent, trailing)))
                return splices
            # one-line object (or an odd layout): insert inline after the last member
            body = ", ".join(self._member_text(k, v, style, "", inline=True) for k, v in new.items())
            if last.comma is not None:
                return [Splice(last.comma + 1, last.comma + 1, " " + body + ",")]
            return [Splice(last.value.end, last.value.end, ", " + body)]
        # empty object
        if self.starts_line(close) and self._multiline(obj):
            indent = self.indent_of_line(close) + self.unit
            start = self.line_start(close)
            return [Splice(start, start, self._lines(new, style, indent, self.trailing_commas))]
        body = ", ".join(self._member_text(k, v, style, "", inline=True) for k, v in new.items())
        pad_after = "" if t[obj.start + 1:obj.start + 2] in (" ", "\t") else " "
        return [Splice(obj.start + 1, obj.start + 1, " " + body + pad_after)]

    def _member_text(self, key: str, value: Any, style: _Style, indent: str, *, inline: bool = False) -> str:
        rendered = _render(value, style, indent, allow_multiline=not inline)
        return f"{_render_key(key, style)}{style.sep}{rendered}"

    def _lines(self, new: Mapping[str, Any], style: _Style, indent: str, trailing: bool) -> str:
        lines = [indent + self._member_text(k, v, style, indent) for k, v in new.items()]
        text = ("," + style.newline).join(lines)
        return text + ("," if trailing else "") + style.newline

    # -- deletion ----------------------------------------------------------------------------
    def delete(self, obj: Node, index: int) -> list[Splice]:
        m = obj.members[index]
        prev = obj.members[index - 1] if index > 0 else None
        is_last = index == len(obj.members) - 1
        after = m.comma + 1 if m.comma is not None else m.value.end
        eol = self.clean_line_end(after)
        if self.starts_line(m.key_start) and eol is not None and eol <= obj.end - 1:
            splices = [Splice(self.line_start(m.key_start), eol, "")]
            if is_last and m.comma is None and prev is not None and prev.comma is not None:
                splices.append(Splice(prev.comma, prev.comma + 1, ""))
            return splices
        if m.comma is not None:
            if prev is None:
                first = obj.start + 1 if self._only_blank(obj.start + 1, m.key_start) else m.key_start
                return [Splice(first, m.comma + 1, "")]
            assert prev.comma is not None  # every member but the last has a comma
            return [Splice(prev.comma + 1, m.comma + 1, "")]
        if prev is not None and prev.comma is not None:
            return [Splice(prev.comma, m.value.end, "")]
        # the only member, without a comma
        if self._only_blank(obj.start + 1, m.key_start) and self._only_blank(m.value.end, obj.end - 1):
            return [Splice(obj.start + 1, obj.end - 1, "")]
        return [Splice(m.key_start, m.value.end, "")]

    def _only_blank(self, a: int, b: int) -> bool:
        return all(c in " \t" for c in self.t[a:b])


# ---- edits -----------------------------------------------------------------------------------

def _dotted(path: Sequence[PathKey]) -> str:
    return ".".join(str(p) for p in path) if path else "(the top level)"


_KIND_NAMES: Final = {"object": "an object", "array": "an array", "string": "a string",
                      "number": "a number", "literal": "a literal"}


def _kind_name(node: Node) -> str:
    if node.kind == "literal":
        return "null" if node.value is None else "a boolean"
    return _KIND_NAMES[node.kind]


def _validate_edits(edits: Mapping[KeyPath, object]) -> None:
    paths = list(edits)
    for p in paths:
        if not p or not all(isinstance(k, str) for k in p):
            raise TypeError(f"edit paths are non-empty tuples of str, not {p!r}")
        if edits[p] is not DELETE:
            _check_json_value(edits[p], p)
    ordered = sorted(paths)
    for a, b in itertools.pairwise(ordered):
        if b[:len(a)] == a:
            raise ValueError(f"conflicting edits: {_dotted(a)} and {_dotted(b)}")


def compute_splices(doc: Document, edits: Mapping[KeyPath, object]) -> list[Splice]:
    """The splices (relative to ``doc.text``) that make the edits; no edit may be DELETE-mixed
    with an insert into the same object (``set_values`` runs deletions first to avoid that)."""
    _validate_edits(edits)
    if doc.root.kind != "object":
        raise doc.error_at(doc.root.start, f"the top level is {_kind_name(doc.root)}, expected an object")
    layout = _Layout(doc)
    splices: list[Splice] = []
    inserts: dict[int, tuple[Node, dict[str, Any]]] = {}
    for path, value in edits.items():
        node = doc.root
        for depth, key in enumerate(path):
            if node.kind != "object":
                raise doc.error_at(node.start, f"{_dotted(path[:depth])} is {_kind_name(node)}, expected an "
                                               f"object (while setting {_dotted(path)})",
                                   "fix that value by hand; moltir changed nothing")
            index = next((i for i, m in enumerate(node.members) if m.key == key), None)
            if index is None:
                if value is DELETE:
                    break
                _, pending = inserts.setdefault(id(node), (node, {}))
                target = pending
                for k in path[depth:-1]:
                    target = target.setdefault(k, {})
                target[path[-1]] = copy.deepcopy(value)
                break
            member = node.members[index]
            if depth == len(path) - 1:
                if value is DELETE:
                    splices.extend(layout.delete(node, index))
                elif not same_value(member.value.value, value):
                    style = layout.style_for(node)
                    if member.value.kind == "string":
                        style = _Style(style.key_quote, member.value.quote, style.sep, style.newline,
                                       style.unit, style.trailing_commas)
                    indent = layout.indent_of_line(member.key_start)
                    rendered = _render(value, style, indent)
                    splices.append(Splice(member.value.start, member.value.end, rendered))
                break
            node = member.value
    for node, new in inserts.values():
        splices.extend(layout.insert(node, new))
    return splices


def apply_splices(text: str, splices: Iterable[Splice]) -> str:
    ordered = sorted(splices, key=lambda s: (s.start, s.end))
    out: list[str] = []
    pos = 0
    for s in ordered:
        if s.start < pos:
            raise ValueError(f"overlapping edits at offset {s.start}")
        out.append(text[pos:s.start])
        out.append(s.new)
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def expected_value(value: Any, edits: Mapping[KeyPath, object]) -> Any:
    """``value`` with the edits applied the plain way (what the edited text must parse to)."""
    result = copy.deepcopy(value)
    for path, new in edits.items():
        target = result
        missing = False
        for key in path[:-1]:
            if key not in target:
                if new is DELETE:
                    missing = True
                    break
                target[key] = {}
            target = target[key]
        if missing:
            continue
        if new is DELETE:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = copy.deepcopy(new) if not isinstance(new, tuple) else list(new)
    return result


def set_values(text: str, edits: Mapping[KeyPath, object], *, source: str = "config") -> str:
    """Return ``text`` with each path set to its value (``DELETE`` removes it), nothing else changed.

    Comments, quoting of untouched tokens, trailing commas, key order, indentation, CRLF and a
    BOM survive. Raises :class:`Json5Error` for bad input and ``MoltirError`` (exit 1) if the
    re-parsed result is not exactly the intended change. Idempotent.
    """
    _validate_edits(edits)
    doc = parse(text, source=source)
    original = doc.value
    deletes = {p: v for p, v in edits.items() if v is DELETE}
    sets = {p: v for p, v in edits.items() if v is not DELETE}
    out = text
    while deletes:  # one deletion per object per pass: neighbours' commas may be involved
        batch: dict[KeyPath, object] = {}
        for p in list(deletes):
            if all(q[:-1] != p[:-1] for q in batch):
                batch[p] = deletes.pop(p)
        new = apply_splices(out, compute_splices(doc, batch))
        if new != out:
            out = new
            doc = _parse(out, source, check=False)  # the final text is checked against json5 below
    if sets:
        out = apply_splices(out, compute_splices(doc, sets))
    if out == text:
        return text
    got = parse(out, source=source).value
    if not same_value(expected_value(original, edits), got):
        raise MoltirError(f"{source}: refusing to write: the edited text would not parse to exactly the "
                          "intended change",
                          hint="this is a moltir bug, please report it; nothing was written",
                          exit_code=EXIT_STEP_FAILED)
    return out


# ---- diffs -----------------------------------------------------------------------------------

_SECRET_VALUE_RE: Final = re.compile(
    r"""(?P<key>["']?[A-Za-z0-9_$-]*(?:token|secret|password|passwd|key|credential|auth|webhook[_-]?url|"""
    r"""cookie)s?["']?[ \t]*:[ \t]*)(?P<val>"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*')""",
    re.IGNORECASE)


def redact_secrets(line: str) -> str:
    """Mask string values of secret-looking keys (token, password, apiKey, webhookUrl, ...) on one line.

    Over-masking a context line is harmless; the changed lines of a policy edit never match."""
    from moltir.redaction import redact

    masked = _SECRET_VALUE_RE.sub(lambda m: m.group("key") + '"<redacted>"', line)
    return redact(masked)


def unified_diff(before: str, after: str, path: str, *, context: int = 2, redact: bool = True) -> str:
    """A unified diff of two texts, with secret-looking values masked on every line shown."""
    if before == after:
        return ""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"{path} (now)", tofile=f"{path} (after)", n=context)
    out: list[str] = []
    for line in lines:
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        out.append(redact_secrets(line) if redact else line)
    return "".join(out)
