"""A real systemd for the integration tests: a throwaway systemd-nspawn container over the host's /usr.

    with boot(tmp_path / "machine", binds=[tmp_path], ro_binds=[cache_dir()], name="gw") as m:
        m.add_user("openclaw")
        m.systemctl("start", "openclaw.service", check=True)

The recipe (Debian package ``systemd-container``, root, any PID 1)::

    systemd-nspawn -q -D / --volatile=yes --overlay=/etc::/etc --register=no --keep-unit \\
        --console=pipe -b --machine=NAME [--bind=DIR ...]

boots the host's own systemd as PID 1 of a container whose ``/`` is a fresh tmpfs with the
host's ``/usr`` bound read-only, ``/etc`` an overlay (host ``/etc`` below, a temporary upper
dir in the host's ``/var/tmp`` on top: ``useradd`` or unit files in the container never reach
the host), ``/var``, ``/home``, ``/root``, ``/tmp`` empty tmpfs. There is no ``--private-network``:
the container shares the host's network namespace, so a gateway inside that binds
127.0.0.1:PORT is reachable from the host on 127.0.0.1:PORT (and has the host's egress too).

Commands run inside with ``nsenter --target=PID --all`` where PID is the container's own
systemd (a child of nspawn whose NSpid ends in 1, in a pid namespace other than ours): that pid
is checked before every call, because nsenter on a wrong pid runs the command on the HOST.

Each container gets a unique machine name and its own cgroup (see :func:`_own_cgroups`):
nspawn with ``--keep-unit`` on a host whose PID 1 is not systemd puts ``payload/`` and
``supervisor/`` under the cgroup it was started in, so two containers started from the same
cgroup would share one cgroup tree (their ``system.slice/x.service`` would be the same cgroup).

Worth knowing (measured on Debian 12, systemd 252, hybrid cgroups, PID 1 not systemd):

* Boot to ``is-system-running`` takes 0.4-0.9 s, a SIGTERM halt 0.2-1.4 s.
* The host's enabled units start inside (its /etc): here postgresql@15-main fails (empty /var),
  so the state is "degraded", which counts as booted. A host-enabled daemon that binds a port
  would bind it in the HOST's network namespace.
* /etc/machine-id is the host's ("Host and machine ids are equal: refusing to link journals" on
  the console); the journal stays inside (volatile /run/log/journal), read it with journalctl
  inside. Each container has its own boot id (PrivateTmp dirs are named after it).
* A command run with nsenter keeps the caller's cgroup: inside, its /proc/self/cgroup reads
  ``0::/../../..``. ``run(..., scope=True)`` puts it in a ``run-*.scope`` of the container.
* The container's files are reachable from the host at /proc/<init pid>/root/... (e.g. a
  PrivateTmp dir: /proc/<init>/root/tmp/systemd-private-<boot id>-<unit>-<rand>/tmp, or simply
  /proc/<service pid>/root/tmp), but absolute symlinks there resolve against the host's root.
* SIGKILL to nspawn leaves the container running (its systemd is the namespace's init, not
  nspawn) and its /var/tmp/nspawn-temp-* overlay dir behind: :meth:`Machine.halt` finds and
  kills what is left by pid namespace and cgroup, and removes the scratch dirs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psutil

REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = float(os.environ.get("MOLTIR_TEST_NSPAWN_BOOT_TIMEOUT", "120"))
HALT_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 60.0
CGROUP_PARENT = "moltir-nspawn"          # our containers' cgroups: <caller's cgroup>/moltir-nspawn/<machine>
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_STATES = ("running", "degraded")    # degraded: some host-enabled unit failed in the container
TOOLS = ("systemd-nspawn", "nsenter", "setpriv")


class NspawnError(RuntimeError):
    pass


def missing() -> str | None:
    """One-line reason no container can be booted here, or None."""
    if os.geteuid() != 0:
        return "systemd-nspawn containers need root"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            pkg = "systemd-container" if tool == "systemd-nspawn" else "util-linux"
            return f"{tool} not installed (apt-get install {pkg}, or run `make deps` as root)"
    if not Path("/usr/lib/systemd/systemd").exists():
        return "no /usr/lib/systemd/systemd to boot (apt-get install systemd)"
    return None


# ---- processes and namespaces ------------------------------------------------------------------
def _ns_inode(pid: int, ns: str = "pid") -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return None


def _nspid(pid: int) -> list[int]:
    """The pid of ``pid`` in each pid namespace it is in, outermost first (``NSpid:`` line)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def _container_init(nspawn_pid: int) -> int | None:
    """The host pid of the container's systemd: a child of nspawn that is PID 1 of a pid namespace
    other than ours and has exec'd systemd. None while it is not there (yet)."""
    own_ns = _ns_inode(os.getpid())
    try:
        children = psutil.Process(nspawn_pid).children()
    except psutil.Error:
        return None
    for child in children:
        try:
            nspid = _nspid(child.pid)
            if (len(nspid) >= 2 and nspid[-1] == 1 and _ns_inode(child.pid) not in (None, own_ns)
                    and child.name() == "systemd"):
                return child.pid
        except psutil.Error:
            continue
    return None


