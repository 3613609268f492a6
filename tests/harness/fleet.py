"""Several OpenClaw "hosts" on this machine, reached over real SSH: the fleet tests' lab (Ansible).

    with fleet_at(root, hosts=3) as fleet:          # or Fleet(root, 3).setup() ... fleet.teardown()
        fleet.start_gateways()
        fleet.playbook("contain", "--check", "--diff")

Each host is, all created and removed by the harness itself (root needed):

* **a network namespace** (``ip netns add``) joined to the root namespace by a veth pair. The harness
  picks one private /24 (``10.X.Y.0/24``) that no address or route of this machine overlaps, and gives
  host *i* the /30 ``10.X.Y.4i/30`` of it: the root end of the veth is ``.4i+1``, the namespace end
  ``.4i+2`` (the host's address). Nothing else is routed: a namespace reaches only its peer address,
  the tests talk only to these addresses, and the gateway's loopback is the namespace's own.
* **a user account** (``useradd``, password ``*``: no password login, not locked) whose HOME lies under
  the fleet's folder. The namespaces share the filesystem, so a host is one user with its own home.
* **its own sshd** (Debian's ``openssh-server``, ``/usr/sbin/sshd -D``) started inside the namespace
  on the host's address, port 22, with a config and an ed25519 host key under the fleet's folder: key
  authentication only (one throwaway ed25519 key for the controller, in the host user's
  ``~/.ssh/authorized_keys``), ``AllowUsers`` that user, no forwarding, ``UsePAM no``. Its ``SetEnv``
  gives an SSH session what a login on a real host would have: ``PATH`` with node, openclaw and
  moltir, ``TMPDIR``, and ``DBUS_SESSION_BUS_ADDRESS`` of the host's keyring (what ``pam_systemd`` and
  the user's session bus give a real login).
* **a private Secret Service** (dbus-daemon + gnome-keyring-daemon, unlocked; the recipe of
  :mod:`tests.harness.secret_service`) running as the host's user: moltir keeps the rotated gateway
  token there, and the gateway reads it back through ``moltir-secret``.
* **a real OpenClaw gateway** (2026.9.6): the home of :func:`tests.harness.home.create_home` (commented
  multi-channel config, fake Telegram and fake model server), created *inside the namespace* so the
  fakes listen on the namespace's loopback, owned by the host's user and run as that user in the
  namespace.

**moltir for the hosts' users.** The test's own venv runs an interpreter under ``/root/.pyenv`` that
other users cannot read, and opening ``/root`` (``chmod o+x``) is not something to do to a real
machine. So the harness builds one venv per fleet with Debian's ``/usr/bin/python3`` (readable by
everyone) in the fleet's folder, and copies into it moltir's source from this repository and, file by
file from their ``RECORD``, the installed distributions moltir depends on (the test venv's own, same
Python minor version and so the same ABI: checked, else the test skips). Offline, about a second,
nothing downloaded, nothing outside the fleet's folder touched. ``moltir`` and ``moltir-secret`` are
two small scripts in ``<fleet>/bin`` (on the hosts' PATH) running that venv's python, exactly like
pipx's entry points, so the launcher moltir writes for the gateway's token re-runs that same python.

Teardown (:meth:`Fleet.teardown`, also run at exit for a fleet left set up) kills every process of
the hosts' users and every process inside the namespaces (sshd, a foreign gateway), the ssh control
masters of the controller, stops the fakes, deletes the namespaces (and the veths if the kernel has
not yet), the files the users left in the shared ``/tmp``, the users and their groups, and the
fleet's folder; it checks that none of it is left.

The code: :mod:`tests.harness.fleet_system` (namespaces, processes, files, the hosts' moltir venv),
:mod:`tests.harness.fleet_hosts` (one host: made and removed), this module (the fleet, the controller's
side: ansible.cfg, inventory, the collection installed, playbooks, ssh; the gateways; teardown).

Missing prerequisites (not root, no ``ip``/``sshd``/``setpriv``/``useradd``, no keyring daemons, no
ansible-core in the test venv, Debian's python3 of another minor version, openclaw 2026.9.6 not
installed or not readable by other users) skip with one line, or fail under ``CI=true``
(:func:`missing` returns the reason; the tests call :func:`tests.harness.prereq.missing_prerequisite`).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.harness.fleet_hosts import SSHD, FleetError, FleetHost, HostSetup
from tests.harness.fleet_system import (
    REPO,
    SYSTEM_PYTHON,
    Daemon,
    build_moltir_venv,
    chown_tree,
    in_netns,
    pick_subnet,
    procs_of_uid,
    rmtree,
    terminate,
)
from tests.harness.net import LOOPBACK, wait_until
from tests.harness.releases import Release, cache_dir, keyring_missing, release

COLLECTION_SRC = REPO / "ansible" / "ansible_collections" / "moltir" / "openclaw"
TOOLS = ("ip", "setpriv", "useradd", "userdel", "groupdel", "ssh", "ssh-keygen", "sudo", "visudo", "dbus-daemon",
         "gnome-keyring-daemon")
RELEASE_ID = "2026.9.6"
GATEWAY_READY_S = float(os.environ.get("MOLTIR_TEST_GATEWAY_READY_TIMEOUT", "180"))


def ansible_bin(name: str) -> Path:
    """``ansible-playbook`` & co. next to the test's python (ansible-core in the test venv)."""
    return Path(sys.executable).parent / name


