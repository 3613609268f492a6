"""Service-manager adapter: is the gateway supervised by systemd (user) or launchd, and how to
stop it so it STAYS down, and start it again -- all with bounded waits.

No moltir policy here; the ``gateway.*`` actions decide. Facts (shared/research/openclaw-facts.md
§4): OpenClaw installs a systemd user unit ``openclaw-gateway[-<profile>].service`` with
``Restart=always``, ``RestartSec=5`` and ``TimeoutStopSec=330`` (a drain can legitimately take
315 s), or a LaunchAgent ``ai.openclaw.gateway`` / ``ai.openclaw.<profile>``; the service's
environment carries ``OPENCLAW_SYSTEMD_UNIT`` / ``OPENCLAW_LAUNCHD_LABEL``. Killing a supervised
gateway just gets it restarted, so a supervised gateway is stopped through its manager:

systemd (user)
    ``disable`` (only when it was enabled: it must not come back at the next login/boot),
    ``mask --runtime`` (best effort: nothing may start it until restore or reboot; systemd
    refuses it when the unit file lives in a higher-priority folder, which is reported, not
    fatal), ``stop --no-block`` (``stop`` would block up to the unit's 330 s), poll
    ``ActiveState`` for the bound, then ``kill -s SIGKILL`` through the manager.
launchd
    ``disable`` (persistent, so RunAtLoad/KeepAlive do not bring it back), ``bootout`` with
    the bound as its timeout, then ``kill SIGKILL`` through the manager if it is still there.

Start undoes exactly what stop did: ``unmask --runtime`` / ``enable`` (if we disabled an enabled
unit) / ``start --no-block``; launchd ``enable`` (if it was not disabled before) / ``bootstrap``
the recorded plist / ``kickstart``.

systemd (system)
    A gateway under a SYSTEM unit (OpenClaw's server installer, openclaw-ansible: ``User=openclaw``,
    ``Restart=always``, ``PrivateTmp=true``) is handled the same way through ``systemctl`` without
    ``--user`` (:attr:`Manager.scope` ``"system"``), which needs root; the unit is found from the
    gateway's cgroup, or from the system units whose environment names the install.

Every command goes through :class:`Manager.run` (``systemctl`` / ``launchctl`` resolved on the
install's PATH), so tests put recording stand-ins on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from moltir.openclaw import CREDENTIAL_VARS, Install

ManagerKind = Literal["systemd", "launchd"]
Scope = Literal["user", "system"]
SYSTEMD_PROPS = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID", "FragmentPath",
                 "Restart", "NRestarts", "User", "Group", "DropInPaths", "PrivateTmp", "InvocationID")
RUNNING_STATES = frozenset({"active", "activating", "deactivating", "reloading", "refreshing"})
COMMAND_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class CmdResult:
    argv: tuple[str, ...]
    returncode: int  # -1: could not run / timed out
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def line(self) -> str:
        """First line of stderr (or stdout) for messages."""
        text = (self.stderr or self.stdout).strip()
        return text.splitlines()[0] if text else f"exit code {self.returncode}"


@dataclass(frozen=True)
class ServiceInfo:
    """What a service manager says about one unit / LaunchAgent."""

    manager: ManagerKind
    name: str  # systemd unit, or launchd label
    active_state: str  # systemd ActiveState; launchd "running" | "loaded" | the printed state
    main_pid: int | None
    unit_file_state: str | None  # systemd: enabled | disabled | static | masked | ...; launchd: None
    path: str | None  # unit FragmentPath / LaunchAgent plist
    domain: str | None = None  # launchd: gui/<uid>
    disabled: bool | None = None  # launchd: listed as disabled by ``print-disabled``
    scope: Scope = "user"  # systemd: the user manager or the system manager
    properties: Mapping[str, str] = field(default_factory=dict)
    raw: str = ""  # the manager's own output, for volatile/service.json

    @property
    def running(self) -> bool:
        if self.manager == "systemd":
            return self.active_state in RUNNING_STATES
        return self.active_state == "running" or bool(self.main_pid)

    @property
    def enabled(self) -> bool | None:
        if self.manager == "systemd":
            return None if self.unit_file_state is None else self.unit_file_state.startswith("enabled")
        return None if self.disabled is None else not self.disabled

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["properties"] = dict(self.properties)
        data["running"] = self.running
        data["enabled"] = self.enabled
        return data


@dataclass(frozen=True)
class StopResult:
    forced: bool  # needed a SIGKILL through the manager
    stopped: bool  # the manager reports it down
    disabled: bool  # we disabled it (it was enabled)
    masked: bool  # we masked it at runtime
    elapsed_s: float
    final_state: str
    commands: tuple[CmdResult, ...]
    warnings: tuple[str, ...] = ()


class Manager:
    """Runs ``systemctl --user`` / ``launchctl`` for one install (env without credentials)."""

    def __init__(self, install: Install, *, uid: int | None = None, timeout_s: float = COMMAND_TIMEOUT_S,
                 env: Mapping[str, str] | None = None, scope: Scope = "user") -> None:
        base = dict(install.env if env is None else env)
        self.env = {k: v for k, v in base.items() if k not in CREDENTIAL_VARS}
        self.env.setdefault("LC_ALL", "C")
        self.env["SYSTEMD_PAGER"] = ""
        self.install = install
        self.scope: Scope = scope
        self.uid = os.getuid() if uid is None else uid
        self.timeout_s = timeout_s
        self.log: list[CmdResult] = []

    def tool(self, name: str) -> str | None:
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def run(self, tool: str, *args: str, timeout_s: float | None = None) -> CmdResult:
        path = self.tool(tool)
        argv = (tool, *args)
        if path is None:
            result = CmdResult(argv, -1, "", f"{tool}: not found on PATH")
        else:
            try:
                done = subprocess.run([path, *args], env=self.env, capture_output=True, text=True,
                                      timeout=timeout_s or self.timeout_s, stdin=subprocess.DEVNULL,
                                      check=False)
                result = CmdResult(argv, done.returncode, done.stdout, done.stderr)
            except subprocess.TimeoutExpired:
                result = CmdResult(argv, -1, "", f"{tool} {' '.join(args)}: timed out")
            except OSError as exc:
                result = CmdResult(argv, -1, "", f"{tool}: {exc.strerror or exc}")
        self.log.append(result)
        return result

    # ---- systemd ------------------------------------------------------------------------------
    def systemctl(self, *args: str, timeout_s: float | None = None) -> CmdResult:
        scope = ("--user",) if self.scope == "user" else ()
        return self.run("systemctl", *scope, *args, timeout_s=timeout_s)

    @property
    def systemctl_words(self) -> str:
        """How a person types this manager's systemctl (for messages)."""
        return "systemctl --user" if self.scope == "user" else "sudo systemctl"

    def systemd_show(self, unit: str) -> ServiceInfo | None:
        """The unit's state, or None when systemctl is missing, unreachable, or the unit unknown."""
        res = self.systemctl("show", unit, "--no-pager", f"--property={','.join(SYSTEMD_PROPS)}")
        if not res.ok:
            return None
        props = parse_properties(res.stdout)
        if props.get("LoadState") in (None, "not-found") or not props.get("ActiveState"):
            return None
        pid = int(props["MainPID"]) if props.get("MainPID", "").isdigit() else 0
        return ServiceInfo(
            manager="systemd", name=unit, active_state=props.get("ActiveState", ""), main_pid=pid or None,
            unit_file_state=props.get("UnitFileState") or None, path=props.get("FragmentPath") or None,
            properties=props, raw=res.stdout, scope=self.scope)

    def systemd_reachable(self) -> tuple[bool, str]:
        """(True, "") when ``systemctl --user`` can talk to a user manager; else (False, why)."""
        if self.tool("systemctl") is None:
            return False, "systemctl not found"
        res = self.systemctl("show", "--no-pager", "--property=Version")
        return (True, "") if res.ok else (False, res.line())

    # ---- launchd ------------------------------------------------------------------------------
    @property
    def domain(self) -> str:
        return f"gui/{self.uid}"

    def launchctl(self, *args: str, timeout_s: float | None = None) -> CmdResult:
        return self.run("launchctl", *args, timeout_s=timeout_s)

    def launchd_print(self, label: str) -> ServiceInfo | None:
        res = self.launchctl("print", f"{self.domain}/{label}")
        if not res.ok:
            return None
        state, pid, path = parse_launchctl_print(res.stdout)
        disabled = self.launchd_disabled(label)
        return ServiceInfo(manager="launchd", name=label, active_state=state or "loaded", main_pid=pid,
                           unit_file_state=None, path=path, domain=self.domain, disabled=disabled,
                           raw=res.stdout)

    def launchd_disabled(self, label: str) -> bool | None:
        res = self.launchctl("print-disabled", self.domain)
        if not res.ok:
            return None
        return parse_print_disabled(res.stdout).get(label, False)


