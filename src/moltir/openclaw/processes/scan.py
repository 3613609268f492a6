"""Find an install's running gateways: its lock files' owners first, then the process table."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import psutil

from moltir.openclaw.processes.locks import LockFile, install_locks, lock_owner
from moltir.openclaw.processes.names import (
    CONFIG_VARS,
    STATE_VARS,
    WRAPPER_NAMES,
    environ_install_paths,
    environ_is_install,
    install_paths,
    is_gateway_argv,
    is_gateway_name,
)
from moltir.openclaw.processes.netns import same_netns

if TYPE_CHECKING:
    from moltir.openclaw import Install

Source = Literal["lock", "scan"]


@dataclass(frozen=True)
class GatewayProcess:
    """A running gateway process that belongs to the install."""

    pid: int
    create_time: float
    name: str
    username: str | None
    uid: int | None
    port: int | None  # the install's port when it listens there, else its first listening port
    listen_ports: tuple[int, ...]
    wrapper_pid: int | None  # 2026.1.29: the ``openclaw`` respawn wrapper that is its parent
    source: Source  # found through a lock file, or by scanning the process table
    matched_by: str  # "lock", "environ", "port" or "cmdline"
    ppid: int | None = None
    lock_path: str | None = None
    state_dir: str | None = None  # from its environment, when readable
    config_path: str | None = None
    environ_readable: bool = True

    def process(self) -> psutil.Process:
        """The live process, checked to be the same one (pid + create time); NoSuchProcess if not."""
        proc = psutil.Process(self.pid)
        if abs(proc.create_time() - self.create_time) > 0.01:
            raise psutil.NoSuchProcess(self.pid, msg="pid reused by another process")
        return proc

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["listen_ports"] = list(self.listen_ports)
        return data


def listen_ports(proc: psutil.Process) -> tuple[int, ...]:
    """TCP ports ``proc`` listens on (empty when unreadable)."""
    try:
        conns = proc.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return ()
    ports = {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}
    return tuple(sorted(ports))


def _port_owners(ports: set[int]) -> tuple[set[int], bool]:
    """Pids that listen on one of ``ports``, and whether a listener's owner is invisible to us.

    Without privileges psutil cannot map another user's socket to its pid (pid None).
    """
    owners: set[int] = set()
    invisible = False
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return owners, False
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports:
            if c.pid:
                owners.add(c.pid)
            else:
                invisible = True
    return owners, invisible


def _wrapper_of(proc: psutil.Process) -> int | None:
    try:
        parent = proc.parent()
        if parent is not None and parent.name() in WRAPPER_NAMES:
            return parent.pid
    except psutil.Error:
        pass
    return None


def _describe(proc: psutil.Process, *, source: Source, matched_by: str, install_port: int | None,
              lock: LockFile | None = None) -> GatewayProcess | None:
    try:
        with proc.oneshot():
            create_time = proc.create_time()
            name = proc.name()
            ppid = proc.ppid()
            try:
                username: str | None = proc.username()
            except (psutil.AccessDenied, KeyError):
                username = None
            try:
                uid: int | None = proc.uids().real
            except psutil.AccessDenied:
                uid = None
            try:
                env = proc.environ()
                readable = True
            except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
                env, readable = {}, False
    except psutil.Error:
        return None
    ports = listen_ports(proc)
    if install_port is not None and install_port in ports:
        port: int | None = install_port
    elif ports:
        port = ports[0]
    else:
        port = lock.port if lock else None
    state_dir, config_path = environ_install_paths(env) if readable else (None, None)
    return GatewayProcess(
        pid=proc.pid, create_time=create_time, name=name, username=username, uid=uid, port=port,
        listen_ports=ports, wrapper_pid=_wrapper_of(proc), source=source, matched_by=matched_by, ppid=ppid,
        lock_path=lock.path if lock else None, state_dir=state_dir, config_path=config_path,
        environ_readable=readable)


def _install_port(install: Install) -> int | None:
    from moltir.errors import MoltirError

    try:
        return install.gateway_port()
    except MoltirError:  # unreadable/invalid config: scan by environment only
        return None


def find_gateways(install: Install, *, extra_ports: Iterable[int] = ()) -> list[GatewayProcess]:
    """Every running gateway process of ``install``, lock-file owners first.

    1. lock files of the install: the owner pid must be alive, be named like a gateway and be
       the process that wrote the lock (same start ticks, or created before the lock) -- a
       stale lock whose pid now belongs to something else is ignored;
    2. the process table: gateway-named processes (or a ``openclaw gateway run`` that has not
       retitled itself yet) whose environment resolves to the install's state dir or config
       path (realpath), or, when the environment is unreadable, that listen on the install's
       port (or one of ``extra_ports``).

    Wrappers (2026.1.29) are reported as ``wrapper_pid`` of their gateway, not separately.
    """
    paths = install_paths(install)
    port = _install_port(install)
    ports = {p for p in (port, *extra_ports) if p}
    found: dict[int, GatewayProcess] = {}

    for lock in install_locks(install):
        proc = lock_owner(lock)
        if proc is None or proc.pid in found:
            continue
        desc = _describe(proc, source="lock", matched_by="lock", install_port=port, lock=lock)
        if desc is not None:
            found[proc.pid] = desc
    _scan_table(found, paths, port, ports)
    return sorted(found.values(), key=lambda g: (g.source != "lock", g.pid))


def _scan_table(found: dict[int, GatewayProcess], paths: tuple[str | None, str | None], port: int | None,
                ports: set[int]) -> None:
    """Add to ``found`` the gateways of the install (``paths``) in the process table."""
    me = os.getpid()
    owners = functools.cache(functools.partial(_port_owners, ports))  # looked up once, when first needed
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.pid in found or proc.pid == me:
            continue
        candidate = _candidate(proc)
        if candidate is None:
            continue
        by_name, env = candidate
        matched_by = _matched_by(proc, env, by_name, paths, ports, owners)
        if not matched_by:
            continue
        if not by_name and _has_gateway_child(proc):
            continue  # a launcher before it retitled itself; 2026.1.29's wrapper is reported via its child
        desc = _describe(proc, source="scan", matched_by=matched_by, install_port=port)
        if desc is not None:
            found[proc.pid] = desc


def _candidate(proc: psutil.Process) -> tuple[bool, dict[str, str] | None] | None:
    """For a process that may be a gateway: (found by its title, its environment or None when unreadable);
    None when it is not one."""
    try:
        name = proc.info.get("name")
        argv = proc.info.get("cmdline") or []
        titled = name in WRAPPER_NAMES  # "openclaw": a gateway on some releases, a client or wrapper on others
        if not (is_gateway_name(name) or is_gateway_argv(argv) or titled):
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if titled and not listen_ports(proc):
            return None  # a CLI client or a respawn wrapper (its gateway child is found by name)
        by_name = is_gateway_name(name) or titled
        try:
            env: dict[str, str] | None = proc.environ()
        except (psutil.AccessDenied, OSError):
            env = None
    except psutil.Error:
        return None
    return by_name, env


def _matched_by(proc: psutil.Process, env: dict[str, str] | None, by_name: bool,
                paths: tuple[str | None, str | None], ports: set[int],
                owners: Callable[[], tuple[set[int], bool]]) -> str:
    """How ``proc`` was tied to the install ("environ", "cmdline", "port"), or "" when it was not."""
    if env is not None:
        if any(k in env for k in (*STATE_VARS, *CONFIG_VARS, "HOME", "OPENCLAW_HOME")) and environ_is_install(
                env, paths):
            return "environ" if by_name else "cmdline"
    elif ports:
        # cannot see its environment (another user's process): fall back to the port. When
        # even the socket's owner is invisible to us, a gateway-named process we cannot
        # inspect while the install's port is held is reported too (callers refuse to act).
        # A port names a socket in one network namespace only: a gateway in another namespace
        # (a container, another ``ip netns`` host) on the same port number is not the install's.
        port_owners, invisible = owners()
        if proc.pid in port_owners:
            return "port"
        if ((set(listen_ports(proc)) & ports) or (by_name and invisible)) and same_netns(proc.pid):
            return "port"
    return ""


def _has_gateway_child(proc: psutil.Process) -> bool:
    try:
        return any(is_gateway_name(c.name()) for c in proc.children())
    except psutil.Error:
        return False


def describe_process(pid: int, *, matched_by: str, install: Install) -> GatewayProcess | None:
    """A :class:`GatewayProcess` for a pid found another way (a container engine's main pid)."""
    try:
        return _describe(psutil.Process(pid), source="scan", matched_by=matched_by, install_port=_install_port(install))
    except psutil.Error:
        return None


def find_all_gateway_envs(uid: int) -> list[dict[str, str]]:
    """The environments of every running gateway process owned by ``uid`` (any install)."""
    out = []
    for proc in psutil.process_iter(["name"]):
        try:
            name = proc.info.get("name")
            if not (is_gateway_name(name) or (name in WRAPPER_NAMES and listen_ports(proc))):
                continue
            if proc.uids().real != uid:
                continue
            out.append(dict(proc.environ()))
        except (psutil.Error, OSError):
            continue
    return out