def missing() -> str | None:
    """One-line reason no fleet can be set up here, or None."""
    if os.geteuid() != 0:
        return "the fleet harness needs root (network namespaces, users, sshd)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install iproute2 openssh-server util-linux sudo dbus gnome-keyring)"
    if not SSHD.exists():
        return f"{SSHD} not found (apt-get install openssh-server, or run `make deps` as root)"
    reason = keyring_missing()
    if reason:
        return reason
    for tool in ("ansible-playbook", "ansible-galaxy", "ansible"):
        if not ansible_bin(tool).exists():
            return f"{tool} not found next to {sys.executable} (pip install ansible-core, the 'test' extra)"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found (the hosts' users run moltir with Debian's python3)"
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    code = "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
    got = subprocess.run([str(SYSTEM_PYTHON), "-c", code], capture_output=True, text=True, check=False).stdout.strip()
    if got != want:
        return (f"{SYSTEM_PYTHON} is Python {got or '?'}, the test venv {want}: the hosts' moltir venv copies the "
                "test venv's compiled dependencies, which needs the same minor version")
    rel = release(RELEASE_ID)
    reason = rel.missing()
    if reason:
        return reason
    closed = _not_world_readable(rel.package_dir)
    if closed is not None:
        return (f"{closed} is not readable by other users: the fleet's hosts run node and openclaw from "
                f"{cache_dir()} as their own users (set MOLTIR_CACHE to a readable place)")
    if not Path("/proc/self/ns/net").exists():
        return "no network namespaces here (/proc/self/ns/net missing)"
    return None


def _not_world_readable(path: Path) -> Path | None:
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH or (p == path and not mode & stat.S_IROTH):
            return p
    return None




_ACTIVE: dict[int, Fleet] = {}


def _teardown_all() -> None:
    for fleet in list(_ACTIVE.values()):
        with contextlib.suppress(Exception):
            fleet.teardown()


atexit.register(_teardown_all)

