"""Read moltir's ``--json`` output (the ``moltir.result/1`` envelope) in tests."""

from __future__ import annotations

import json
from typing import Any


def moltir_json(text: str) -> dict[str, Any]:
    """The command's ``data``, with the envelope's ``ok``, ``exit_code``, ``errors`` (and, for a failure,
    ``error``/``hint`` of its first error) alongside; asserts the envelope's shape on the way."""
    env = json.loads(text)
    assert isinstance(env, dict) and env.get("schema") == "moltir.result/1", text[:300]
    assert set(env) == {"schema", "ok", "command", "exit_code", "data", "errors"}, sorted(env)
    assert env["ok"] is (env["exit_code"] == 0)
    data = dict(env["data"])
    data["ok"] = env["ok"]
    data.setdefault("exit_code", env["exit_code"])
    assert data["exit_code"] == env["exit_code"]
    data["errors"] = env["errors"]
    data["command"] = env["command"]
    if env["errors"]:
        data.setdefault("error", env["errors"][0]["message"])
        data.setdefault("hint", env["errors"][0]["hint"])
    return data
