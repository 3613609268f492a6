"""Reading the install: the mode a rotation takes, the token the gateway uses now, its running
processes and port."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir import keystore
from moltir.actions.token.names import ENV_TOKEN_VARS, MODES
from moltir.errors import MoltirError, usage_error
from moltir.fsutil import os_error
from moltir.openclaw import Install


def resolve_mode(install: Install, requested: str) -> str:
    if requested not in MODES:
        raise usage_error(f"token.rotate: mode {requested!r} is not one of {', '.join(MODES)}")
    can_ref = install.caps.gateway_token_secretref
    unreachable = install.keyring_unreachable  # a system unit's user, a container
    if unreachable is not None:
        if requested == "keyring-ref":
            raise usage_error(f"{unreachable}, so it cannot take its token from a keyring SecretRef",
                              'use mode "plaintext" (or "auto"): the token goes into its 0600 config')
        return "plaintext"
    if requested == "auto":
        return "keyring-ref" if can_ref else "plaintext"
    if requested == "keyring-ref" and not can_ref:
        raise usage_error(f"{install.product} {install.version or '(release unknown)'} does not accept a "
                          "SecretRef for gateway.auth.token, so the gateway cannot read its token from the keyring",
                          'use mode "plaintext" (or "auto"): the token goes into the 0600 config and the '
                          "keyring keeps the record")
    return requested


def auth_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """``gateway.auth`` (a copy; {} when absent)."""
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    return dict(auth) if isinstance(auth, Mapping) else {}


def config_value(config: Mapping[str, Any], *path: str) -> Any:
    """The value at ``path`` in the config, or None."""
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


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


def process_env(gw: Any) -> dict[str, str]:
    """A running gateway's environment ({} when it cannot be read)."""
    try:
        return dict(gw.process().environ())
    except Exception:  # psutil errors: treat as unknown
        return {}


def old_token(install: Install, config: Mapping[str, Any], gateways: list[Any]) -> tuple[str | None, str]:
    """The token the gateway uses now (in memory only) and where it came from."""
    kind, value = keystore.token_source(config)
    gw_env = process_env(gateways[0]) if gateways else {}
    if kind == "plaintext" and isinstance(value, str) and value:
        return value, "config (plaintext)"
    if kind == "ref" and isinstance(value, Mapping):
        if value.get("source") == "exec" and value.get("provider") == keystore.PROVIDER_ALIAS:
            # where the gateway reads it; a backend that cannot be loaded or read here makes it unknown (the
            # current backend may hold a stale copy: proving or rolling back to that would be wrong)
            pinned = keystore.pinned_backend(config)
            where = keystore.pinned_backend_name(config)
            if pinned is None:
                return None, f"keyring backend {where} (pinned in the config) cannot be loaded here"
            try:
                stored = keystore.read(keystore.SERVICE, str(value.get("id")), backend=pinned)
            except MoltirError as exc:
                return None, f"keyring backend {where} (pinned in the config) unreadable here: {exc.message}"
            return stored, "keyring (moltir SecretRef)" if stored else "keyring entry missing"
        if value.get("source") == "env":
            var = str(value.get("id"))
            got = gw_env.get(var) or install.env.get(var)
            return got, f"environment variable {var}"
        return None, f"SecretRef {value.get('source')}:{value.get('provider')} (moltir cannot read it)"
    if kind == "env-shorthand" and isinstance(value, str):
        var = value.strip("${}")
        got = gw_env.get(var) or install.env.get(var)
        return got, f"environment variable {var}"
    password = config_value(config, "gateway", "auth", "password")
    if isinstance(password, str) and password and not password.startswith("$"):
        return password, "config (gateway.auth.password)"
    for var in ENV_TOKEN_VARS:
        got = gw_env.get(var) or read_env_file(install.state_dir / ".env").get(var)
        if got:
            return got, f"{var} (no token in the config)"
    return None, "none (the gateway makes an ephemeral token at each start)"


def auth_holds(config: Any, token: str | None) -> bool:
    """Would this config make ``token`` the gateway's credential (``gateway.auth.token`` / ``.password``)?"""
    if not token or not isinstance(config, Mapping):
        return False
    auth = auth_section(config)
    return token in (auth.get("token"), auth.get("password"))


def find_gateways(install: Install) -> list[Any]:
    from moltir.actions.gateway import find_gateways as find

    return list(find(install))


def gateway_port(install: Install, gateways: list[Any], config: Mapping[str, Any]) -> int:
    for gw in gateways:
        if getattr(gw, "port", None):
            return int(gw.port)
    return install.gateway_port(config)
