"""The rules' globs (``*``/``?``/``[..]`` within one path segment, ``**`` any number of segments),
with a root's placeholders filled in, matched against paths relative to the root."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from moltir.evidence.roots import Root
from moltir.evidence.rules import RULES, Rule


@dataclass(frozen=True)
class _Pattern:
    rule: Rule
    text: str
    segs: tuple[str, ...]
    rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rx", _pattern_regex(self.segs))

    def match(self, rel: tuple[str, ...]) -> bool:
        return self.rx.match("/".join(rel)) is not None

    def match_path(self, rel: str) -> bool:
        """:meth:`match` of a relative path given as one string (``a/b/c``): one regex match."""
        return self.rx.match(rel) is not None

    def may_descend(self, rel_dir: tuple[str, ...]) -> bool:
        """Could a file below the folder ``rel_dir`` match?"""
        return _prefix(self.segs, rel_dir)


def _prefix(pat: tuple[str, ...], rel: tuple[str, ...]) -> bool:
    if not rel:
        return bool(pat)
    if not pat:
        return False
    if pat[0] == "**":
        return True
    return fnmatch.fnmatchcase(rel[0], pat[0]) and _prefix(pat[1:], rel[1:])


def _match(pat: tuple[str, ...], rel: tuple[str, ...]) -> bool:
    """The reference matcher, a segment at a time (``**``: any number of folders); the walk uses
    :func:`_pattern_regex`, which tests pin to agree with this."""
    if not pat:
        return not rel
    if pat[0] == "**":
        return any(_match(pat[1:], rel[i:]) for i in range(len(rel) + 1)) if len(pat) > 1 else bool(rel)
    return bool(rel) and fnmatch.fnmatchcase(rel[0], pat[0]) and _match(pat[1:], rel[1:])


def _segment_regex(seg: str) -> str:
    """A regex for one fnmatch segment (``*``, ``?``, ``[...]``) that never matches a ``/``.

    A bracket expression is translated by fnmatch itself (ranges, ``!``, a reversed range that
    matches nothing), behind a ``(?!/)`` guard."""
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and seg[j] == "!":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(c))
                continue
            translated = fnmatch.translate(seg[i - 1:j + 1])  # "(?s:<class>)\Z"
            out.append(f"(?!/){translated.removesuffix(chr(92) + 'Z')}")
            i = j + 1
        else:
            out.append(re.escape(c))
    return "".join(out)


def _pattern_regex(segs: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex for a rule pattern over a ``/``-joined relative path, with :func:`_match`'s
    meaning: a trailing ``**`` is one or more names, any other ``**`` zero or more folders."""
    parts: list[str] = []
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        if seg == "**":
            parts.append("[^/]+(?:/[^/]+)*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(seg) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z", re.S)


def _patterns_for(root: Root, product: str) -> list[_Pattern]:
    out: list[_Pattern] = []
    for rule in RULES:
        if rule.root != root.key or product not in rule.products:
            continue
        texts = [rule.pattern]
        for name in re.findall(r"\{(\w+)\}", rule.pattern):
            values = root.placeholders.get(name, ())
            texts = [t.replace("{" + name + "}", v) for t in texts for v in values]
        out.extend(_Pattern(rule, t, tuple(t.split("/"))) for t in texts)
    return out
