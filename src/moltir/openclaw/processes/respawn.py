"""Who started the gateway, and whether it started it again after the stop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import psutil

from moltir.openclaw.processes.clock import started_since
from moltir.openclaw.processes.names import environ_is_install, install_paths, openclaw_like
from moltir.openclaw.processes.scan import GatewayProcess

if TYPE_CHECKING:
    from moltir.openclaw import Install


def launcher_of(gw: GatewayProcess) -> dict[str, Any] | None:
    """pid and create time of the process that started the gateway (its wrapper's parent on
    2026.1.29), or None when that is init (pid 1) or unknown. ``respawned_by`` watches it."""
    pid = gw.wrapper_pid or gw.pid
    try:
        parent = psutil.Process(pid).parent()
        if parent is None or parent.pid <= 1:
            return None
        return {"pid": parent.pid, "create_time": parent.create_time(), "name": parent.name()}
    except psutil.Error:
        return None


def respawned_by(install: Install, launcher: Mapping[str, Any], since: float) -> psutil.Process | None:
    """A process of ``install`` that ``launcher`` started after ``since`` (``create_clock()``), if any.

    Catches a supervisor restarting the gateway during the seconds in which the new process is
    titled plain ``openclaw`` (2026.9.x retitles twice during start-up; find_gateways cannot tell
    such a process from any other openclaw CLI command, but a child of the gateway's own
    launcher that appeared after the stop can only be a restart).
    """
    try:
        parent = psutil.Process(int(launcher["pid"]))
        if abs(parent.create_time() - float(launcher["create_time"])) > 0.01:
            return None
        children = parent.children()
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None
    paths = install_paths(install)
    for child in children:
        try:
            if not started_since(child.create_time(), since) or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if not openclaw_like(child):
                continue
            if environ_is_install(child.environ(), paths):
                return child
        except (psutil.Error, OSError):
            continue
    return None
