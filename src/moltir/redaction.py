"""Secret hygiene: fingerprints and redaction.

Every secret value moltir handles (gateway tokens above all) is registered here the moment
it exists in memory. The journal writer and the console renderer pass every string through
:func:`redact`, which replaces registered values with ``<redacted:FINGERPRINT>``; keys that
name secrets (token, password, secret, apiKey, ...) are redacted whatever their value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

_lock = threading.Lock()
_known: set[str] = set()

SECRET_KEY_RE = re.compile(r"(token|secret|password|passwd|api[_-]?key|authorization|credential)s?$", re.I)
# keys that contain "token" but hold no secret value
_SAFE_KEYS = frozenset({"token_fingerprint", "old_fingerprint", "new_fingerprint", "fingerprint",
                        "token_source", "token_ref", "token_mode"})


def fingerprint(value: str) -> str:
    """First 8 hex digits of the SHA-256 of ``value``: safe to log, enough to compare."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def keyed_fingerprint(key: bytes, value: str) -> str:
    """HMAC-SHA-256 of ``value`` under ``key`` (a per-case or per-run random key), first 16 hex digits.

    The credential inventory's fingerprint: unlike :func:`fingerprint` (the gateway token's 8 hex
    digits everywhere else), a short or guessable secret (a password) cannot be confirmed from it
    by whoever lacks the key. Equal values in one case or run get equal fingerprints.
    """
    return "hmac-sha256:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def register(value: str | None) -> None:
    """Remember ``value`` as a secret so that it never reaches the console or the journal."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, f"<redacted:{fingerprint(value)}>")
    return text


def _unchanged(text: str) -> str:
    return text


def redactor() -> Callable[[str], str]:
    """:func:`redact` with the secrets registered now (looked up once, for many strings in a row)."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    if not known:
        return _unchanged

    def clean(text: str) -> str:
        for value in known:
            if value in text:
                text = text.replace(value, f"<redacted:{fingerprint(value)}>")
        return text
    return clean


def redact_value(key: str | None, value: Any) -> Any:
    """Redact a structure recursively: registered values everywhere, secret-named keys entirely."""
    if key is not None and key not in _SAFE_KEYS and SECRET_KEY_RE.search(key) and isinstance(value, str):
        return f"<redacted:{fingerprint(value)}>" if value else value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(None, v) for v in value]
    return value