# ---- parsing ------------------------------------------------------------------------------------

def parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


_LAUNCHD_STATE = re.compile(r"^\s*state\s*=\s*(\S+)", re.M)
_LAUNCHD_PID = re.compile(r"^\s*pid\s*=\s*(\d+)", re.M)
_LAUNCHD_PATH = re.compile(r"^\s*path\s*=\s*(.+?)\s*$", re.M)
_DISABLED_LINE = re.compile(r'^\s*"([^"]+)"\s*=>\s*(\w+)', re.M)


def parse_launchctl_print(text: str) -> tuple[str | None, int | None, str | None]:
    """(state, pid, plist path) from ``launchctl print gui/<uid>/<label>``."""
    state = _LAUNCHD_STATE.search(text)
    pid = _LAUNCHD_PID.search(text)
    path = _LAUNCHD_PATH.search(text)
    return (state.group(1) if state else None, int(pid.group(1)) if pid else None,
            path.group(1) if path else None)


def parse_print_disabled(text: str) -> dict[str, bool]:
    """``"label" => disabled|enabled|true|false`` lines of ``launchctl print-disabled``."""
    return {m.group(1): m.group(2).lower() in ("disabled", "true") for m in _DISABLED_LINE.finditer(text)}


def cgroup_unit(text: str) -> tuple[str | None, bool]:
    """(unit, is_user_unit) of the innermost ``*.service`` in a ``/proc/PID/cgroup`` text."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        parts = [p for p in path.split("/") if p]
        services = [p for p in parts if p.endswith(".service")]
        if not services:
            continue
        unit = services[-1]
        user = any(p.startswith("user@") and p.endswith(".service") for p in parts)
        if user and unit.startswith("user@"):
            return None, True  # inside the user manager itself, not a unit of it
        return unit, user
    return None, False


def process_cgroup_unit(pid: int) -> tuple[str | None, bool]:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, False
    return cgroup_unit(text)


# ---- detection ----------------------------------------------------------------------------------

def candidate_names(install: Install, gateway_env: Mapping[str, str] | None) -> tuple[list[str], list[str]]:
    """(systemd units, launchd labels) that may supervise the install's gateway."""
    units = list(install.systemd_units())
    labels = list(install.launchd_labels())
    env = gateway_env or {}
    unit = env.get("OPENCLAW_SYSTEMD_UNIT", "").strip()
    if unit:
        unit = unit if unit.endswith(".service") else f"{unit}.service"
        if unit not in units:
            units.insert(0, unit)
    label = env.get("OPENCLAW_LAUNCHD_LABEL", "").strip()
    if label and label not in labels:
        labels.insert(0, label)
    return units, labels


