"""OpenClaw release numbers: ``YYYY.M.D`` (calendar), sometimes with a suffix.

Seen on npm: ``2026.9.6``, ``2026.2.6-3`` (a re-release of 2026.2.6: later than it, earlier
than 2026.2.7) and pre-releases such as ``2026.3.0-beta.2``. moltir orders them as
(year, month, day, n): a numeric suffix ``-N`` counts after the base release; any other
suffix (a pre-release) counts before it. Only :mod:`moltir.openclaw.capabilities` compares
releases; nothing else in moltir should.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_RE: Final = re.compile(r"(?<![\d.])(\d{4})\.(\d{1,2})\.(\d{1,3})(?:-([0-9A-Za-z.]+))?(?![\d.])")


@dataclass(frozen=True, order=True)
class Release:
    """A comparable OpenClaw release number."""

    key: tuple[int, int, int, int]
    text: str

    def __str__(self) -> str:
        return self.text


def parse(text: str | None) -> Release | None:
    """The first release number in ``text`` (``"OpenClaw 2026.9.6 (eb377ac)"`` works), or None."""
    if not text:
        return None
    m = _RE.search(text)
    if m is None:
        return None
    year, month, day, suffix = int(m[1]), int(m[2]), int(m[3]), m[4]
    if suffix is None:
        n = 0
    elif suffix.isdigit():
        n = int(suffix)
    else:
        n = -1  # a pre-release sorts before its base release
    raw = m[0]
    return Release((year, month, day, n), raw)


def release(text: str) -> Release:
    """Parse a literal release number (for tables); raises ValueError when it is not one."""
    got = parse(text)
    if got is None or got.text != text:
        raise ValueError(f"not an OpenClaw release number: {text!r}")
    return got
