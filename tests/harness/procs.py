"""Find and kill the processes that belong to one test's OpenClaw state dir (psutil).

OpenClaw overwrites argv (``openclaw-gateway`` plus blanks), so processes are matched by their
environment: ``OPENCLAW_STATE_DIR`` (or the legacy ``CLAWDBOT_STATE_DIR``) equal to the state
dir, or no state-dir variable and ``HOME/.openclaw`` equal to it. That catches 2026.1.29's
respawn wrapper and its child, 2026.9.6's spawn-broker and sqlite workers (own sessions), and
anything moltir itself launched for that install. Zombies are dead already and are ignored.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path

import psutil

GATEWAY_NAMES = ("openclaw-gateway", "openclaw-gatewa", "openclaw", "clawdbot-gateway")


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _belongs(env: dict[str, str], state_dirs: set[str]) -> bool:
    for var in ("OPENCLAW_STATE_DIR", "CLAWDBOT_STATE_DIR"):
        if env.get(var):
            return _norm(env[var]) in state_dirs
    home = env.get("HOME")
    return home is not None and _norm(Path(home) / ".openclaw") in state_dirs


def processes_for(*state_dirs: str | os.PathLike[str]) -> list[psutil.Process]:
    """Live (non-zombie) processes of this user whose environment points at one of ``state_dirs``."""
    wanted = {_norm(d) for d in state_dirs}
    me, uid = os.getpid(), os.getuid()
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "uids", "status"]):
        try:
            if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if _belongs(proc.environ(), wanted):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def describe(procs: Iterable[psutil.Process]) -> str:
    parts = []
    for p in procs:
        try:
            parts.append(f"{p.pid}:{p.name()}:{' '.join(a for a in p.cmdline() if a)[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            parts.append(f"{p.pid}:?")
    return ", ".join(parts) or "none"


def kill_procs(procs: list[psutil.Process], timeout: float = 5.0) -> list[int]:
    """SIGKILL ``procs`` (and their process groups when they lead them); return the pids killed."""
    killed: list[int] = []
    for p in procs:
        try:
            if os.getpgid(p.pid) == p.pid:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
            killed.append(p.pid)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    psutil.wait_procs(procs, timeout=timeout)
    return killed


def kill_leftovers(*state_dirs: str | os.PathLike[str], timeout: float = 5.0) -> list[int]:
    """SIGKILL every process belonging to ``state_dirs``; return the pids that had to be killed.

    For tests that start gateways themselves (or make moltir start them): call it at teardown,
    then ``assert not processes_for(...)``.
    """
    killed: list[int] = []
    for _ in range(3):  # a dying parent may have spawned a child meanwhile
        procs = processes_for(*state_dirs)
        if not procs:
            break
        killed += kill_procs(procs, timeout=timeout)
    return killed


def assert_none_left(*state_dirs: str | os.PathLike[str]) -> None:
    left = processes_for(*state_dirs)
    assert not left, f"processes left behind for {', '.join(map(str, state_dirs))}: {describe(left)}"
