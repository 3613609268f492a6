"""Rendering new values as JSON5 text in the style of the document they go into (key and string
quoting, the key/value separator, indentation, trailing commas)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from moltir.openclaw.json5edit.tree import KeyPath

_PLAIN_KEY_RE: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_MAX_INLINE: Final = 100  # a rendered object longer than this goes on several lines


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