class Fleet(HostSetup):
    """``hosts`` OpenClaw hosts (see the module docstring) plus what the controller needs to reach them:
    the SSH key, known_hosts, an inventory, an ansible.cfg and the collection built and installed from
    this repository (:meth:`install_collection`)."""

    def __init__(self, root: Path | None = None, hosts: int = 3, *, rel: Release | None = None) -> None:
        # Short: unix socket paths (bus, keyring control, ssh control masters) must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="mfl-", dir=str(root) if root else "/tmp")).resolve()
        self.root.chmod(0o711)                 # the hosts' users traverse it to their own folders
        self.ctl = self.root / "ctl"           # the controller's side: root only
        self.ctl.mkdir(mode=0o700)
        self.bin_dir = self.root / "bin"
        self.venv = self.root / "venv"
        self.release = rel or release(RELEASE_ID)
        self.run_id = secrets.token_hex(3)
        self.subnet: ipaddress.IPv4Network | None = None
        self.hosts: list[FleetHost] = []
        self.count = hosts
        self.key = self.ctl / "id_ed25519"
        self.known_hosts = self.ctl / "known_hosts"
        self.inventory = self.ctl / "inventory.ini"
        self.ansible_cfg = self.ctl / "ansible.cfg"
        self.collections = self.ctl / "collections"
        self.results = self.ctl / "results"
        self.log_dir = self.ctl / "logs"
        self.timings: dict[str, float] = {}
        self.sudoers: Path | None = None
        self._torn_down = False

    # ---- set up ---------------------------------------------------------------------------------
    def setup(self) -> Fleet:
        _ACTIVE[id(self)] = self
        try:
            t0 = time.monotonic()
            self.log_dir.mkdir()
            self.results.mkdir()
            build_moltir_venv(self.venv, self.bin_dir)
            self.timings["venv"] = time.monotonic() - t0
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"moltir-fleet-{self.run_id}",
                            "-f", str(self.key)], check=True, capture_output=True, timeout=60)
            self.subnet = pick_subnet()
            # sshd's privilege separation dir (Debian's unit creates it, and leaves it)
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            for i in range(self.count):
                self._add_host(i)
            self._write_controller_files()
            self.timings["setup"] = time.monotonic() - t0
        except BaseException:
            self.teardown()
            raise
        return self

    def _write_controller_files(self) -> None:
        self.known_hosts.write_text("".join(f"{h.address} {h.host_key_pub}\n" for h in self.hosts))
        lines = ["[openclaw]"]
        lines += [f"{h.name} ansible_host={h.address} ansible_user={h.user}" for h in self.hosts]
        lines += ["", "[openclaw:vars]", f"ansible_ssh_private_key_file={self.key}",
                  "ansible_python_interpreter=/usr/bin/python3", ""]
        self.inventory.write_text("\n".join(lines))
        (self.ctl / "cp").mkdir(mode=0o700)
        self.ansible_cfg.write_text("\n".join([
            "[defaults]",
            f"inventory = {self.inventory}",
            f"collections_path = {self.collections}",
            f"local_tmp = {self.ctl / 'ansible-local'}",
            "remote_tmp = ~/.ansible/tmp",
            "host_key_checking = True",
            "forks = 10",
            "retry_files_enabled = False",
            "nocolor = True",
            "timeout = 30",
            "",
            "[ssh_connection]",
            "ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes "
            f"-o IdentitiesOnly=yes -o UserKnownHostsFile={self.known_hosts} -o GlobalKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=yes",
            f"control_path_dir = {self.ctl / 'cp'}",
            "pipelining = True",
            ""]))

    # ---- the controller --------------------------------------------------------------------------
    def ansible_env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "HOME": str(self.ctl), "ANSIBLE_CONFIG": str(self.ansible_cfg),
               "ANSIBLE_HOME": str(self.ctl / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        if os.environ.get("MOLTIR_TEST_RUN_ID"):
            env["MOLTIR_TEST_RUN_ID"] = os.environ["MOLTIR_TEST_RUN_ID"]
        env.update(extra)
        return env

    def install_collection(self) -> Path:
        """``ansible-galaxy collection build`` of the repository's collection, then ``install`` of that
        tarball into the fleet's collections path (offline). Returns the tarball."""
        build_dir = self.ctl / "build"
        build_dir.mkdir(exist_ok=True)
        env = self.ansible_env()
        built = subprocess.run([str(ansible_bin("ansible-galaxy")), "collection", "build", "--force",
                                "--output-path", str(build_dir), str(COLLECTION_SRC)],
                               env=env, capture_output=True, text=True, timeout=300, check=False)
        if built.returncode != 0:
            raise FleetError(f"ansible-galaxy collection build failed: {built.stdout}{built.stderr}")
        tarball = next(build_dir.glob("moltir-openclaw-*.tar.gz"))
        inst = subprocess.run([str(ansible_bin("ansible-galaxy")), "collection", "install", "--force", "--offline",
                               "-p", str(self.collections), str(tarball)],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        if inst.returncode != 0:
            raise FleetError(f"ansible-galaxy collection install failed: {inst.stdout}{inst.stderr}")
        return tarball

    def playbook(self, name: str, *args: str, env: Mapping[str, str] | None = None,
                 timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``ansible-playbook moltir.openclaw.NAME ARGS`` (the playbook shipped in the installed collection)."""
        return subprocess.run([str(ansible_bin("ansible-playbook")), f"moltir.openclaw.{name}", *args],
                              env=self.ansible_env(**(env or {})), cwd=self.ctl, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def ansible(self, pattern: str, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Ad-hoc: ``ansible PATTERN ARGS``."""
        return subprocess.run([str(ansible_bin("ansible")), pattern, *args], env=self.ansible_env(**(env or {})),
                              cwd=self.ctl, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def ssh(self, h: FleetHost, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """One command as the host's user over its sshd (what the plain ``ssh`` loop recipe does)."""
        return subprocess.run(["ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "BatchMode=yes",
                               "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                               "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                               "-o", "ControlMaster=no", f"{h.user}@{h.address}", command],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)

    def moltir_json(self, h: FleetHost, *args: str) -> dict[str, Any]:
        """``moltir ARGS --json`` over SSH as the host's user: the envelope."""
        import shlex

        proc = self.ssh(h, shlex.join(["moltir", *args, "--json"]))
        try:
            env = json.loads(proc.stdout)
        except ValueError:
            raise FleetError(f"{h.name}: moltir {' '.join(args)} printed no JSON (rc {proc.returncode}): "
                             f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}") from None
        assert isinstance(env, dict)
        return env

    def slow_start_restore_runbook(self, timeout_s: float = 240) -> Path:
        """moltir's shipped restore runbook with a longer wait for the gateway to come up (``timeout_s`` of
        its ``start-gateway`` step; 60 s shipped), readable by the hosts' users: here every host's gateway
        starts at the same time on the same cores (next to whatever else runs), which a fleet of separate
        machines does not do. Pass it with ``-e moltir_runbook=PATH``."""
        shipped = (REPO / "src" / "moltir" / "runbooks" / "restore.json5").read_text()
        step = '{ id: "start-gateway", action: "gateway.start" }'
        if step not in shipped:
            raise FleetError("the shipped restore runbook changed: update slow_start_restore_runbook")
        folder = self.root / "runbooks"
        folder.mkdir(mode=0o755, exist_ok=True)
        path = folder / "restore.json5"
        path.write_text(shipped.replace(step, step[:-2] + f", with: {{ timeout_s: {timeout_s:g} }} }}"))
        path.chmod(0o644)
        return path

    # ---- gateways --------------------------------------------------------------------------------
    def gateway_env(self, h: FleetHost) -> dict[str, str]:
        """The environment a gateway of the host runs with: the harness home's, as the host's user, with
        the session's PATH and the host's keyring bus."""
        env = dict(h.oc.env)
        env.update(USER=h.user, LOGNAME=h.user, PATH=self.session_path(), DBUS_SESSION_BUS_ADDRESS=h.bus_address)
        return env

    def start_gateway(self, h: FleetHost, *, as_root: bool = False, token: str | None = None,
                      timeout: float = GATEWAY_READY_S) -> Daemon:
        """``openclaw gateway run`` of the host's install in its namespace, as its user (or, for the
        foreign-owner case, as root: "someone ran it with sudo"); waits until ``token`` (default the
        home's) is accepted and Telegram polls the fake."""
        if h.gateway is not None and h.gateway.alive:
            raise FleetError(f"{h.name}: a gateway started by the harness still runs")
        token = token or h.oc.token
        env = self.gateway_env(h)
        argv = [str(h.oc.openclaw_bin), "gateway", "run"]
        full = ["ip", "netns", "exec", h.netns, *argv] if as_root else self._as_user(h, argv)
        log_path = self.log_dir / f"{h.name}-gateway.log"
        with log_path.open("ab") as log:
            log.write(f"\n===== fleet harness: start ({'root' if as_root else h.user}) =====\n".encode())
            log.flush()
            proc = subprocess.Popen(full, env=env, cwd=h.oc.home, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        h.gateway = Daemon("gateway", proc)
        polls = h.oc.telegram.methods().count("getUpdates")

        def ready() -> bool:
            if proc.poll() is not None:
                raise FleetError(f"{h.name}: gateway exited with rc {proc.returncode} before it was ready: "
                                 f"{log_path.read_text(errors='replace')[-3000:]}")
            return h.token_status(token) == 400 and h.oc.telegram.methods().count("getUpdates") > polls
        try:
            wait_until(ready, timeout, interval=0.3, what=f"{h.name}: the gateway on {h.netns} port {h.oc.port}")
        except BaseException:
            self.stop_gateway(h)
            raise
        return h.gateway

    def start_gateways(self, hosts: Sequence[FleetHost] | None = None) -> None:
        """Start the gateways of ``hosts`` (default all) at the same time, as their users."""
        errors: list[BaseException] = []

        def one(h: FleetHost) -> None:
            try:
                self.start_gateway(h)
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=one, args=(h,)) for h in (hosts or self.hosts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def gateway_procs(self, h: FleetHost) -> list[psutil.Process]:
        """Every process of the host's install, whoever runs it (gateway, its helpers, one moltir started)."""
        state = os.path.realpath(h.oc.state_dir)
        found = []
        for proc in psutil.process_iter(["status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                env = proc.environ()
                sd = env.get("OPENCLAW_STATE_DIR") or (os.path.join(env["HOME"], ".openclaw") if "HOME" in env else "")
                if sd and os.path.realpath(sd) == state and proc.name() not in ("sshd", "moltir"):
                    found.append(proc)
            except (psutil.Error, KeyError):
                continue
        return found

    def stop_gateway(self, h: FleetHost) -> None:
        """Whatever gateway of the host runs (the harness's, or one moltir restore started): stopped."""
        if h.gateway is not None:
            h.gateway.stop(timeout=15)
        terminate(self.gateway_procs(h), timeout=10)
        h.gateway = None

    def allow_sudo(self, h: FleetHost) -> None:
        """Let ``h``'s user run anything as root through ``sudo`` without a password (Ansible's
        ``become``): one drop-in in /etc/sudoers.d, checked by ``visudo`` and removed at teardown."""
        path = Path("/etc/sudoers.d") / f"moltir-fleet-{self.run_id}"
        tmp = path.with_name(f".{path.name}.tmp")     # sudo ignores names with a dot
        tmp.write_text(f"{h.user} ALL=(root) NOPASSWD: ALL\n")
        tmp.chmod(0o440)
        subprocess.run(["visudo", "-cqf", str(tmp)], check=True, capture_output=True, timeout=30)
        tmp.replace(path)
        self.sudoers = path

    # ---- tear down -------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Remove everything the fleet made; returns what had to be forced (for the test to report)."""
        if self._torn_down:
            return []
        self._torn_down = True
        _ACTIVE.pop(id(self), None)
        notes: list[str] = []
        cp_dir = str(self.ctl / "cp")
        masters = []
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if any(cp_dir in a for a in proc.info["cmdline"] or []):
                    masters.append(proc)
        terminate(masters, timeout=3)
        for h in self.hosts:
            notes += self._teardown_host(h)
        if self.sudoers is not None:
            self.sudoers.unlink(missing_ok=True)
        # /run/sshd stays (as Debian's sshd unit leaves it): another test's sshd may be using it now
        rmtree(self.root)
        if self.root.exists():
            notes.append(f"{self.root} could not be removed")
        return notes


@contextlib.contextmanager
def fleet_at(root: Path | None = None, hosts: int = 3) -> Iterator[Fleet]:
    fleet = Fleet(root, hosts).setup()
    try:
        yield fleet
    finally:
        fleet.teardown()


__all__ = ["COLLECTION_SRC", "LOOPBACK", "Fleet", "FleetError", "FleetHost", "ansible_bin", "build_moltir_venv",
           "chown_tree", "fleet_at", "in_netns", "missing", "pick_subnet", "procs_of_uid"]
