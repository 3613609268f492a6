"""Where a rotated credential goes (the keyring, the config key, the ``.env`` line) and how the running
gateway is made to take it. Values stay in memory; the case keeps the pre-images (evidence)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from moltir import keystore
from moltir.actions.base import StepContext
from moltir.errors import verify_error
from moltir.fsutil import atomic_write, os_error
from moltir.openclaw import Install, gateway_http
from moltir.openclaw.rotation_table import WATCH, Target

DOTENV_PREIMAGE = "preimage/dotenv/.env"


def entry_name(install: Install, cred_id: str) -> str:
    """The keyring entry (and exec SecretRef id) of one rotated credential."""
    return f"credential:{install.key}:{cred_id}"


def secret_ref(install: Install, cred_id: str) -> dict[str, str]:
    return {"source": "exec", "provider": keystore.PROVIDER_ALIAS, "id": entry_name(install, cred_id)}


def config_edits(install: Install, t: Target, value: str, backend: str) -> dict[tuple[str, ...], Any]:
    """The config edits: the SecretRef (and moltir's provider) where the release takes one, else the value."""
    if t.store != "keyring-ref":
        return {t.path: value}
    command = str(keystore.install_helper_wrapper(install.env))
    return {t.path: secret_ref(install, t.cred_id),
            ("secrets", "providers", keystore.PROVIDER_ALIAS): keystore.provider_config(command, backend)}


def write_config(ctx: StepContext, edits: dict[tuple[str, ...], Any]) -> None:
    """Comment-preserving, ``$include``-aware, the pre-image into the case; the written files 0600."""
    from moltir.openclaw.configfile import ConfigFile

    config = ConfigFile.load(ctx.install)
    for r in config.write(config.plan_edits(edits), case=ctx.case):
        try:
            if r.path.stat().st_mode & 0o077:
                os.chmod(r.path, 0o600)
        except OSError as exc:
            raise os_error(exc, f"making {r.path} 0600") from None


def _dotenv_line(var: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s*(?:export\s+)?{re.escape(var)}\s*=).*$")


def write_dotenv(ctx: StepContext, path: Path, var: str, value: str) -> None:
    """Replace ``VAR=...`` in the ``.env`` (every such line; ``export VAR=`` kept as it is), 0600, atomic;
    the old bytes go to the case's ``preimage/dotenv/.env`` first."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    ctx.case.write_file(DOTENV_PREIMAGE, raw, overwrite=True)
    pattern = _dotenv_line(var)
    lines = raw.decode("utf-8").splitlines()
    out = [f"{m.group(1)}{value}" if (m := pattern.match(line)) else line for line in lines]
    try:
        atomic_write(path, ("\n".join(out) + "\n").encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise os_error(exc, f"writing {path}") from None


def reapply(ctx: StepContext, t: Target, gateways: list[Any], gw_token: str | None, port: int,
            timeout_s: float) -> str:
    """Make the running gateway take the new value: its in-process restart signal, else a restart the way
    it runs; then it must answer on its own token again within ``timeout_s``. Returns how."""
    if not gateways:
        return "not running: the gateway reads it at its next start"
    if t.store == "dotenv" or t.reload == "restart":
        from moltir.actions.gateway import restart_running

        return restart_running(ctx, gw_token, timeout_s)
    from moltir.actions.token.routes import signal_gateways

    if t.reload == WATCH:
        return _answering(port, gw_token, timeout_s, "the config file watcher")
    sent = signal_gateways([g.pid for g in gateways], t.reload)
    ctx.event("credential.signalled", signal=t.reload, pids=sent)
    if not sent:
        raise verify_error("the gateway process could not be signalled", "restart the gateway yourself")
    if gw_token is not None and not _went_down(port, gw_token, DOWN_WINDOW_S):
        ctx.event("credential.restart_not_seen", signal=t.reload, window_s=DOWN_WINDOW_S)
    return _answering(port, gw_token, timeout_s, f"{t.reload} to pid(s) {', '.join(map(str, sent))}")


DOWN_WINDOW_S = 20.0


def _went_down(port: int, token: str, window_s: float) -> bool:
    """After the in-process restart signal: wait (up to ``window_s``) until the gateway stops answering,
    so that "answers on its own token" below is the RESTARTED gateway, not the one before the signal
    (2026.9.6 drains for ~0.4 s after SIGUSR2, then is down for several seconds)."""
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        if gateway_http.token_status(port, token, timeout=1.0) != gateway_http.ACCEPTED:
            return True
        time.sleep(0.05)
    return False


def _answering(port: int, gw_token: str | None, timeout_s: float, how: str) -> str:
    """The gateway must still answer on its own token (nothing else of its auth changed)."""
    if gw_token is not None:
        status = gateway_http.wait_accepted(port, gw_token, timeout_s=timeout_s)
        if status != gateway_http.ACCEPTED:
            raise verify_error(f"the gateway did not answer on its own token after {how} (HTTP {status})",
                               "check the gateway's log; the keyring and the config hold the new value")
    return how