def detect(manager: Manager, *, gateway_pid: int | None = None,
           gateway_env: Mapping[str, str] | None = None) -> list[ServiceInfo]:
    """Every known unit / LaunchAgent of the install, supervising ones first.

    Read-only (``systemctl --user show``, ``launchctl print``). A unit counts as supervising
    when it is running or its MainPID is the gateway; callers decide what to do with loaded
    but inactive ones.
    """
    units, labels = candidate_names(manager.install, gateway_env)
    if gateway_pid is not None:
        unit, user = process_cgroup_unit(gateway_pid)
        if unit and user == (manager.scope == "user") and unit not in units:
            units.insert(0, unit)
    found: list[ServiceInfo] = []
    if manager.tool("systemctl") is not None:
        for unit in units:
            info = manager.systemd_show(unit)
            if info is not None:
                found.append(info)
    if manager.tool("launchctl") is not None:
        for label in labels:
            info = manager.launchd_print(label)
            if info is not None:
                found.append(info)

    def supervising(i: ServiceInfo) -> bool:
        return i.running or (gateway_pid is not None and i.main_pid == gateway_pid)

    return sorted(found, key=lambda i: not supervising(i))


def is_supervising(info: ServiceInfo, gateway_pid: int | None) -> bool:
    return info.running or (gateway_pid is not None and info.main_pid == gateway_pid)


