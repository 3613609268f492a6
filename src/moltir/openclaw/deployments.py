"""Where the gateways OpenClaw's own installers create live, seen from root: system units running
as a dedicated user (openclaw-ansible's ``openclaw.service``: ``User=openclaw``,
``Environment=HOME=/home/openclaw``), and the environment that selects each one's install.

``sudo moltir contain`` with no selector acts on root's own install when root has one; otherwise
on the one OpenClaw gateway a system unit runs (found from the running processes' cgroups, then
from the system units named like OpenClaw's), with that unit's user, HOME and ``OPENCLAW_*``
variables. Several candidates: the user names one with ``--user NAME`` or ``--state-dir``.
``--user NAME`` selects NAME's default install (HOME from the password database).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from moltir.errors import MoltirError, usage_error

# Variables of root's own environment that would select ROOT's install: never carried over.
_SELECTORS = re.compile(r"^(OPENCLAW_|CLAWDBOT_)")
_UNIT_GLOBS = ("openclaw*.service", "clawdbot*.service", "moltbot*.service")
_ENV_WORD = re.compile(r'(?:"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass(frozen=True)
class SystemGateway:
    """A gateway a system unit runs (or would run) as some user."""

    unit: str
    user: str | None
    env: Mapping[str, str] = field(repr=False)  # the environment that selects its install
    pid: int | None = None
    binary: str | None = None  # from the unit's ExecStart, when it names one


def user_env(name: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with HOME/USER/LOGNAME of user ``name`` and none of ``base``'s own install selectors."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise usage_error(f"--user {name}: no such user on this host", "pass the user the gateway runs as "
                          "(e.g. openclaw, the user of OpenClaw's server installer)") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise MoltirError(f"--user {name}: acting on another user's install needs root",
                          hint=f"run it as root: sudo moltir ... --user {name}", exit_code=3)
    env = {k: v for k, v in base.items() if not _SELECTORS.match(k)}
    env.update(HOME=entry.pw_dir, USER=name, LOGNAME=name)
    return env


def _env_from_process(env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in base.items() if not _SELECTORS.match(k) and k not in ("HOME", "USER", "LOGNAME")}
    for key, value in env.items():
        if _SELECTORS.match(key) or key in ("HOME", "USER", "LOGNAME", "TMPDIR"):
            out[key] = value
    path = env.get("PATH")
    if path:
        out["PATH"] = os.pathsep.join([path, base.get("PATH", os.defpath)])
    return out


def running_system_gateways(base: Mapping[str, str]) -> list[SystemGateway]:
    """Gateway processes whose cgroup is a system unit (root reads their environment)."""
    import psutil

    from moltir.proc import WRAPPER_NAMES, is_gateway_name, listen_ports
    from moltir.services import process_cgroup_unit

    found: dict[str, SystemGateway] = {}
    for proc in psutil.process_iter(["name"]):
        try:
            name = proc.info.get("name")
            if not (is_gateway_name(name) or (name in WRAPPER_NAMES and listen_ports(proc))):
                continue
            unit, user_unit = process_cgroup_unit(proc.pid)
            if not unit or user_unit or unit in found:
                continue
            env = proc.environ()
            user = proc.username()
        except (psutil.Error, OSError, KeyError):
            continue
        if "HOME" not in env and user:
            with_home = dict(env)
            with contextlib.suppress(KeyError):
                with_home["HOME"] = pwd.getpwnam(user).pw_dir
            env = with_home
        found[unit] = SystemGateway(unit, user, _env_from_process(env, base), proc.pid)
    return list(found.values())


def _systemctl(*args: str) -> str | None:
    tool = shutil.which("systemctl")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=15, check=False,
                              stdin=subprocess.DEVNULL, env={"PATH": os.defpath, "LC_ALL": "C", "SYSTEMD_PAGER": ""})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def configured_system_gateways(base: Mapping[str, str]) -> list[SystemGateway]:
    """System units named like OpenClaw's (running or not) with a ``User=``: their environment."""
    listing = _systemctl("list-units", "--all", "--type=service", "--plain", "--no-legend", "--no-pager",
                         *_UNIT_GLOBS) or ""
    files = _systemctl("list-unit-files", "--type=service", "--plain", "--no-legend", "--no-pager", *_UNIT_GLOBS) or ""
    units = sorted({line.split()[0] for line in (listing + files).splitlines() if line.strip()})
    out = []
    for unit in units:
        props = _systemctl("show", unit, "--no-pager", "--property=User,Environment,ExecStart,LoadState")
        if props is None:
            continue
        values = dict(line.split("=", 1) for line in props.splitlines() if "=" in line)
        user = values.get("User") or None
        if values.get("LoadState") == "not-found" or not user:
            continue
        env: dict[str, str] = {}
        for m in _ENV_WORD.finditer(values.get("Environment", "")):
            word = m[1] if m[1] is not None else m[2]
            if "=" in word:
                k, v = word.split("=", 1)
                env[k] = v
        try:
            env.setdefault("HOME", pwd.getpwnam(user).pw_dir)
        except KeyError:
            continue
        exe = re.search(r"path=(\S+)", values.get("ExecStart", ""))
        out.append(SystemGateway(unit, user, _env_from_process(env, base),
                                 binary=exe[1] if exe and Path(exe[1]).name in ("openclaw", "clawdbot") else None))
    return out


def system_gateway(base: Mapping[str, str]) -> SystemGateway | None:
    """The one OpenClaw system unit on this host (running ones first); None when there is none.
    Several: a usage error listing them."""
    found = running_system_gateways(base) or configured_system_gateways(base)
    if len(found) > 1:
        listing = ", ".join(f"{g.unit} (user {g.user or '?'})" for g in found)
        raise usage_error(f"{len(found)} OpenClaw system units on this host: {listing}",
                          "name the one to act on: --user NAME (or --state-dir DIR); --all-profiles for every one")
    return found[0] if found else None
