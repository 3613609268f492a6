"""Is the gateway healthy: it accepts the token moltir holds (which token that is, and where from)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from moltir.actions.base import StepContext
from moltir.actions.gateway.common import POLL_S
from moltir.errors import MoltirError
from moltir.openclaw import Install

_UNREADABLE = object()


def _configured_token(install: Install) -> Any:
    """``gateway.auth.token`` as configured (None when absent), or ``_UNREADABLE``."""
    try:
        cfg = install.read_config()
    except MoltirError:
        return _UNREADABLE
    gw = cfg.get("gateway")
    auth = gw.get("auth") if isinstance(gw, dict) else None
    return auth.get("token") if isinstance(auth, dict) else None


def _config_token(install: Install) -> str | None:
    tok = _configured_token(install)
    return tok if isinstance(tok, str) and tok and "${" not in tok else None


def config_has_token(install: Install) -> bool:
    tok = _configured_token(install)
    return tok is _UNREADABLE or tok not in (None, "")  # unreadable: assume it has one (do not add one)


def _config_token_is_ref(install: Install) -> bool:
    return isinstance(_configured_token(install), dict)


def health_token(ctx: StepContext) -> tuple[str | None, str]:
    """(token, source) for the health check: the one this run holds (after token.rotate), else the
    config's plaintext token, else -- when the config points at a SecretRef -- moltir's keyring entry
    for the install (what token.rotate stored). None when moltir holds no token at all."""
    from moltir.redaction import register

    tok = ctx.shared.get("gateway_token")
    if isinstance(tok, str) and tok:
        register(tok)
        return tok, "run"
    tok = _config_token(ctx.install)
    if tok:
        register(tok)
        return tok, "config"
    if _config_token_is_ref(ctx.install):
        try:
            from moltir import keystore

            tok = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install))
        except MoltirError:
            tok = None
        if tok:
            return tok, "keyring"
    return None, "none"


def wait_healthy(port: int, token: str | None, deadline: float, popen: subprocess.Popen[bytes] | None) -> str:
    """"healthy", "exited:<rc>", or the last thing seen at the deadline."""
    from moltir.openclaw import gateway_http

    last = "not listening"
    while True:
        if popen is not None and popen.poll() is not None:
            return f"exited:{popen.returncode}"
        status = gateway_http.token_status(port, token or "moltir-health-probe", timeout=3.0)
        if status == gateway_http.ACCEPTED or (token is None and status != gateway_http.DOWN):
            return "healthy"
        if status == gateway_http.REFUSED:
            last = "it answers but refuses the token moltir holds (HTTP 401)"
        elif status != gateway_http.DOWN:
            last = f"HTTP {status}"
        if time.monotonic() >= deadline:
            return last
        time.sleep(POLL_S)