# ---- stop ---------------------------------------------------------------------------------------

def _poll(check: Any, deadline: float, interval: float = 0.2) -> bool:
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop(manager: Manager, info: ServiceInfo, *, timeout_s: float, kill_wait_s: float = 5.0) -> StopResult:
    """Stop ``info`` through its manager within ``timeout_s`` (+ ``kill_wait_s`` if it must be killed)."""
    start = time.monotonic()
    first = len(manager.log)
    if info.manager == "systemd":
        return _stop_systemd(manager, info, start, first, timeout_s, kill_wait_s)
    return _stop_launchd(manager, info, start, first, timeout_s, kill_wait_s)


def _systemd_down(manager: Manager, unit: str) -> tuple[bool, str]:
    now = manager.systemd_show(unit)
    if now is None:
        return True, "unknown"
    return (now.active_state in ("inactive", "failed")), now.active_state


def _stop_systemd(manager: Manager, info: ServiceInfo, start: float, first: int, timeout_s: float,
                  kill_wait_s: float) -> StopResult:
    unit = info.name
    warnings: list[str] = []
    disabled = masked = False
    words = manager.systemctl_words
    if info.unit_file_state == "enabled":
        res = manager.systemctl("disable", unit)
        disabled = res.ok
        if not res.ok:
            warnings.append(f"{words} disable {unit} failed: {res.line()}")
    res = manager.systemctl("mask", "--runtime", unit)
    masked = res.ok
    if not res.ok:
        warnings.append(f"{words} mask --runtime {unit} failed ({res.line()}); "
                        f"the unit is stopped{' and disabled' if disabled else ''} but not masked")
    else:
        now = manager.systemd_show(unit)
        if now is not None and not (now.unit_file_state or "").startswith("masked"):
            # a unit file in /etc (or ~/.config) outranks the runtime mask in /run: it took no effect
            manager.systemctl("unmask", "--runtime", unit)
            masked = False
            warnings.append(f"the runtime mask of {unit} takes no effect (its unit file {info.path or ''} outranks "
                            f"/run): the unit is stopped{' and disabled' if disabled else ''}, so it stays down "
                            f"unless someone starts it")
    res = manager.systemctl("stop", "--no-block", unit)
    if not res.ok:
        warnings.append(f"{words} stop --no-block {unit} failed: {res.line()}")
    state = {"last": info.active_state}

    def down() -> bool:
        ok, state["last"] = _systemd_down(manager, unit)
        return ok

    forced = False
    stopped = _poll(down, start + max(0.0, timeout_s))
    if not stopped:
        forced = True
        manager.systemctl("kill", "-s", "SIGKILL", unit)
        stopped = _poll(down, time.monotonic() + kill_wait_s)
    return StopResult(forced=forced, stopped=stopped, disabled=disabled, masked=masked,
                      elapsed_s=round(time.monotonic() - start, 3), final_state=state["last"],
                      commands=tuple(manager.log[first:]), warnings=tuple(warnings))


def _stop_launchd(manager: Manager, info: ServiceInfo, start: float, first: int, timeout_s: float,
                  kill_wait_s: float) -> StopResult:
    target = f"{manager.domain}/{info.name}"
    warnings: list[str] = []
    disabled = False
    if not info.disabled:
        res = manager.launchctl("disable", target)
        disabled = res.ok
        if not res.ok:
            warnings.append(f"launchctl disable {target} failed: {res.line()}")
    res = manager.launchctl("bootout", target, timeout_s=max(1.0, timeout_s))
    forced = False

    def gone() -> bool:
        return not manager.launchctl("print", target).ok

    stopped = gone()
    if not stopped:
        stopped = _poll(gone, start + max(0.0, timeout_s))
    if not stopped:
        forced = True
        manager.launchctl("kill", "SIGKILL", target)
        stopped = _poll(gone, time.monotonic() + kill_wait_s)
    if not res.ok and not stopped:
        warnings.append(f"launchctl bootout {target} failed: {res.line()}")
    return StopResult(forced=forced, stopped=stopped, disabled=disabled, masked=False,
                      elapsed_s=round(time.monotonic() - start, 3),
                      final_state="gone" if stopped else "loaded",
                      commands=tuple(manager.log[first:]), warnings=tuple(warnings))


