"""psutil adapter: find an install's gateway processes, snapshot them, stop them.

No moltir policy lives here (what to refuse, what to record, when to fail is the action's
business); this module only answers "which processes", "what do they look like" and
"signal them, bounded". Facts it relies on (shared/research/openclaw-run.md §4,
openclaw-old-run.md §3, openclaw-facts.md §4):

* the gateway retitles itself: ``name()`` is ``openclaw-gateway`` (``clawdbot-gateway`` for
  clawdbot), ``/proc/PID/comm`` the 15-character ``openclaw-gatewa``, and ``cmdline()`` holds
  no arguments at all, so the install is identified from the process ENVIRONMENT
  (``OPENCLAW_STATE_DIR``, ``OPENCLAW_CONFIG_PATH``, ``HOME``, ``OPENCLAW_PROFILE``). Some
  releases title the gateway plain ``openclaw`` (seen on 2026.5.28: one process, no wrapper),
  the same title as the CLI and as the respawn wrapper of 2026.1.29-2026.4.1: such a process
  is a gateway when it wrote the install's lock, or when its environment resolves to the
  install and it listens on a TCP port (a CLI client never listens; a wrapper has the
  ``openclaw-gateway`` child and no socket);
* lock files (JSON, maybe padded with blanks) name the owner's ``pid``, ``port``,
  ``configPath``, ``createdAt`` and, on Linux, ``startTime`` (field 22 of ``/proc/PID/stat``).
  2026.9.x keeps them in ``<state>/tmp/openclaw-<uid>/`` and removes them on a clean stop;
  2026.1.29 keeps them in ``$TMPDIR/openclaw-<uid>/`` and never removes them (always stale
  after a stop), hence the pid-reuse checks below;
* 2026.1.29 runs an ``openclaw`` respawn wrapper whose child is the real gateway: killing the
  wrapper alone orphans the server, so both are signalled;
* 2026.9.x gateways have node worker children in their own sessions; a SIGTERM drain can hang
  ~325 s when a channel's network is unreachable and a second SIGTERM is ignored, so every
  wait here is bounded and ends in SIGKILL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil

if TYPE_CHECKING:
    from moltir.openclaw import Install

GATEWAY_NAMES = frozenset({"openclaw-gateway", "clawdbot-gateway"})
# /proc/PID/comm is truncated to 15 characters; psutil usually restores the full name from
# cmdline[0], but not when cmdline is unreadable.
_GATEWAY_COMMS = frozenset(n[:15] for n in GATEWAY_NAMES)
WRAPPER_NAMES = frozenset({"openclaw", "clawdbot"})
# Environment variables that say which install a process acts on.
_STATE_VARS = ("OPENCLAW_STATE_DIR", "CLAWDBOT_STATE_DIR")
_CONFIG_VARS = ("OPENCLAW_CONFIG_PATH", "CLAWDBOT_CONFIG_PATH")
LOCK_CLOCK_SLACK_S = 2.0  # lock timestamps and create times come from different clocks/roundings
_SECRET_FLAGS = ("--token", "--password", "--api-key", "--bot-token", "--secret")

Source = Literal["lock", "scan"]


@dataclass(frozen=True)
class LockFile:
    """One gateway lock file of the install (parsed, not yet verified)."""

    path: str
    pid: int | None
    port: int | None
    config_path: str | None
    state_dir: str | None
    role: str | None
    created: float  # epoch seconds: ``createdAt`` when parseable, else the file's mtime
    start_ticks: int | None  # ``startTime`` (Linux: /proc/PID/stat field 22)


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


# ---- lock files ---------------------------------------------------------------------------------

def create_clock() -> float:
    """Now, on the clock of ``psutil.Process.create_time()``, to tell whether a process started
    before or after a moment.

    On Linux a create time is the kernel's boot time (``btime`` in /proc/stat, whole seconds) plus
    the process's start tick, so it lags ``time.time()`` by up to a second, by a different amount
    on each machine: a process started just after ``time.time()`` can look older than it. Boot
    time plus CLOCK_BOOTTIME is the same clock, to the tick.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, psutil.Error):
            return psutil.boot_time() + time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time()


