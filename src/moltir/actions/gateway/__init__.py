"""``gateway.stop`` and ``gateway.start``: take the gateway down (and keep it down), bring it back.

gateway.stop
    find the install's gateway (lock files first, then the process table; ``moltir.openclaw.processes``) →
    refuse, signalling nothing, when a candidate runs as another user or when several gateways
    run for one state dir → volatile snapshot BEFORE any signal (``volatile/processes.json``,
    plus ``volatile/service.json`` when a service manager knows the gateway) → record in
    restore.json (section ``gateway``) exactly how it was running → stop it: through systemd /
    launchd when one supervises it (``moltir.openclaw.services``), else SIGTERM the verified process (and,
    on 2026.1.29, its ``openclaw`` wrapper), wait ``timeout_s``, SIGKILL what is left of the tree.
    Never waits minutes on a drain. Result: ``done`` (clean), ``forced`` (SIGKILL needed) or
    ``already`` (nothing ran). verify: no gateway of the install, its ports refuse connections,
    and it stays so for ``settle_s`` seconds; a supervisor that respawns it is named (exit 5).

gateway.start
    through the recorded service manager (undoing exactly what stop did), or for a foreground
    gateway by launching the recorded argv (``<openclaw binary> gateway run`` derived from the
    install: the gateway's own argv is overwritten by its process title) detached, in a new
    session, stdin /dev/null, output appended to ``<state>/logs/moltir-gateway-start.log``, with
    the recorded selector environment; ``with: {command: [...]}`` overrides the argv. Never a
    ``--token`` on its command line. Healthy = an authenticated ``POST /tools/invoke`` with the
    token moltir holds answers 400. A timeout or an early exit fails with the gateway's own last
    error lines.

Modules: ``surveys`` (what runs, who supervises it, may moltir act), ``stop`` and ``start`` (the two
actions), ``records`` (what stop records for start), ``launch`` (the relaunch and the service start),
``health`` (the token the health check uses), ``restart`` (``restart_running``), ``container`` (a
gateway in a Docker/Podman container), ``unit_evidence`` (what a systemd unit's stop destroys),
``messages`` and ``logs`` (what the messages say about processes, listeners and the gateway's log),
``common`` (shared names).
"""

from __future__ import annotations

from moltir.actions.gateway.common import POLL_S, RELAUNCH_VARS, SECRET_ARGS, START_LOG
from moltir.actions.gateway.health import health_token
from moltir.actions.gateway.logs import error_lines
from moltir.actions.gateway.restart import restart_running
from moltir.actions.gateway.start import GatewayStart
from moltir.actions.gateway.stop import GatewayStop
from moltir.actions.gateway.surveys import Survey, find_gateways, survey

__all__ = ["POLL_S", "RELAUNCH_VARS", "SECRET_ARGS", "START_LOG", "GatewayStart", "GatewayStop", "Survey",
           "error_lines", "find_gateways", "health_token", "restart_running", "survey"]
