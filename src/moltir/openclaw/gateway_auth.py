"""The gateway's token: the one place that answers "what is it now, and where does it come from?".

OpenClaw (docs/gateway/authentication, openclaw-facts.md §4) takes the gateway's credential from, in
order: ``gateway.auth.token`` in the config (a plaintext string, a ``${VAR}`` shorthand, or a SecretRef
``{source, provider, id}``; moltir's own is the ``exec`` ref to its keyring helper), then
``gateway.auth.password``, then ``OPENCLAW_GATEWAY_TOKEN`` (``CLAWDBOT_GATEWAY_TOKEN`` on old releases)
in the gateway's environment or the state dir's ``.env``; with none of them it makes an ephemeral token
at each start.

:func:`token_setting` reads what the config says (no secret is looked up); :func:`resolve_token` looks
the value up where the gateway would, and says where it found it. Every caller asks these two: the
rotation (the token the gateway uses before it rotates), ``restore`` and the health checks (the token
the gateway is configured with: :meth:`ResolvedToken.configured`), ``doctor`` and ``moltir token``.
Values are registered for redaction as they are read; none is ever logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from moltir.errors import MoltirError
from moltir.fsutil import os_error
from moltir.redaction import register

if TYPE_CHECKING:
    from moltir.openclaw.install import Install

ENV_TOKEN_VARS: Final = ("OPENCLAW_GATEWAY_TOKEN", "CLAWDBOT_GATEWAY_TOKEN")
SettingKind = Literal["absent", "plaintext", "ref", "env-shorthand"]
Source = Literal["config", "keyring", "env", "password", "env-var", "none", "unknown", "unreadable"]


def token_setting(config: Mapping[str, Any]) -> tuple[SettingKind, Any]:
    """(kind, value-or-ref) of ``gateway.auth.token`` as the config writes it."""
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    token = auth.get("token") if isinstance(auth, Mapping) else None
    if token is None:
        return "absent", None
    if isinstance(token, Mapping):
        return "ref", dict(token)
    if isinstance(token, str) and token.startswith("$"):
        return "env-shorthand", token
    return "plaintext", token


def is_moltir_ref(value: object) -> bool:
    """Whether a SecretRef is moltir's own (the ``exec`` ref to its keyring helper)."""
    from moltir.keystore.launcher import PROVIDER_ALIAS

    return isinstance(value, Mapping) and value.get("source") == "exec" and value.get("provider") == PROVIDER_ALIAS


@dataclass(frozen=True)
class ResolvedToken:
    """The token and where it came from. ``source`` is for code, ``detail`` for people."""

    value: str | None = field(repr=False)
    source: Source
    detail: str

    def configured(self) -> tuple[str | None, str]:
        """(token, source) when the config itself names it (plaintext or moltir's keyring entry), as the
        health checks of a later run need it; else (None, why)."""
        if self.source in ("config", "keyring") and self.value:
            return self.value, self.source
        reasons = {"keyring": "keyring entry missing", "unreadable": "unreadable"}
        return None, reasons.get(self.source, self.detail if self.source == "unknown" else "none")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (``export`` and quotes allowed); missing file -> {}."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[m.group(1)] = value
    return out


def resolve_token(install: Install, config: Mapping[str, Any] | None = None, *,
                  gateway_env: Mapping[str, str] | None = None) -> ResolvedToken:
    """The token the gateway takes, looked up where the gateway would (``gateway_env``: the running
    gateway's environment, when known). Never raises: what cannot be read is a source of its own."""
    if config is None:
        try:
            config = install.read_config()
        except MoltirError:
            return ResolvedToken(None, "unreadable", "the config cannot be read")
    env = gateway_env or {}
    kind, value = token_setting(config)
    if kind == "plaintext" and isinstance(value, str) and value:
        return _found(value, "config", "config (plaintext)")
    if kind == "ref":
        return _from_ref(install, config, value, env)
    if kind == "env-shorthand":
        var = str(value).strip("${}")
        return _found(env.get(var) or install.env.get(var), "env", f"environment variable {var}")
    return _fallbacks(install, config, env)


def _found(value: str | None, source: Source, detail: str) -> ResolvedToken:
    if value:
        register(value)
    return ResolvedToken(value or None, source, detail)


def _from_ref(install: Install, config: Mapping[str, Any], ref: Mapping[str, Any],
              env: Mapping[str, str]) -> ResolvedToken:
    if is_moltir_ref(ref):
        # Where the gateway reads it: the backend pinned in the config. One that cannot be loaded or read
        # here makes the token unknown (the current backend may hold a stale copy: proving or rolling back
        # to that would be wrong).
        from moltir import keystore

        where = keystore.pinned_backend_name(config)
        pinned = keystore.pinned_backend(config)
        if pinned is None:
            return ResolvedToken(None, "unknown", f"keyring backend {where} (pinned in the config) cannot be "
                                                  "loaded here")
        try:
            stored = keystore.read(keystore.SERVICE, str(ref.get("id")), backend=pinned)
        except MoltirError as exc:
            return ResolvedToken(None, "unknown", f"keyring backend {where} (pinned in the config) unreadable "
                                                  f"here: {exc.message}")
        return _found(stored, "keyring", "keyring (moltir SecretRef)" if stored else "keyring entry missing")
    if ref.get("source") == "env":
        var = str(ref.get("id"))
        return _found(env.get(var) or install.env.get(var), "env", f"environment variable {var}")
    return ResolvedToken(None, "unknown", f"SecretRef {ref.get('source')}:{ref.get('provider')} "
                                          "(moltir cannot read it)")


def _fallbacks(install: Install, config: Mapping[str, Any], env: Mapping[str, str]) -> ResolvedToken:
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    password = auth.get("password") if isinstance(auth, Mapping) else None
    if isinstance(password, str) and password and not password.startswith("$"):
        return _found(password, "password", "config (gateway.auth.password)")
    try:
        file_env = read_env_file(install.state_dir / ".env")
    except MoltirError:
        file_env = {}
    for var in ENV_TOKEN_VARS:
        got = env.get(var) or file_env.get(var)
        if got:
            return _found(got, "env-var", f"{var} (no token in the config)")
    return ResolvedToken(None, "none", "none (the gateway makes an ephemeral token at each start)")
