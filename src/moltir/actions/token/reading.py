"""Reading the install: the mode a rotation takes, the token the gateway uses now, its running
processes and port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moltir.actions.token.names import MODES
from moltir.errors import usage_error
from moltir.openclaw import Install
from moltir.openclaw.gateway_auth import read_env_file as read_env_file
from moltir.openclaw.gateway_auth import resolve_token


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


def process_env(gw: Any) -> dict[str, str]:
    """A running gateway's environment ({} when it cannot be read)."""
    try:
        return dict(gw.process().environ())
    except Exception:  # psutil errors: treat as unknown
        return {}


def old_token(install: Install, config: Mapping[str, Any], gateways: list[Any]) -> tuple[str | None, str]:
    """The token the gateway uses now (in memory only) and where it came from (the one resolver,
    :func:`moltir.openclaw.gateway_auth.resolve_token`, with the running gateway's environment)."""
    found = resolve_token(install, config, gateway_env=process_env(gateways[0]) if gateways else None)
    return found.value, found.detail


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