def _clock_tick() -> float:
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return 0.01


#: create times are whole clock ticks since boot (10 ms): a process started a few ms after a moment
#: can carry a create time just before it
CREATE_TIME_SLACK_S = 2 * _clock_tick()


def started_since(create_time: float, since: float) -> bool:
    """Did a process with this ``create_time`` start at or after ``since`` (``create_clock()``)?

    Decision: within :data:`CREATE_TIME_SLACK_S` counts as after. A create time is floored to the
    clock tick, so a respawn made 3 ms after the signal looked up to 7 ms older than it and was
    taken for the gateway that was stopped (seen as a flaky test on a fast machine); callers exclude
    the stopped gateway by its pid, so the slack cannot make it look new."""
    return create_time >= since - CREATE_TIME_SLACK_S


def _real(path: str | os.PathLike[str] | None) -> str | None:
    if not path:
        return None
    try:
        return os.path.realpath(os.fspath(path))
    except (OSError, ValueError):
        return None


def _parse_time(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_lock(path: Path) -> LockFile | None:
    """Parse one lock file; None when it is unreadable or not a gateway lock payload."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
        mtime = path.stat().st_mtime
    except OSError:
        return None
    try:
        data = json.loads(raw.strip() or "null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    created = _parse_time(data.get("createdAt"))
    port = _as_int(data.get("port"))
    return LockFile(
        path=str(path),
        pid=_as_int(data.get("pid")),
        port=port if port and 0 < port < 65536 else None,
        config_path=data.get("configPath") if isinstance(data.get("configPath"), str) else None,
        state_dir=data.get("stateDir") if isinstance(data.get("stateDir"), str) else None,
        role=data.get("role") if isinstance(data.get("role"), str) else None,
        created=created if created is not None else mtime,
        start_ticks=_as_int(data.get("startTime")),
    )


def install_locks(install: Install) -> list[LockFile]:
    """The gateway lock files that belong to ``install`` (by location, configPath or stateDir)."""
    state_real = _real(install.state_dir)
    config_real = _real(install.config_path)
    found: list[LockFile] = []
    seen: set[str] = set()
    for folder in install.lock_dirs():
        try:
            names = sorted(p for p in folder.glob("gateway*.lock") if p.is_file())
        except OSError:
            continue
        inside_state = state_real is not None and (_real(folder) or "").startswith(state_real + os.sep)
        for path in names:
            real = _real(path) or str(path)
            if real in seen:
                continue
            seen.add(real)
            lock = read_lock(path)
            if lock is None or (lock.role not in (None, "gateway")):
                continue
            ours = inside_state or (config_real is not None and _real(lock.config_path) == config_real) or (
                state_real is not None and _real(lock.state_dir) == state_real)
            if ours:
                found.append(lock)
    return found


def _linux_start_ticks(pid: int) -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 1:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def lock_owner(lock: LockFile) -> psutil.Process | None:
    """The live gateway that wrote ``lock``, or None (dead pid, reused pid, not a gateway)."""
    if lock.pid is None or lock.pid <= 0:
        return None
    try:
        proc = psutil.Process(lock.pid)
        name = proc.name()
        if proc.status() == psutil.STATUS_ZOMBIE or not (is_gateway_name(name) or name in WRAPPER_NAMES):
            return None
        if lock.start_ticks is not None:
            ticks = _linux_start_ticks(lock.pid)
            if ticks is not None:
                return proc if ticks == lock.start_ticks else None
        # a process younger than the lock cannot have written it: the pid was reused
        return proc if proc.create_time() <= lock.created + LOCK_CLOCK_SLACK_S else None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None


# ---- scanning -------------------------------------------------------------------------------

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


def environ_install_paths(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(state dir, config path) a process with environment ``env`` acts on, by OpenClaw's rules."""
    from moltir.errors import MoltirError
    from moltir.openclaw import discover

    try:
        # binary lookup is irrelevant here: an empty PATH keeps discover() from searching
        inst = discover(env={**env, "PATH": ""})
    except MoltirError:
        return None, None
    return _real(inst.state_dir), _real(inst.config_path)


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
    state_real = _real(install.state_dir)
    config_real = _real(install.config_path)
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

    me = os.getpid()
    port_owners: set[int] | None = None
    invisible = False
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.pid in found or proc.pid == me:
            continue
        try:
            name = proc.info.get("name")
            argv = proc.info.get("cmdline") or []
            titled = name in WRAPPER_NAMES  # "openclaw": a gateway on some releases, a client or wrapper on others
            if not (is_gateway_name(name) or is_gateway_argv(argv) or titled):
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if titled and not listen_ports(proc):
                continue  # a CLI client or a respawn wrapper (its gateway child is found by name)
            by_name = is_gateway_name(name) or titled
            try:
                env = proc.environ()
            except (psutil.AccessDenied, OSError):
                env = None
        except psutil.Error:
            continue
        matched_by = ""
        if env is not None:
            if any(k in env for k in (*_STATE_VARS, *_CONFIG_VARS, "HOME", "OPENCLAW_HOME")):
                s, c = environ_install_paths(env)
                if (s is not None and s == state_real) or (c is not None and c == config_real):
                    matched_by = "environ" if by_name else "cmdline"
        elif ports:
            # cannot see its environment (another user's process): fall back to the port. When
            # even the socket's owner is invisible to us, a gateway-named process we cannot
            # inspect while the install's port is held is reported too (callers refuse to act).
            if port_owners is None:
                port_owners, invisible = _port_owners(ports)
            if proc.pid in port_owners or (set(listen_ports(proc)) & ports) or (by_name and invisible):
                matched_by = "port"
        if not matched_by:
            continue
        if not by_name:
            # a launcher before it retitled itself; 2026.1.29's wrapper is reported via its child
            try:
                if any(is_gateway_name(c.name()) for c in proc.children()):
                    continue
            except psutil.Error:
                pass
        desc = _describe(proc, source="scan", matched_by=matched_by, install_port=port)
        if desc is not None:
            found[proc.pid] = desc
    return sorted(found.values(), key=lambda g: (g.source != "lock", g.pid))


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


# ---- snapshots ------------------------------------------------------------------------------

def scrub_argv(argv: Sequence[str]) -> list[str]:
    """argv without trailing blanks (retitled processes) and with credential flag values hidden."""
    args = list(argv)
    while args and not args[-1]:
        args.pop()
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag, eq, _value = arg.partition("=")
        if flag in _SECRET_FLAGS:
            if eq:
                out.append(f"{flag}=<redacted>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


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
    try:
        snap["open_files"] = [{"fd": f.fd, "path": f.path} for f in proc.open_files()]
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError) as exc:
        snap["open_files"] = None
        snap["open_files_error"] = type(exc).__name__
    except psutil.NoSuchProcess:
        snap["gone"] = True
    try:
        snap["connections"] = [_conn_dict(c) for c in proc.net_connections(kind="inet")]
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError) as exc:
        snap["connections"] = None
        snap["connections_error"] = type(exc).__name__
    except psutil.NoSuchProcess:
        snap["gone"] = True
    try:
        snap["environ_names"] = sorted(proc.environ())
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError) as exc:
        snap["environ_names"] = None
        snap["environ_error"] = type(exc).__name__
    except psutil.NoSuchProcess:
        snap["gone"] = True
    return snap


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


