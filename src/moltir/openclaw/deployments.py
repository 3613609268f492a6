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
from typing import Any

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

    from moltir.openclaw.processes import WRAPPER_NAMES, is_gateway_name, listen_ports
    from moltir.openclaw.services import process_cgroup_unit

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
        found[unit] = SystemGateway(unit, user, _env_from_process(env, base), proc.pid, _exec_binary(unit))
    return list(found.values())


def _exec_binary(unit: str) -> str | None:
    """The openclaw binary a unit's ExecStart names (absolute), if it names one."""
    props = _systemctl("show", unit, "--no-pager", "--property=ExecStart") or ""
    exe = re.search(r"path=(\S+)", props)
    return exe[1] if exe and Path(exe[1]).name in ("openclaw", "clawdbot") else None


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
        out.append(SystemGateway(unit, user, _env_from_process(env, base), binary=_exec_binary(unit)))
    return out


def contained_system_gateways(base: Mapping[str, str]) -> list[SystemGateway]:
    """System-unit installs moltir contained from this account and that are not running now (a
    contained unit is masked, so systemd no longer shows its User=): from moltir's own index of
    installs and each one's latest case (``case.json`` install, ``restore.json`` gateway service)."""
    import json

    from moltir import paths

    out = []
    folder = paths.installs_dir(base)
    for index in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            latest = Path(json.loads(index.read_text(encoding="utf-8"))["latest_case"])
            info = json.loads((latest / "case.json").read_text(encoding="utf-8"))
            record = json.loads((latest / "restore.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        svc = (record.get("gateway") or {}).get("service") if isinstance(record, dict) else None
        inst = info.get("install") if isinstance(info, dict) else None
        if not (isinstance(svc, dict) and svc.get("scope") == "system" and isinstance(inst, dict)):
            continue
        env = {k: v for k, v in base.items() if not _SELECTORS.match(k) and k not in ("HOME", "USER", "LOGNAME")}
        env.update(HOME=str(inst.get("home")), OPENCLAW_STATE_DIR=str(inst.get("state_dir")),
                   OPENCLAW_CONFIG_PATH=str(inst.get("config_path")))
        if inst.get("profile"):
            env["OPENCLAW_PROFILE"] = str(inst["profile"])
        out.append(SystemGateway(str(svc.get("name")), svc.get("user"), env,
                                 binary=inst.get("binary") if isinstance(inst.get("binary"), str) else None))
    return out


def system_gateway(base: Mapping[str, str]) -> SystemGateway | None:
    """The one OpenClaw system unit on this host (running ones first, then configured ones, then those
    moltir contained); None when there is none. Several: a usage error listing them."""
    found = running_system_gateways(base) or configured_system_gateways(base) or contained_system_gateways(base)
    if len(found) > 1:
        listing = ", ".join(f"{g.unit} (user {g.user or '?'})" for g in found)
        raise usage_error(f"{len(found)} OpenClaw system units on this host: {listing}",
                          "name the one to act on: --user NAME (or --state-dir DIR); --all-profiles for every one")
    return found[0] if found else None


def _own_install_exists(env: Mapping[str, str]) -> bool:
    from moltir.openclaw.install import discover

    try:
        inst = discover(env={**env, "PATH": ""})
    except MoltirError:
        return True  # a selector problem: let the normal discovery report it
    return inst.state_dir.exists() or inst.config_path.exists()


def select_env(user: str | None, *, explicit: bool, base: Mapping[str, str],
               openclaw_bin: str | None) -> tuple[dict[str, str], str | None, str | None]:
    """(environment to discover the install with, --openclaw-bin, a note for the user).

    ``--user NAME``: that user's default install. As root with no selector and no install of root's
    own: the install of the one OpenClaw system unit on the host (running gateways first). Else the
    environment as it is."""
    env = dict(base)
    if user:
        return user_env(user, env), openclaw_bin, None
    if os.geteuid() != 0 or explicit or _own_install_exists(env):
        return env, openclaw_bin, None
    found = system_gateway(env)
    if found is None:
        return env, openclaw_bin, None
    note = (f"acting on the install of the system unit {found.unit} (user {found.user or '?'}, "
            f"HOME {found.env.get('HOME', '?')}); pass --user or --state-dir to choose another")
    return dict(found.env), openclaw_bin or found.binary, note


def _profile_dirs(home: Path) -> list[tuple[str | None, Path]]:
    from moltir.openclaw.install import PROFILE_RE

    out: list[tuple[str | None, Path]] = [(None, home / ".openclaw")]
    with contextlib.suppress(OSError):
        for d in sorted(home.glob(".openclaw-*")):
            name = d.name[len(".openclaw-"):]
            if d.is_dir() and PROFILE_RE.match(name):
                out.append((name, d))
    return out


def all_installs(base: Mapping[str, str], openclaw_bin: str | None = None) -> list[Any]:
    """Every OpenClaw install moltir finds for this user -- ``~/.openclaw``, each ``~/.openclaw-<profile>``,
    the state dir the environment selects, the installs of this user's running gateways started with
    this HOME -- and, as
    root, every system unit's install on the host. Deduplicated by state dir; only installs that
    exist (a state dir or a config)."""
    from moltir.openclaw.install import discover
    from moltir.openclaw.processes import find_all_gateway_envs

    env = dict(base)
    home = Path(env.get("HOME") or Path.home())
    plain = {k: v for k, v in env.items() if not _SELECTORS.match(k)}
    found: dict[str, Any] = {}

    def add(inst: Any) -> None:
        if (inst.state_dir.exists() or inst.config_path.exists()) and inst.key not in found:
            found[inst.key] = inst

    for profile, _folder in _profile_dirs(home):
        with contextlib.suppress(MoltirError):
            add(discover(profile=profile, env=plain, openclaw_bin=openclaw_bin))
    with contextlib.suppress(MoltirError):
        add(discover(env=env, openclaw_bin=openclaw_bin))
    for gw_env in find_all_gateway_envs(os.geteuid()):
        if gw_env.get("HOME") != str(home):
            continue  # another HOME is another user context (another account's shell, a test harness)
        with contextlib.suppress(MoltirError):
            add(discover(env=_env_from_process(gw_env, plain), openclaw_bin=openclaw_bin))
    if os.geteuid() == 0:
        units = running_system_gateways(env) + configured_system_gateways(env) + contained_system_gateways(env)
        for unit in units:
            with contextlib.suppress(MoltirError):
                add(discover(env=dict(unit.env), openclaw_bin=openclaw_bin or unit.binary))
    return sorted(found.values(), key=lambda i: str(i.state_dir))


def label(install: Any) -> str:
    """A short name for an install in --all-profiles output: its profile, else its state dir."""
    if install.profile:
        return str(install.profile)
    home = Path(install.env.get("HOME") or "/")
    if install.state_dir.is_relative_to(home):
        return f"~/{install.state_dir.relative_to(home)}"
    return str(install.state_dir)
