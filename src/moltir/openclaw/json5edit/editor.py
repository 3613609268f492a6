"""The splice editor: edits (key path -> value or :data:`DELETE`) become byte-range splices on the
original text; :func:`set_values` applies them and proves the result means exactly the change."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from moltir.errors import EXIT_STEP_FAILED, MoltirError
from moltir.openclaw.json5edit.document import Document, _parse, parse
from moltir.openclaw.json5edit.layout import _Layout
from moltir.openclaw.json5edit.reference import same_value
from moltir.openclaw.json5edit.render import _check_json_value, _render, _Style
from moltir.openclaw.json5edit.tree import DELETE, KeyPath, Node, PathKey, Splice


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
