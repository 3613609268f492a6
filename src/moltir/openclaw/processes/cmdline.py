"""Command lines for records and messages: credential flags hidden, shortened to one line."""

from __future__ import annotations

import re
from collections.abc import Sequence

_SECRET_FLAGS = ("--token", "--password", "--api-key", "--bot-token", "--secret")
_WS_RE = re.compile(r"\s+")


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """argv without trailing blanks (retitled processes) and with credential flag values hidden."""
    args = list(argv)
    while args and not args[-1]:
        args.pop()
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag, eq, _value = arg.partition("=")
        if flag in _SECRET_FLAGS:
            if eq:
                out.append(f"{flag}=<redacted>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def one_line(text: str, limit: int = 160) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_command(argv: Sequence[str], limit: int = 120) -> str:
    """A command line for one message line that keeps what names it wherever it was installed: long
    paths lose their folders ("…/respawner.py"); a line still too long keeps the program and the script
    it runs (its first argument that is a path), and is cut in the middle of the rest."""
    words = []
    for word in argv:
        word = _WS_RE.sub(" ", word).strip()
        if "/" in word and len(word) > 32 and not word.startswith("-") and " " not in word:
            word = "…/" + "/".join(word.rstrip("/").split("/")[-2:])
        words.append(word)
    words = [w for w in words if w]
    text = " ".join(words)
    if len(text) <= limit or not words:
        return text
    core_n = 1 + next((i for i, w in enumerate(words[1:3], 1) if "/" in w and " " not in w), 0)
    core = " ".join(words[:core_n])
    rest = " ".join(words[core_n:])
    room = limit - len(core) - 3
    if room < 8:
        return core[: limit - 1] + "…"
    if len(rest) <= room + 3:
        return f"{core} {rest}"
    head = room // 3
    return f"{core} {rest[:head]}…{rest[-(room - head - 1):]}"
