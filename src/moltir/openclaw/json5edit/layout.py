"""Where an insertion or a deletion goes: the document's layout (indentation unit, quoting, trailing
commas, one-line or multi-line objects) and the splices that insert or delete members in it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from moltir.openclaw.json5edit.document import Document
from moltir.openclaw.json5edit.render import _render, _render_key, _Style
from moltir.openclaw.json5edit.tree import Node, Splice


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
