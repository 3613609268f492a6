"""Volatile state of the gateway's process tree, taken before any signal."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

import psutil

from moltir.openclaw.processes.cmdline import scrub_argv


def _conn_dict(conn: Any) -> dict[str, Any]:
    return {
        "fd": conn.fd,
        "family": getattr(conn.family, "name", str(conn.family)),
        "type": getattr(conn.type, "name", str(conn.type)),
        "laddr": f"{conn.laddr.ip}:{conn.laddr.port}" if conn.laddr else None,
        "raddr": f"{conn.raddr.ip}:{conn.raddr.port}" if conn.raddr else None,
        "status": conn.status,
    }


def snapshot_process(proc: psutil.Process) -> dict[str, Any]:
    """Volatile state of one process. Environment variable NAMES only: the values hold secrets."""
    snap: dict[str, Any] = {"pid": proc.pid}
    try:
        with proc.oneshot():
            data = proc.as_dict(attrs=["ppid", "name", "exe", "cmdline", "cwd", "username", "create_time",
                                       "status", "num_threads", "memory_info", "uids", "gids", "terminal"],
                                ad_value=None)
    except psutil.NoSuchProcess:
        snap["gone"] = True
        return snap
    snap.update({
        "ppid": data["ppid"], "name": data["name"], "exe": data["exe"],
        "cmdline": scrub_argv(data["cmdline"]) if data["cmdline"] is not None else None,
        "cwd": data["cwd"], "user": data["username"],
        "uid": data["uids"].real if data["uids"] else None,
        "gid": data["gids"].real if data["gids"] else None,
        "terminal": data["terminal"],
        "create_time": data["create_time"],
        "create_time_utc": (dt.datetime.fromtimestamp(data["create_time"], dt.UTC).isoformat()
                            if data["create_time"] else None),
        "status": data["status"], "num_threads": data["num_threads"],
        "memory": data["memory_info"]._asdict() if data["memory_info"] else None,
    })
    _read_into(snap, "open_files", "open_files_error",
               lambda: [{"fd": f.fd, "path": f.path} for f in proc.open_files()])
    _read_into(snap, "connections", "connections_error",
               lambda: [_conn_dict(c) for c in proc.net_connections(kind="inet")])
    _read_into(snap, "environ_names", "environ_error", lambda: sorted(proc.environ()))
    return snap


def _read_into(snap: dict[str, Any], key: str, error_key: str, read: Callable[[], Any]) -> None:
    """``snap[key] = read()``; None and the error's name under ``error_key`` when it may not be read,
    ``snap["gone"]`` when the process has exited."""
    try:
        snap[key] = read()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError) as exc:
        snap[key] = None
        snap[error_key] = type(exc).__name__
    except psutil.NoSuchProcess:
        snap["gone"] = True


def process_tree(root: psutil.Process, *, wrapper: psutil.Process | None = None) -> list[psutil.Process]:
    """``wrapper`` (if any), ``root`` and all of root's descendants, collected now."""
    procs: list[psutil.Process] = []
    if wrapper is not None:
        procs.append(wrapper)
    procs.append(root)
    with contextlib.suppress(psutil.Error):
        procs.extend(root.children(recursive=True))
    if wrapper is not None:
        with contextlib.suppress(psutil.Error):
            procs.extend(c for c in wrapper.children(recursive=True) if c.pid not in {p.pid for p in procs})
    return procs


def snapshot_tree(proc: psutil.Process, *, wrapper: psutil.Process | None = None) -> dict[str, Any]:
    """Snapshot of the gateway (and its wrapper) and every descendant, with the time it was taken."""
    tree = process_tree(proc, wrapper=wrapper)
    return {
        "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "root_pid": proc.pid,
        "wrapper_pid": wrapper.pid if wrapper is not None else None,
        "processes": [snapshot_process(p) for p in tree],
    }
