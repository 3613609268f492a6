"""The one JSON shape every command prints with ``--json``, successes and failures alike.

    {"schema": "moltir.result/1", "ok": bool, "command": "contain", "exit_code": 0,
     "data": {...}, "errors": [{"message": "...", "hint": "...", "code": "environment"}]}

``ok`` is ``exit_code == 0``; the process exits with ``exit_code`` (a contract test pins both for
every command). ``data`` is the command's own report (its shape is the command's: a run's steps, a
status report, a doctor report ...); ``errors`` names what went wrong, one entry per problem, with
the fix in ``hint`` and a stable ``code`` (the exit code's name). Values are redacted like the
journal: a registered secret never reaches the output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import click

from moltir.errors import EXIT_CODES

SCHEMA: Final = "moltir.result/1"
CODE_NAMES: Final[Mapping[int, str]] = {0: "ok", 1: "step_failed", 2: "usage", 3: "environment", 4: "locked",
                                        5: "verification", 6: "fleet_incomplete", 130: "interrupted"}


def error(message: str, hint: str = "", exit_code: int = 1) -> dict[str, Any]:
    return {"message": message, "hint": hint or None, "code": CODE_NAMES.get(exit_code, str(exit_code))}


def command_name(ctx: click.Context | None = None) -> str:
    """``contain``, ``evidence verify``, ``drill schedule install`` ... (the command path without "moltir")."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return "moltir"
    words = ctx.command_path.split()
    return " ".join(words[1:]) or "moltir"


def envelope(data: Mapping[str, Any] | None = None, *, exit_code: int = 0, errors: Sequence[Mapping[str, Any]] = (),
             command: str | None = None) -> dict[str, Any]:
    from moltir.redaction import redact_value

    out = {"schema": SCHEMA, "ok": exit_code == 0, "command": command or command_name(), "exit_code": exit_code,
           "data": dict(data or {}), "errors": [dict(e) for e in errors]}
    redacted: dict[str, Any] = redact_value(None, out)
    return redacted


def echo_json(data: Mapping[str, Any] | None = None, *, exit_code: int = 0,
              errors: Sequence[Mapping[str, Any]] = (), command: str | None = None) -> None:
    """Print the envelope (one JSON object on stdout). The caller exits with ``exit_code``."""
    click.echo(json.dumps(envelope(data, exit_code=exit_code, errors=errors, command=command), indent=2,
                          sort_keys=True, default=str))


__all__ = ["CODE_NAMES", "EXIT_CODES", "SCHEMA", "command_name", "echo_json", "envelope", "error"]
