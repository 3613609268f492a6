"""How a running gateway takes a rotated token: its reload route, and re-applying by it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Any

from moltir.actions.base import StepContext
from moltir.actions.token.reading import config_value
from moltir.openclaw import Install


def reload_route(install: Install, mode: str, config: Mapping[str, Any]) -> tuple[str, str | None]:
    """(route, signal) by which a RUNNING gateway of this release takes a rotated token.

    keyring-ref: the config text does not change after the first switch, so only an in-process
    restart re-resolves the SecretRef: the release's restart signal (SIGUSR1 up to 2026.9.5, SIGUSR2
    from 2026.9.6; capability table). Never a signal the release does not handle: Node's default
    action for an unhandled SIGUSR2 is to terminate the process. plaintext: the config file watcher
    (hot-applies or restarts in-process on ``gateway.*``), unless ``gateway.reload.mode`` is "off";
    then the restart signal when the release honours one from another process. ``("restart", None)``
    when neither exists: the gateway is restarted the way it runs (its service manager, or the
    command recorded from the running process), see :func:`moltir.actions.gateway.restart_running`."""
    sig = install.caps.restart_signal(config)
    if mode == "keyring-ref":
        return (sig, sig) if sig else ("restart", None)
    reload_mode = config_value(config, "gateway", "reload", "mode")
    if reload_mode != "off":
        return "config file watch", None
    return (sig, sig) if sig else ("restart", None)


def reapply(ctx: StepContext, route: str, sig: str | None, pids: list[int], token: str | None,
            timeout_s: float) -> str:
    """Make the running gateway take what the keyring and the config hold now, by ``route``."""
    if route == "restart":
        from moltir.actions.gateway import restart_running

        return restart_running(ctx, token, timeout_s)
    sent = signal_gateways(pids, sig)
    if sig is not None:
        ctx.event("token.signalled", signal=sig, pids=sent)
    return route


def signal_gateways(pids: list[int], sig: str | None) -> list[int]:
    """Send ``sig`` to the gateway processes ``pids``: the ones it reached."""
    if sig is None:
        return []
    signum = signal.Signals[sig]
    sent = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            sent.append(pid)
    return sent
