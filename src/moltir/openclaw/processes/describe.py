"""Any process described for a message: who listens on a port, who a process's parents are."""

from __future__ import annotations

import contextlib
from typing import Any

import psutil

from moltir.openclaw.processes.cmdline import scrub_argv


def port_listeners(port: int) -> list[dict[str, Any]]:
    """Who listens on ``port``: pid/name/cmdline when visible, pid None when not (another user)."""
    out: list[dict[str, Any]] = []
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return out
    seen: set[int | None] = set()
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port != port or c.pid in seen:
            continue
        seen.add(c.pid)
        out.append(describe_pid(c.pid) if c.pid else {"pid": None})
    return out


def describe_pid(pid: int) -> dict[str, Any]:
    """pid, name, user and (scrubbed) cmdline of a process, for messages."""
    info: dict[str, Any] = {"pid": pid}
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            info["name"] = proc.name()
            info["ppid"] = proc.ppid()
            with contextlib.suppress(psutil.AccessDenied, KeyError):
                info["user"] = proc.username()
            with contextlib.suppress(psutil.AccessDenied):
                info["cmdline"] = scrub_argv(proc.cmdline())
    except psutil.Error:
        info.setdefault("name", None)
    return info


def ancestry(pid: int, *, limit: int = 6) -> list[dict[str, Any]]:
    """``describe_pid`` of the parents of ``pid``, nearest first (to name a respawner)."""
    chain: list[dict[str, Any]] = []
    try:
        proc: psutil.Process | None = psutil.Process(pid).parent()
    except psutil.Error:
        return chain
    while proc is not None and len(chain) < limit:
        chain.append(describe_pid(proc.pid))
        if proc.pid <= 1:
            break
        try:
            proc = proc.parent()
        except psutil.Error:
            break
    return chain
