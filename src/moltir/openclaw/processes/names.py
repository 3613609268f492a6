"""Which processes are OpenClaw's: gateway titles, a not-yet-retitled gateway's argv, and the
install a process's environment points at."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from moltir.openclaw import Install

GATEWAY_NAMES = frozenset({"openclaw-gateway", "clawdbot-gateway"})
# /proc/PID/comm is truncated to 15 characters; psutil usually restores the full name from
# cmdline[0], but not when cmdline is unreadable.
_GATEWAY_COMMS = frozenset(n[:15] for n in GATEWAY_NAMES)
WRAPPER_NAMES = frozenset({"openclaw", "clawdbot"})
# Environment variables that say which install a process acts on.
STATE_VARS = ("OPENCLAW_STATE_DIR", "CLAWDBOT_STATE_DIR")
CONFIG_VARS = ("OPENCLAW_CONFIG_PATH", "CLAWDBOT_CONFIG_PATH")


def real_path(path: str | os.PathLike[str] | None) -> str | None:
    if not path:
        return None
    try:
        return os.path.realpath(os.fspath(path))
    except (OSError, ValueError):
        return None


def install_paths(install: Install) -> tuple[str | None, str | None]:
    """(state dir, config path) of ``install``, resolved, to compare with :func:`environ_install_paths`."""
    return real_path(install.state_dir), real_path(install.config_path)


def is_gateway_name(name: str | None) -> bool:
    return bool(name) and (name in GATEWAY_NAMES or name in _GATEWAY_COMMS)


def is_gateway_argv(argv: Sequence[str]) -> bool:
    """A not-yet-retitled gateway: ``[node] .../openclaw gateway [run] [--opts]``.

    Other ``gateway`` subcommands (status, stop, call, install, ...) are clients, not gateways.
    """
    args = [a for a in argv if a]
    for i, arg in enumerate(args):
        if arg != "gateway" or i == 0:
            continue
        launcher = args[:i]
        if not any(Path(a).name in ("openclaw", "clawdbot", "openclaw.mjs", "index.js", "entry.js")
                   for a in launcher):
            continue
        rest = args[i + 1:]
        return not rest or rest[0] == "run" or rest[0].startswith("-")
    return False


def openclaw_like(proc: psutil.Process) -> bool:
    """An OpenClaw process at any stage of start-up: ``[node] .../openclaw ...`` before it retitles,
    ``openclaw`` (entry title, 2026.1.29 wrapper), ``openclaw-gateway``."""
    try:
        name = proc.name()
        if is_gateway_name(name) or name in WRAPPER_NAMES:
            return True
        argv = [a for a in proc.cmdline() if a]
    except psutil.Error:
        return False
    return any(Path(a).name in ("openclaw", "clawdbot", "openclaw.mjs") for a in argv[:3])


def environ_install_paths(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(state dir, config path) a process with environment ``env`` acts on, by OpenClaw's rules."""
    from moltir.errors import MoltirError
    from moltir.openclaw import discover

    try:
        # binary lookup is irrelevant here: an empty PATH keeps discover() from searching
        inst = discover(env={**env, "PATH": ""})
    except MoltirError:
        return None, None
    return real_path(inst.state_dir), real_path(inst.config_path)


def environ_is_install(env: Mapping[str, str], paths: tuple[str | None, str | None]) -> bool:
    """Does a process with environment ``env`` act on the install whose :func:`install_paths` are ``paths``?"""
    s, c = environ_install_paths(env)
    return (s is not None and s == paths[0]) or (c is not None and c == paths[1])
