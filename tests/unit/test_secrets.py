from __future__ import annotations

import hashlib

from moltir import redaction as secrets


def test_fingerprint_is_first_8_hex_of_sha256() -> None:
    assert secrets.fingerprint("abc") == hashlib.sha256(b"abc").hexdigest()[:8]


def test_redact_value_recurses_and_keeps_safe_keys() -> None:
    token = "tok-" + "9" * 40
    secrets.register(token)
    out = secrets.redact_value(None, {"a": [f"x {token} y"], "password": "hunter2", "fingerprint": "abcd1234",
                                      "nested": {"apiKey": "sk-123456"}})
    assert token not in str(out) and "hunter2" not in str(out) and "sk-123456" not in str(out)
    assert out["fingerprint"] == "abcd1234"
