"""The span-aware JSON5 scanner: the value of a text plus where every part of it is written.

On contain's critical path (every config read goes through it, bench/bench_json5.py measures it):
the loops work on local copies of the text and the offset; keep calls out of them.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from typing import Any, Final

from moltir.openclaw.json5edit.tree import Item, Json5Error, Member, Node

_LINE_TERMINATORS: Final = "\n\r\u2028\u2029"
_WS: Final = frozenset(" \t\v\f\xa0\ufeff\n\r\u2028\u2029")
_ESCAPES: Final = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "'": "'", '"': '"', "\\": "\\"}
_ID_START_CATS: Final = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"})
_ID_CONTINUE_CATS: Final = _ID_START_CATS | {"Mn", "Mc", "Nd", "Pc"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_DIGITS: Final = frozenset("0123456789")


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