# ---- start --------------------------------------------------------------------------------------

def start(manager: Manager, record: Mapping[str, Any]) -> list[CmdResult]:
    """Undo :func:`stop` from its restore record and ask the manager to start the service.

    ``record`` keys: ``manager``, ``name``, ``masked``, ``disabled`` (what stop did), ``path``
    (launchd plist). Failures are returned, not raised; the caller checks health anyway.
    """
    first = len(manager.log)
    name = str(record["name"])
    if record["manager"] == "systemd":
        if record.get("masked"):
            manager.systemctl("unmask", "--runtime", name)
        if record.get("disabled"):
            manager.systemctl("enable", name)
        manager.systemctl("start", "--no-block", name)
    else:
        target = f"{manager.domain}/{name}"
        if record.get("disabled"):
            manager.launchctl("enable", target)
        if record.get("path"):
            manager.launchctl("bootstrap", manager.domain, str(record["path"]))
        manager.launchctl("kickstart", target)
    return manager.log[first:]


def failed(results: Sequence[CmdResult], *, allow: Sequence[str] = ("bootstrap",)) -> list[CmdResult]:
    """The results that failed, ignoring tolerated ones (``bootstrap`` of an already-loaded agent)."""
    return [r for r in results if not r.ok and not any(a in r.argv for a in allow)]


# ---- doctor --------------------------------------------------------------------------------------

def doctor_checks(install: Install) -> list[tuple[str, bool, str]]:
    """The install's systemd units as doctor sees them, and why one may not start: OpenClaw's server
    installer's unit (``ProtectHome=read-only``, ``ReadWritePaths=~/.openclaw`` only) makes 2026.9.x
    exit 78: it cannot create ``~/.cache/openclaw-<uid>``."""
    checks: list[tuple[str, bool, str]] = []
    scopes: list[Scope] = ["user", "system"] if os.geteuid() == 0 else ["user"]
    for scope in scopes:
        manager = Manager(install, scope=scope, timeout_s=5.0)
        if manager.tool("systemctl") is None:
            return checks
        infos = detect(manager)
        if scope == "system":  # OpenClaw's server installer names its unit openclaw.service (User=openclaw)
            from moltir.openclaw.deployments import configured_system_gateways

            for unit in configured_system_gateways(install.env):
                if unit.env.get("HOME") == str(install.home) and unit.unit not in {i.name for i in infos}:
                    shown = manager.systemd_show(unit.unit)
                    if shown is not None:
                        infos.append(shown)
        for info in infos:
            if info.manager != "systemd":
                continue
            res = manager.systemctl("show", info.name, "--no-pager",
                                    "--property=ProtectHome,ReadWritePaths,ExecMainStatus,SubState,User")
            props = parse_properties(res.stdout) if res.ok else {}
            label = f"{scope} unit {info.name}"
            checks.append((f"service ({scope})", True, f"{info.name}: {info.active_state}"
                           f"{' as ' + props['User'] if props.get('User') else ''}"))
            home = Path(install.env.get("HOME") or install.home)
            rw = props.get("ReadWritePaths", "").split()
            cache = str(home / ".cache")
            if props.get("ProtectHome") in ("read-only", "yes", "tmpfs") and not any(
                    cache == p or cache.startswith(p.rstrip("/") + "/") for p in rw):
                why = " (it exited 78 last time)" if props.get("ExecMainStatus") == "78" else ""
                checks.append((f"{label}", False, f"ProtectHome={props['ProtectHome']} without {cache} in "
                               f"ReadWritePaths=: openclaw 2026.9.x cannot create {cache}/openclaw-<uid> and exits "
                               f"78{why}; add {cache} to ReadWritePaths= and create that folder"))
    return checks
