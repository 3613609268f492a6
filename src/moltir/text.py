"""Text that a user (or an attacker, through a config or a runbook) controls, made safe to show and
to use as a name.

* :func:`shown` -- for a terminal: control characters (C0 and C1, DEL, ESC sequences, carriage
  returns, bidi overrides) become visible ``\\xNN`` / ``\\u…`` escapes, and the text is bounded, so a
  reason, a custody note or a config value can never move the cursor, recolour the screen or hide a
  line in ``moltir status``;
* :data:`IDENT` / :func:`check_ident` -- runbook names and step ids, which become parts of file
  names in the case folder: letters, digits, ``-`` and ``_`` only (never a path);
* :data:`MAX_REASON` -- how long a free-text field (``--reason``, a custody note) may be.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

IDENT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_REASON: Final = 2000
_UNSAFE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def shown(text: object, limit: int = 500, *, newlines: bool = False) -> str:
    """``text`` as it may be printed: control characters escaped, at most ``limit`` characters
    (``…`` marks a cut). ``newlines``: keep line feeds (multi-line notes), else they are escaped too."""
    s = unicodedata.normalize("NFC", str(text))
    s = _UNSAFE.sub(_escape, s)
    if not newlines:
        s = s.replace("\n", "\\n")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def check_ident(value: str) -> bool:
    return bool(IDENT.match(value))