def _kill_session(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---- cgroups ------------------------------------------------------------------------------------
def _cgroup_mounts() -> dict[str, str]:
    """{"unified": mountpoint of cgroup2, "name=systemd": mountpoint of the named v1 hierarchy}."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = [*right.split(), "", "", ""][:3]
            mountpoint = left.split()[4]
            if fstype == "cgroup2":
                found.setdefault("unified", mountpoint)
            elif fstype == "cgroup" and "name=systemd" in opts.split(","):
                found.setdefault("name=systemd", mountpoint)
    return found


def _own_cgroup_paths() -> dict[str, str]:
    """Our cgroup in the cgroup2 hierarchy ("0::") and in the name=systemd one."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and controllers == "":
                paths["unified"] = path
            elif "name=systemd" in controllers.split(","):
                paths["name=systemd"] = path
    return paths


def _own_cgroups(machine: str) -> list[Path]:
    """Create ``<our cgroup>/moltir-nspawn/<machine>`` in the cgroup2 and name=systemd hierarchies.

    nspawn (``--keep-unit``, no systemd as host PID 1) roots the container's tree at the cgroup
    it runs in (``payload/`` for the container, ``supervisor/`` for itself): started from one
    fresh cgroup each, two containers never share a cgroup. [] when cgroupfs is not writable.
    """
    mounts, own = _cgroup_mounts(), _own_cgroup_paths()
    made: list[Path] = []
    for key, mountpoint in mounts.items():
        if key not in own:
            continue
        d = Path(mountpoint) / own[key].lstrip("/") / CGROUP_PARENT / machine
        try:
            d.mkdir(parents=True)
        except OSError:
            for m in made:
                with contextlib.suppress(OSError):
                    m.rmdir()
            return []
        made.append(d)
    return made


def _cgroup_pids(dirs: Sequence[Path]) -> set[int]:
    pids: set[int] = set()
    for top in dirs:
        for d, _subdirs, _files in os.walk(top):     # cgroups come and go while we walk: no errors
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
    return pids


def _remove_cgroups(dirs: Sequence[Path]) -> list[str]:
    """rmdir every cgroup below and including ``dirs`` (deepest first); the ones that would not go."""
    stuck: list[str] = []
    for top in dirs:
        for d, _subdirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as exc:
                stuck.append(f"cgroup {d}: {exc.strerror}")
        with contextlib.suppress(OSError):
            top.parent.rmdir()         # moltir-nspawn/, when no other container uses it
    return stuck


def _overlay_scratch(pid: int) -> list[Path]:
    """The host's ``/var/tmp/nspawn-temp-*`` dirs holding the upper layers of the container's
    overlays (``--overlay=/etc::/etc``), from the container's mountinfo."""
    found: list[Path] = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            for opt in line.partition(" - ")[2].split()[-1:][0].split(","):
                if opt.startswith("upperdir="):
                    upper = Path(opt.removeprefix("upperdir="))
                    if upper.parent.name.startswith("nspawn-temp-"):
                        found.append(upper.parent)
    return found


# ---- the machine -------------------------------------------------------------------------------
@dataclass
class UserInfo:
    name: str
    uid: int
    gid: int
    home: str


@dataclass
class Machine:
    """One booted container. Drive it with :meth:`run` / :meth:`systemctl`; :meth:`halt` it."""

    name: str                          # unique machine name (also its cgroup's name)
    root: Path                         # host dir with nspawn's console log
    nspawn: subprocess.Popen[bytes]
    init_pid: int                      # host pid of the container's systemd (PID 1 inside)
    pidns: int                         # inode of its pid namespace
    cgroups: list[Path]                # our cgroups nspawn was started in ([] = shared, see boot)
    boot_s: float                      # nspawn start -> `is-system-running` says running/degraded
    system_state: str                  # what it said
    scratch: list[Path] = field(default_factory=list)   # host dirs nspawn removes when it exits cleanly
    cleaned: list[str] = field(default_factory=list)    # those of them halt() had to remove itself
    _pidns_fd: int = -1                # held open: the namespace inode cannot be reused while we look
    _users: dict[str, UserInfo] = field(default_factory=dict)
    halted: bool = False

    @property
    def console_log(self) -> Path:
        return self.root / "console.log"

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:]) or "(console log empty)"

    # ---- where things are ------------------------------------------------------------------
    def verified_init_pid(self) -> int:
        """:attr:`init_pid`, after checking it still is this container's PID 1 (else raise: an
        nsenter on a recycled pid would run on the host)."""
        if self.halted or self.nspawn.poll() is not None:
            raise NspawnError(f"container {self.name} is not running (nspawn rc {self.nspawn.returncode}); "
                              f"console:\n{self.console_tail()}")
        pid = self.init_pid
        nspid = _nspid(pid)
        if not (len(nspid) >= 2 and nspid[0] == pid and nspid[-1] == 1 and _ns_inode(pid) == self.pidns):
            raise NspawnError(f"pid {pid} is no longer the PID 1 of container {self.name}: refusing to nsenter")
        return pid

    def host_path(self, path: str) -> Path:
        """``path`` of the container as seen from the host (``/proc/<init>/root/...``).

        Only for files and dirs whose path has no absolute symlink: those resolve against the
        HOST's root when walked through /proc/PID/root. For anything else use :meth:`run`.
        """
        return Path(f"/proc/{self.verified_init_pid()}/root") / path.lstrip("/")

    def host_pid(self, container_pid: int) -> int | None:
        """The host pid of the process that is ``container_pid`` inside this container."""
        for proc in psutil.process_iter(["pid"]):
            nspid = _nspid(proc.pid)
            if len(nspid) >= 2 and nspid[-1] == container_pid and _ns_inode(proc.pid) == self.pidns:
                return proc.pid
        return None

    def processes(self) -> list[int]:
        """Host pids of every live process of this container: in its pid namespace (matched by
        inode while we hold the namespace open, so it cannot be another's) or in its cgroups."""
        found = set(_cgroup_pids(self.cgroups)) if self.cgroups else set()
        if self._pidns_fd < 0:
            return sorted(p for p in found if psutil.pid_exists(p))
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and _ns_inode(proc.pid) == self.pidns:
                    found.add(proc.pid)
            except psutil.Error:
                continue
        found.discard(os.getpid())
        return sorted(p for p in found if psutil.pid_exists(p))

    # ---- running things inside ---------------------------------------------------------------
    def user(self, name: str) -> UserInfo:
        """passwd entry of ``name`` inside the container."""
        if name not in self._users:
            out = self.run(["getent", "passwd", name], check=True).stdout.strip().split(":")
            self._users[name] = UserInfo(name=out[0], uid=int(out[2]), gid=int(out[3]), home=out[5])
        return self._users[name]

    def run(self, argv: Sequence[str], *, user: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = RUN_TIMEOUT_S, input: str | None = None, cwd: str | None = None,
            check: bool = False, scope: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces; the caller's cgroup), as root
        or, with ``user``, as that user with a login-like environment: HOME, USER, LOGNAME,
        SHELL, PATH (setpriv --reset-env), XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS of its
        /run/user/UID (what pam_systemd would set), then ``env``. ``cwd`` is a container path.
        On timeout the whole session is killed and TimeoutExpired raised.

        nsenter does not change the cgroup: the command stays in the caller's cgroup, outside
        the container's tree (its /proc/self/cgroup reads ``0::/../../..``). ``scope=True`` (root
        only) runs it through ``systemd-run --scope``, in a transient ``run-*.scope`` of the
        container's system.slice, like a command of a root login session would be."""
        pid = self.verified_init_pid()
        base = {"PATH": ROOT_PATH, "LANG": "C.UTF-8", "HOME": "/root", "USER": "root", "LOGNAME": "root"}
        cmd = ["nsenter", f"--target={pid}", "--all", "--"]
        assignments: dict[str, str] = {}
        if user is not None and user != "root":
            info = self.user(user)
            cmd += ["setpriv", f"--reuid={info.uid}", f"--regid={info.gid}", "--init-groups", "--reset-env", "--"]
            runtime = f"/run/user/{info.uid}"
            assignments = {"LANG": "C.UTF-8", "XDG_RUNTIME_DIR": runtime,
                           "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime}/bus"}
            cwd = cwd or info.home
        if scope:
            if user not in (None, "root"):
                raise ValueError("scope=True is for root commands")
            argv = ["systemd-run", "--quiet", "--scope", "--collect", "--", *argv]
        assignments.update(env or {})
        cmd += ["env", *(["-C", cwd] if cwd else []), "--", *(f"{k}={v}" for k, v in assignments.items()), *argv]
        proc = subprocess.Popen(cmd, env=base, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_session(proc)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from exc
        finally:
            if proc.poll() is None:
                _kill_session(proc)
                proc.wait()
        result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
        if check and result.returncode != 0:
            who = f" as {user}" if user else ""
            raise NspawnError(f"in {self.name}{who}: `{shlex.join(argv)}` exited {result.returncode}\n"
                              f"stdout: {out.strip()}\nstderr: {err.strip()}")
        return result

    def systemctl(self, *args: str, check: bool = False,
                  timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return self.run(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def systemctl_user(self, user: str, *args: str, check: bool = False,
                       timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """``systemctl --user -M USER@`` run as root: the user manager of ``user``."""
        return self.run(["systemctl", "--no-pager", "--user", "-M", f"{user}@", *args], check=check, timeout=timeout)

    def show(self, unit: str, *props: str, user: str | None = None) -> dict[str, str]:
        """``systemctl show -p ...`` of a system unit (or of ``user``'s unit) as a dict."""
        args = ["show", *(f"--property={p}" for p in props), unit]
        proc = self.systemctl_user(user, *args, check=True) if user else self.systemctl(*args, check=True)
        return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)

    def main_pid(self, unit: str, user: str | None = None) -> int:
        """MainPID of a running unit, as seen inside (0 when it has none)."""
        return int(self.show(unit, "MainPID", user=user).get("MainPID") or 0)

    def write_file(self, path: str, text: str, mode: int = 0o644, owner: str | None = None) -> None:
        """Write ``text`` to ``path`` inside, as ``owner`` (root when None): missing parent dirs
        are created (0755) by, and so belong to, that user; the file is 0600 until its ``mode``."""
        script = 'umask 022 && mkdir -p -- "$(dirname -- "$1")" && (umask 077 && cat > "$1") && chmod "$2" -- "$1"'
        self.run(["sh", "-c", script, "sh", path, f"{mode:o}"], user=owner, input=text, check=True)

    def read_file(self, path: str, user: str | None = None) -> str:
        return self.run(["cat", "--", path], user=user, check=True).stdout

    def journal(self, unit: str, user: str | None = None, lines: int = 200) -> str:
        """The journal of a system unit, or of ``user``'s user unit (read as root: the user cannot
        read the volatile journal, and ``journalctl --user-unit`` as root would match _UID=0)."""
        argv = ["journalctl", "--no-pager", "-o", "short-precise", "-n", str(lines)]
        if user is None:
            argv += ["-u", unit]
        else:
            uid = self.user(user).uid
            argv += [f"_SYSTEMD_USER_UNIT={unit}", f"_UID={uid}", "+", f"USER_UNIT={unit}", f"_UID={uid}"]
        proc = self.run(argv, timeout=30)
        return proc.stdout + proc.stderr

    def wait_until_active(self, unit: str, user: str | None = None, timeout: float = 60.0) -> None:
        """Poll ActiveState until ``active``; raise with the journal when it fails or times out."""
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = self.show(unit, "ActiveState", "SubState", "Result", "ExecMainStatus", user=user)
            if state.get("ActiveState") == "active":
                return
            if state.get("ActiveState") == "failed":
                break
            time.sleep(0.2)
        raise NspawnError(f"{unit}{' of ' + user if user else ''} in {self.name} not active: {state}\n"
                          f"{self.journal(unit, user=user, lines=40)}")

    def add_user(self, name: str, timeout: float = 60.0) -> UserInfo:
        """``useradd -m NAME`` + ``loginctl enable-linger NAME``; returns once ``user@UID.service``
        is active and the user manager says running (or degraded)."""
        self.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        info = self.user(name)
        self.run(["loginctl", "enable-linger", name], check=True)
        self.wait_until_active(f"user@{info.uid}.service", timeout=timeout)
        state = self.systemctl_user(name, "is-system-running", "--wait", timeout=timeout).stdout.strip()
        if state not in READY_STATES:
            raise NspawnError(f"user manager of {name} in {self.name}: {state!r}\n"
                              f"{self.journal(f'user@{info.uid}.service', lines=40)}")
        return info

    # ---- the end -------------------------------------------------------------------------------
    def halt(self, timeout: float = HALT_TIMEOUT_S) -> float:
        """SIGTERM nspawn (systemd inside shuts down), wait; SIGTERM again and SIGKILL when it
        will not. Then prove no process of the container is left (pid namespace + cgroups) and
        remove its cgroups. Returns seconds taken; raises if anything had to be forced."""
        if self.halted:
            return 0.0
        t0 = time.monotonic()
        problems: list[str] = []
        try:
            if self.nspawn.poll() is None:
                self.nspawn.send_signal(signal.SIGTERM)
                try:
                    self.nspawn.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    problems.append(f"nspawn did not exit {timeout:.0f}s after SIGTERM")
                    self.nspawn.send_signal(signal.SIGTERM)        # "send SIGTERM again": immediate
                    try:
                        self.nspawn.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.nspawn.kill()
                        self.nspawn.wait(timeout=10)
            deadline = time.monotonic() + 10
            left = self.processes()
            while left and time.monotonic() < deadline:       # the kernel reaps the namespace
                time.sleep(0.1)
                left = self.processes()
            if left:
                problems.append(f"processes survived the halt: {_describe(left)}")
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                psutil.wait_procs([p for p in map(_proc, left) if p], timeout=10)
                left = self.processes()
                if left:
                    problems.append(f"still alive after SIGKILL: {_describe(left)}")
            problems += _remove_cgroups(self.cgroups)
            for d in self.scratch:      # left behind only when nspawn was killed
                if d.exists():
                    shutil.rmtree(d, ignore_errors=True)
                    self.cleaned.append(str(d))
        finally:
            self.halted = True
            if self._pidns_fd >= 0:
                os.close(self._pidns_fd)
                self._pidns_fd = -1
            _ACTIVE.pop(self.name, None)
        if problems:
            raise NspawnError(f"halting {self.name}: " + "; ".join(problems) + f"\nconsole:\n{self.console_tail()}")
        return time.monotonic() - t0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt()


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _describe(pids: Sequence[int]) -> str:
    parts = []
    for pid in pids:
        p = _proc(pid)
        try:
            parts.append(f"{pid}:{p.name() if p else '?'}")
        except psutil.Error:
            parts.append(f"{pid}:?")
    return ", ".join(parts)


_ACTIVE: dict[str, Machine] = {}     # machines booted by this process and not yet halted


def active_machines() -> list[str]:
    """Names of the machines this process booted and has not halted yet."""
    return sorted(_ACTIVE)


@atexit.register
def _halt_forgotten() -> None:
    """A test process that ends (or crashes) with a container still up does not leave it running."""
    for m in list(_ACTIVE.values()):
        with contextlib.suppress(Exception):
            m.halt(timeout=30)


def python_binds() -> list[Path]:
    """Host dirs to bind (read-only) so that this interpreter, ``sys.executable``, runs inside with
    the same imports: the venv (``sys.prefix``), the interpreter it was made from
    (``sys.base_prefix``: a venv's python is a symlink to it, e.g. under /root/.pyenv, which is an
    empty tmpfs inside) and the repository (editable installs point into it). Dirs under /usr
    are there anyway; nested ones are dropped."""
    wanted = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, REPO)}
    wanted = {p for p in wanted if not (p == Path("/usr") or Path("/usr") in p.parents)}
    return sorted(p for p in wanted if not any(q in p.parents for q in wanted))


def boot(root: Path, binds: Sequence[Path] = (), name: str = "moltir", *, ro_binds: Sequence[Path] = (),
         timeout: float = BOOT_TIMEOUT_S, extra_args: Sequence[str] = ()) -> Machine:
    """Boot a container, wait (bounded) until its systemd says running or degraded, return it.

    ``root``: a host dir for the console log. ``binds`` / ``ro_binds``: host dirs bound
    read-write / read-only at the same path inside. ``name``: prefix of the unique machine
    name. Works as a context manager (halts on exit). A boot that fails raises
    :class:`NspawnError` with nspawn's output.
    """
    reason = missing()
    if reason:
        raise NspawnError(reason)
    root.mkdir(parents=True, exist_ok=True)
    machine = f"{name}-{secrets.token_hex(4)}"[:64]
    cgroups = _own_cgroups(machine)
    if not cgroups and _ACTIVE:
        raise NspawnError(f"cannot give {machine} its own cgroup and {sorted(_ACTIVE)} still runs: "
                          "two containers would share one cgroup tree")
    args = ["systemd-nspawn", "-q", "-D", "/", "--volatile=yes", "--overlay=/etc::/etc", "--register=no",
            "--keep-unit", "--console=pipe", f"--machine={machine}",
            *(f"--bind={Path(b).resolve()}" for b in binds),
            *(f"--bind-ro={Path(b).resolve()}" for b in ro_binds), *extra_args, "-b"]
    # The shell moves itself into the fresh cgroups, then becomes nspawn (same pid).
    script = 'for f in "$@"; do case $f in --) break;; esac; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
    argv = ["sh", "-c", script, "sh", *(str(c / "cgroup.procs") for c in cgroups), "--", *args]
    log = root / "console.log"
    t0 = time.monotonic()
    with open(log, "ab") as fh:
        nspawn = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    m = Machine(name=machine, root=root, nspawn=nspawn, init_pid=-1, pidns=-1, cgroups=cgroups,
                boot_s=0.0, system_state="")
    _ACTIVE[machine] = m
    try:
        deadline = t0 + timeout
        while True:
            if nspawn.poll() is not None:
                raise NspawnError(f"systemd-nspawn exited with rc {nspawn.returncode} while booting {machine}; "
                                  f"output:\n{m.console_tail()}")
            pid = _container_init(nspawn.pid)
            if pid is not None:
                break
            if time.monotonic() > deadline:
                raise NspawnError(f"no systemd came up in {machine} within {timeout:.0f}s; output:\n{m.console_tail()}")
            time.sleep(0.05)
        m.init_pid, m.pidns = pid, _ns_inode(pid) or -1
        m._pidns_fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
        m.scratch = [*_overlay_scratch(pid), Path("/run/systemd/nspawn/propagate") / machine]
        state = ""
        while True:
            # --wait blocks until startup finished; before systemd's private bus is up it fails at once.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NspawnError(f"{machine}: systemd not ready within {timeout:.0f}s (last state {state!r}); "
                                  f"output:\n{m.console_tail()}")
            try:
                state = m.run(["systemctl", "is-system-running", "--wait"], timeout=remaining).stdout.strip()
            except subprocess.TimeoutExpired:
                continue
            if state in READY_STATES:
                break
            time.sleep(0.1)     # "offline": its bus is not up yet; a dead nspawn makes run() raise
        m.boot_s, m.system_state = time.monotonic() - t0, state
    except BaseException:
        with contextlib.suppress(NspawnError):
            m.halt(timeout=30)
        raise
    return m

