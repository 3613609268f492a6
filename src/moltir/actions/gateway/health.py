"""Is the gateway healthy: it accepts the token moltir holds (which token that is, and where from)."""

from __future__ import annotations

import subprocess
import time

from moltir.actions.base import StepContext
from moltir.actions.gateway.common import POLL_S
from moltir.errors import MoltirError
from moltir.openclaw import Install
from moltir.openclaw.gateway_auth import resolve_token, token_setting


def config_has_token(install: Install) -> bool:
    """Whether the config sets ``gateway.auth.token`` (an unreadable config: assume so, and add none)."""
    try:
        kind, value = token_setting(install.read_config())
    except MoltirError:
        return True
    return kind != "absent" and value != ""


def health_token(ctx: StepContext) -> tuple[str | None, str]:
    """(token, source) for the health check: the one this run holds (after token.rotate), else the one
    the config names (plaintext, or moltir's keyring entry behind its SecretRef), as the one resolver
    (:mod:`moltir.openclaw.gateway_auth`) finds it. None when moltir holds no token at all."""
    from moltir.redaction import register

    tok = ctx.shared.get("gateway_token")
    if isinstance(tok, str) and tok:
        register(tok)
        return tok, "run"
    tok, source = resolve_token(ctx.install).configured()
    return (tok, source) if tok else (None, "none")


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