# ---- stopping -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TerminateResult:
    signalled: tuple[int, ...]  # got SIGTERM
    exited: tuple[int, ...]  # gone without SIGKILL
    killed: tuple[int, ...]  # needed SIGKILL
    survivors: tuple[int, ...]  # still alive after SIGKILL and its wait (should be empty)
    denied: tuple[int, ...]  # we were not allowed to signal these
    forced: bool  # a root (the gateway or its wrapper) needed SIGKILL
    elapsed_s: float
    events: tuple[dict[str, Any], ...] = field(default=())


def _alive(proc: psutil.Process) -> bool:
    """Still holding resources. A multi-threaded process whose main thread exited first shows as a
    zombie while its other threads are still being torn down (node: ~700 MB to unmap), and until
    they are gone its files and listening sockets stay open: that is not gone yet."""
    try:
        if not proc.is_running():
            return False
        if proc.status() != psutil.STATUS_ZOMBIE:
            return True
        return proc.num_threads() > 1
    except psutil.Error:
        return False


def _reap(procs: Iterable[psutil.Process]) -> None:
    """Collect the exit status of our own children (they would stay zombies otherwise)."""
    me = os.getpid()
    for p in procs:
        with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
            if p.ppid() == me and p.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(p.pid, os.WNOHANG)


