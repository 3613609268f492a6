"""Restart the gateway the way it runs (for a release that cannot re-read its token in-process)."""

from __future__ import annotations

import time

from moltir.actions.base import StepContext
from moltir.actions.gateway.health import wait_healthy
from moltir.actions.gateway.launch import start_foreground
from moltir.actions.gateway.records import restore_record
from moltir.actions.gateway.surveys import Survey, live_processes, survey
from moltir.errors import EXIT_STEP_FAILED, MoltirError, env_error


def restart_running(ctx: StepContext, token: str | None, timeout_s: float) -> str:
    """Restart the running gateway the way it runs and wait until it answers on ``token``: through
    its service manager (``systemctl restart`` / ``launchctl kickstart -k``), else by stopping the
    verified foreground process (SIGTERM, SIGKILL after ``timeout_s``) and launching the command
    recorded from it (:func:`moltir.actions.gateway.records.restore_record`: argv derived from the
    install, the selector environment, the working folder). Returns how it restarted, for the step's
    result.

    Used by token.rotate when the release has no in-process re-read it honours (no restart signal
    for another process, config reload off): the drill then still proves the new token live."""
    sv = survey(ctx.install)
    if not sv.running:
        raise env_error("the gateway is not running", "start it, then run again")
    deadline = time.monotonic() + max(timeout_s, 30.0)
    if sv.supervisor is not None:
        return _restart_service(ctx, sv, token, deadline)
    return _restart_foreground(ctx, sv, token, timeout_s, deadline)


def _restart_service(ctx: StepContext, sv: Survey, token: str | None, deadline: float) -> str:
    s = sv.supervisor
    assert s is not None
    res = (sv.manager.systemctl("restart", "--no-block", s.name) if s.manager == "systemd"
           else sv.manager.launchctl("kickstart", "-k", f"{sv.manager.domain}/{s.name}"))
    ctx.event("gateway.service_restart", manager=s.manager, unit=s.name, ok=res.ok)
    if not res.ok:
        raise MoltirError(f"{' '.join(res.argv)} failed: {res.line()}", hint="restart the gateway yourself",
                          exit_code=EXIT_STEP_FAILED)
    port = sv.gateway.port if sv.gateway is not None and sv.gateway.port else ctx.install.gateway_port()
    status = wait_healthy(port, token, deadline, None)
    if status != "healthy":
        raise MoltirError(f"{s.manager} restarted {s.name} but the gateway is not healthy ({status})",
                          hint="check the service's log", exit_code=EXIT_STEP_FAILED)
    return f"{s.manager} restart of {s.name}"


def _restart_foreground(ctx: StepContext, sv: Survey, token: str | None, timeout_s: float, deadline: float) -> str:
    import psutil

    from moltir.openclaw import processes as proc

    gw = sv.gateway
    assert gw is not None
    try:
        gproc, wproc = live_processes(gw)
    except psutil.NoSuchProcess:
        raise MoltirError("the gateway exited before moltir could restart it", hint="start it again",
                          exit_code=EXIT_STEP_FAILED) from None
    record = restore_record(ctx, sv, gproc)
    if not record.get("argv"):
        raise env_error("cannot restart the gateway: the openclaw binary was not found",
                        "restart it yourself, or pass --openclaw-bin PATH")
    ctx.event("gateway.restart", pid=gw.pid, argv=record["argv"])
    term = proc.terminate_tree([p for p in (gproc, wproc) if p is not None], timeout_s=timeout_s)
    if term.denied or term.survivors:
        raise MoltirError(f"could not stop the gateway pid {gw.pid} to restart it", hint="restart it yourself",
                          exit_code=EXIT_STEP_FAILED)
    port = gw.port or ctx.install.gateway_port()
    warnings: list[str] = []
    started = start_foreground(ctx, record, port, token, "run", max(1.0, deadline - time.monotonic()), warnings)
    return f"stopped pid {gw.pid} and started the recorded command again (pid {started.details['pid']})"
