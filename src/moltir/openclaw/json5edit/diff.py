"""Unified diffs of a config edit, with the values of secret-looking keys masked."""

from __future__ import annotations

import difflib
import re
from typing import Final

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