def wait_gone(procs: Sequence[psutil.Process], deadline: float, *,
              interval: float = 0.05) -> list[psutil.Process]:
    """Poll until every process in ``procs`` is gone or ``deadline`` (monotonic); return the alive."""
    alive = list(procs)
    while True:
        _reap(alive)
        alive = [p for p in alive if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(interval)


def terminate_tree(roots: Sequence[psutil.Process], *, timeout_s: float, kill_wait_s: float = 5.0,
                   children_grace_s: float = 2.0, signal_roots: bool = True,
                   on_event: Callable[[str, dict[str, Any]], None] | None = None) -> TerminateResult:
    """SIGTERM ``roots``, wait ``timeout_s``, then SIGKILL what is left of their trees.

    The trees are collected BEFORE any signal (children are re-parented once their parent
    dies). Only the roots get SIGTERM (the gateway drains its own workers); once every root
    is gone, descendants get ``children_grace_s`` to exit on their own. Whatever is still
    alive at the bound is SIGKILLed (newly spawned descendants of survivors included) and
    waited for ``kill_wait_s``. A process that exits (or was reused) meanwhile is skipped.
    ``signal_roots=False`` skips the SIGTERM (the caller already stopped them another way)
    and only waits and kills.
    """
    def emit(name: str, **fields: Any) -> None:
        events.append({"event": name, **fields})
        if on_event is not None:
            on_event(name, fields)

    events: list[dict[str, Any]] = []
    start = time.monotonic()
    tree: dict[int, psutil.Process] = {}
    root_pids = [r.pid for r in roots]
    for root in roots:
        tree.setdefault(root.pid, root)
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                tree.setdefault(child.pid, child)
    denied: list[int] = []
    signalled: list[int] = []
    if signal_roots:
        for root in roots:
            try:
                root.terminate()
                signalled.append(root.pid)
                emit("proc.sigterm", pid=root.pid)
            except psutil.NoSuchProcess:
                continue
            except psutil.AccessDenied:
                denied.append(root.pid)

    deadline = start + max(0.0, timeout_s)
    alive_roots = wait_gone([tree[p] for p in root_pids], deadline)
    rest = [p for pid, p in tree.items() if pid not in root_pids]
    # once the roots are gone their workers normally follow within moments: give them a grace
    rest_alive = ([p for p in rest if _alive(p)] if alive_roots
                  else wait_gone(rest, time.monotonic() + children_grace_s))
    leftovers = [*alive_roots, *rest_alive]
    # pick up descendants spawned during the drain
    for p in list(leftovers):
        with contextlib.suppress(psutil.Error):
            for child in p.children(recursive=True):
                if child.pid not in tree:
                    tree[child.pid] = child
                    leftovers.append(child)
    killed: list[int] = []
    for p in leftovers:
        try:
            p.kill()
            killed.append(p.pid)
            emit("proc.sigkill", pid=p.pid, root=p.pid in root_pids)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            denied.append(p.pid)
    survivors = wait_gone(leftovers, time.monotonic() + kill_wait_s) if leftovers else []
    _reap(tree.values())
    exited = [pid for pid in tree if pid not in killed and pid not in {s.pid for s in survivors}]
    return TerminateResult(
        signalled=tuple(signalled), exited=tuple(sorted(exited)), killed=tuple(killed),
        survivors=tuple(s.pid for s in survivors), denied=tuple(sorted(set(denied))),
        forced=any(pid in root_pids for pid in killed), elapsed_s=round(time.monotonic() - start, 3),
        events=tuple(events))


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


def _openclaw_like(proc: psutil.Process) -> bool:
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
    state_real = _real(install.state_dir)
    config_real = _real(install.config_path)
    for child in children:
        try:
            if not started_since(child.create_time(), since) or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if not _openclaw_like(child):
                continue
            s, c = environ_install_paths(child.environ())
        except (psutil.Error, OSError):
            continue
        if (s is not None and s == state_real) or (c is not None and c == config_real):
            return child
    return None


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


_WS_RE = re.compile(r"\s+")


def one_line(text: str, limit: int = 160) -> str:
    text = _WS_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_command(argv: Sequence[str], limit: int = 120) -> str:
    """A command line for one message line that keeps what names it wherever it was installed: long
    paths lose their folders ("…/respawner.py"); a line still too long keeps the program and the script
    it runs (its first argument that is a path), and is cut in the middle of the rest."""
    words = []
    for word in argv:
        word = _WS_RE.sub(" ", word).strip()
        if "/" in word and len(word) > 32 and not word.startswith("-") and " " not in word:
            word = "…/" + "/".join(word.rstrip("/").split("/")[-2:])
        words.append(word)
    words = [w for w in words if w]
    text = " ".join(words)
    if len(text) <= limit or not words:
        return text
    core_n = 1 + next((i for i, w in enumerate(words[1:3], 1) if "/" in w and " " not in w), 0)
    core = " ".join(words[:core_n])
    rest = " ".join(words[core_n:])
    room = limit - len(core) - 3
    if room < 8:
        return core[: limit - 1] + "…"
    if len(rest) <= room + 3:
        return f"{core} {rest}"
    head = room // 3
    return f"{core} {rest[:head]}…{rest[-(room - head - 1):]}"


def run_capture(argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str],
                cwd: str | None = None, run_as: tuple[int, int] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(capture_output=True, timeout=…)`` that leaves nothing behind.

    On timeout ``subprocess.run`` kills only the direct child. The ``openclaw`` CLI is a
    respawn wrapper whose real CLI is its child, and some CLI commands never exit (openclaw
    issues #35609, #62400: one spins at 90 % CPU), so that child would live on, orphaned. Here
    the command gets its own session and the whole session is killed, on timeout and on Ctrl-C
    (a session of its own gets no signal from the terminal). On timeout it raises
    ``subprocess.TimeoutExpired`` carrying what the command wrote (``output``, ``stderr``);
    ``OSError`` when it cannot start. Output is bytes: callers decide how to decode it.
    ``run_as`` (uid, gid): run it as that user, no supplementary groups (root acting on another
    user's install: files the CLI creates stay that user's).
    """
    who: dict[str, Any] = ({"user": run_as[0], "group": run_as[1], "extra_groups": []}
                           if run_as is not None else {})
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **who)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stdout, stderr = _end_session(proc)
        raise subprocess.TimeoutExpired(list(argv), timeout_s, output=stdout, stderr=stderr) from None
    except BaseException:
        _end_session(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)


def _end_session(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGKILL ``proc``'s whole session and return what it wrote; bounded, since a process that
    left the session could hold the pipes open (then nothing is returned after 5 s)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return b"", b""
