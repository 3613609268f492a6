"""The keyring as the OpenClaw config points at it: moltir's SecretRef, its provider, the backend
pinned there, and the token the gateway is configured with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moltir.keystore.backends import get_backend, qualname
from moltir.keystore.entries import entry_name
from moltir.keystore.launcher import PROVIDER_ALIAS

if TYPE_CHECKING:
    from moltir.openclaw import Install


def token_ref(install: Install) -> dict[str, str]:
    """``gateway.auth.token`` as moltir writes it."""
    return {"source": "exec", "provider": PROVIDER_ALIAS, "id": entry_name(install)}


def configured_provider(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    secrets_cfg = config.get("secrets")
    providers = secrets_cfg.get("providers") if isinstance(secrets_cfg, Mapping) else None
    entry = providers.get(PROVIDER_ALIAS) if isinstance(providers, Mapping) else None
    return entry if isinstance(entry, Mapping) else None


def configured_token(install: Install) -> tuple[str | None, str]:
    """(token, source) the gateway is configured with, as far as moltir can read it: a plaintext
    ``gateway.auth.token``, or moltir's keyring entry when the config points at moltir's SecretRef.
    For health checks in later runs (``restore``), where the rotating run's memory is gone. Never raises.
    The lookup itself is :func:`moltir.openclaw.gateway_auth.resolve_token`, the one resolver."""
    from moltir.openclaw.gateway_auth import resolve_token

    return resolve_token(install).configured()


def pinned_backend_name(config: Mapping[str, Any]) -> str | None:
    """The backend moltir pinned in ``secrets.providers.moltir.args`` (``--backend X``): where the gateway reads."""
    provider = configured_provider(config)
    args = provider.get("args") if provider is not None else None
    if not isinstance(args, list):
        return None
    for i, arg in enumerate(args):
        if arg == "--backend" and i + 1 < len(args) and isinstance(args[i + 1], str):
            return str(args[i + 1])
        if isinstance(arg, str) and arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return None


def pinned_backend(config: Mapping[str, Any]) -> Any | None:
    """The keyring backend the running gateway's helper reads (the one pinned in the config), keyring's
    own choice when none is pinned, or None when the pinned one cannot be loaded here (then what the
    current backend holds may be a stale copy: the caller treats the token as unknown).

    A drill run from another environment (a timer with another ``PYTHON_KEYRING_BACKEND``) or a backend
    switch must read the PREVIOUS token where the gateway reads it, not a stale copy in the current
    backend: that is the token it must prove refused, and the one a rollback puts back."""
    current = get_backend()
    name = pinned_backend_name(config)
    if not name or name == qualname(current):
        return current
    from moltir.secret_helper import load_backend

    try:
        return load_backend(name)
    except Exception:
        return None
