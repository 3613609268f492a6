"""One fleet host of :mod:`tests.harness.fleet`: its record (:class:`FleetHost`) and how the harness makes and
removes it (:class:`HostSetup`, a mixin of :class:`tests.harness.fleet.Fleet`): the network namespace and
its veth, the user, the OpenClaw home, the private keyring, the sshd."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tests.harness.fleet_system import (
    Daemon,
    chown_tree,
    describe,
    in_netns,
    ip,
    procs_in_netns,
    procs_of_uid,
    remove_shared_tmp_files,
    terminate,
)
from tests.harness.home import OpenClawHome, create_home, global_lock_files
from tests.harness.net import free_port, port_is_open, token_status, wait_until
from tests.harness.releases import Release, node_bin_dir

SSHD = Path("/usr/sbin/sshd")
KEYRING_PASSWORD = "moltir-fleet-keyring"


@dataclass
class FleetHost:
    name: str                     # inventory name: h1, h2 ...
    index: int
    user: str
    netns: str
    veth_root: str
    veth_ns: str
    address: str                  # the host's address (namespace end of the veth)
    peer: str                     # the root namespace's end
    root: Path                    # everything of the host (its HOME below), owned by its user
    uid: int = -1
    gid: int = -1
    home: OpenClawHome | None = None
    bus_address: str = ""
    daemons: list[Daemon] = field(default_factory=list)
    gateway: Daemon | None = None
    host_key_pub: str = ""

    @property
    def oc(self) -> OpenClawHome:
        assert self.home is not None, f"{self.name}: no OpenClaw home yet"
        return self.home

    @property
    def user_home(self) -> Path:
        return self.oc.home

    @property
    def moltir_home(self) -> Path:
        """moltir's state for this user over SSH: ``~/.local/state/moltir`` (no XDG_STATE_HOME there)."""
        return self.user_home / ".local" / "state" / "moltir"

    def cases(self) -> list[Path]:
        d = self.moltir_home / "cases"
        return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def token_status(self, token: str | None) -> int:
        """400 accepted, 401 refused, 0 no answer: asked on the namespace's own loopback."""
        return in_netns(self.netns, lambda: token_status(self.oc.port, token))

    def port_open(self) -> bool:
        return in_netns(self.netns, lambda: port_is_open(self.oc.port))

    def config_sha256(self) -> str:
        return hashlib.sha256(self.oc.config_path.read_bytes()).hexdigest()


class FleetError(RuntimeError):
    pass


class HostSetup:
    """Making and removing one host (see the module docstring); the fleet supplies these attributes."""

    root: Path
    ctl: Path
    key: Path
    log_dir: Path
    venv: Path
    bin_dir: Path
    release: Release
    subnet: ipaddress.IPv4Network | None
    run_id: str
    hosts: list[FleetHost]

    def _add_host(self, i: int) -> FleetHost:
        assert self.subnet is not None
        base = int(self.subnet.network_address) + 4 * i
        host = FleetHost(
            name=f"h{i + 1}", index=i, user=f"mfl{self.run_id}u{i + 1}", netns=f"moltir-fleet-{self.run_id}-{i + 1}",
            veth_root=f"mfl{self.run_id}r{i + 1}", veth_ns=f"mfl{self.run_id}n{i + 1}",
            address=str(ipaddress.IPv4Address(base + 2)), peer=str(ipaddress.IPv4Address(base + 1)),
            root=self.root / f"h{i + 1}")
        self.hosts.append(host)   # registered before anything exists, so teardown finds a half-made host
        self._make_netns(host)
        self._make_user(host)
        self._make_home(host)
        self._start_keyring(host)
        self._start_sshd(host)
        return host


    def _make_netns(self, h: FleetHost) -> None:
        ip("netns", "add", h.netns)
        ip("link", "add", h.veth_root, "type", "veth", "peer", "name", h.veth_ns, "netns", h.netns)
        ip("addr", "add", f"{h.peer}/30", "dev", h.veth_root)
        ip("link", "set", h.veth_root, "up")
        ip("-n", h.netns, "addr", "add", f"{h.address}/30", "dev", h.veth_ns)
        ip("-n", h.netns, "link", "set", h.veth_ns, "up")
        ip("-n", h.netns, "link", "set", "lo", "up")

    def _make_user(self, h: FleetHost) -> None:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(h.root / "oc" / "home"), "--shell", "/bin/sh",
                        "--password", "*", "--user-group", "--comment", "moltir fleet test host", h.user],
                       check=True, capture_output=True, text=True, timeout=60)
        pw = pwd.getpwnam(h.user)
        h.uid, h.gid = pw.pw_uid, pw.pw_gid

    def _make_home(self, h: FleetHost) -> None:
        h.root.mkdir(mode=0o700)
        # create_home inside the namespace: its free port and its fakes' sockets are the namespace's.
        # Each host gets a port no other host uses: fresh namespaces hand out the same ephemeral ports,
        # and moltir, like a user's tools, must not meet two gateways on one port number (moltir then
        # took another namespace's gateway for this host's: see the closing note of 2026-12-06).
        taken = {other.home.port + k for other in self.hosts if other is not h and other.home is not None
                 for k in range(-3, 4)}
        port = in_netns(h.netns, lambda: next(p for p in (free_port(span=4) for _ in range(200)) if p not in taken))
        h.home = in_netns(h.netns, lambda: create_home(h.root / "oc", self.release, port=port))
        oc = h.home
        for name in ("jiti", "node-compile-cache"):   # the shared compile caches are root's: a private copy
            link = oc.tmpdir / name
            if link.is_symlink():
                target = link.resolve()
                link.unlink()
                shutil.copytree(target, link, symlinks=True)
        ssh_dir = oc.home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        (h.root / "kr").mkdir(mode=0o700)
        chown_tree(h.root, h.uid, h.gid)
        oc.home.chmod(0o700)

    def session_path(self) -> str:
        """PATH of an SSH session on every host: moltir, node, openclaw, then the system's."""
        return os.pathsep.join([str(self.bin_dir), str(node_bin_dir()), str(self.release.bin_dir),
                                "/usr/local/bin", "/usr/bin", "/bin"])

    def _as_user(self, h: FleetHost, argv: Sequence[str], *, netns: bool = True) -> list[str]:
        drop = ["setpriv", f"--reuid={h.uid}", f"--regid={h.gid}", "--init-groups", "--"]
        return (["ip", "netns", "exec", h.netns] if netns else []) + drop + list(argv)

    def _start_keyring(self, h: FleetHost) -> None:
        kr = h.root / "kr"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(kr), "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(kr),
               "XDG_DATA_HOME": str(kr / "data"), "XDG_CONFIG_HOME": str(kr / "config"),
               "XDG_CACHE_HOME": str(kr / "cache")}
        if os.environ.get("MOLTIR_TEST_RUN_ID"):
            env["MOLTIR_TEST_RUN_ID"] = os.environ["MOLTIR_TEST_RUN_ID"]
        bus = subprocess.Popen(
            self._as_user(h, ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
                              f"--address=unix:path={kr / 'bus.sock'}"]),
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        h.daemons.append(Daemon("dbus-daemon", bus))
        assert bus.stdout is not None
        h.bus_address = bus.stdout.readline().strip()
        if not h.bus_address:
            raise FleetError(f"{h.name}: dbus-daemon exited with rc {bus.poll()} without printing its address")
        env["DBUS_SESSION_BUS_ADDRESS"] = h.bus_address
        daemon = subprocess.Popen(
            self._as_user(h, ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
                              f"--control-directory={kr / 'keyring'}"]),
            env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        h.daemons.append(Daemon("gnome-keyring-daemon", daemon))
        assert daemon.stdin is not None
        daemon.stdin.write(KEYRING_PASSWORD.encode())
        daemon.stdin.close()
        probe = ("from contextlib import closing\n"
                 "from jeepney import DBusAddress, new_method_call\n"
                 "from jeepney.io.blocking import open_dbus_connection\n"
                 "bus = DBusAddress('/org/freedesktop/DBus', bus_name='org.freedesktop.DBus', "
                 "interface='org.freedesktop.DBus')\n"
                 "with closing(open_dbus_connection(bus='SESSION')) as c:\n"
                 "    r = c.send_and_get_reply(\n"
                 "        new_method_call(bus, 'NameHasOwner', 's', ('org.freedesktop.secrets',)))\n"
                 "raise SystemExit(0 if r.body[0] else 1)\n")

        def up() -> bool:
            if daemon.poll() is not None:
                raise FleetError(f"{h.name}: gnome-keyring-daemon exited with rc {daemon.returncode}")
            return subprocess.run(self._as_user(h, [str(self.venv / "bin" / "python"), "-c", probe], netns=False),
                                  env=env, capture_output=True, timeout=30, check=False).returncode == 0
        wait_until(up, 30, interval=0.2, what=f"{h.name}: org.freedesktop.secrets on the host's session bus")

    def _start_sshd(self, h: FleetHost) -> None:
        d = self.ctl / h.name
        d.mkdir(mode=0o700)
        key = d / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{h.name}-host", "-f", str(key)],
                       check=True, capture_output=True, timeout=60)
        h.host_key_pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        setenv = {"PATH": self.session_path(), "TMPDIR": str(h.oc.tmpdir), "DBUS_SESSION_BUS_ADDRESS": h.bus_address,
                  "LANG": "C.UTF-8"}
        if os.environ.get("MOLTIR_TEST_RUN_ID"):
            setenv["MOLTIR_TEST_RUN_ID"] = os.environ["MOLTIR_TEST_RUN_ID"]
        config = d / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {h.address}:22",
            f"HostKey {key}",
            f"PidFile {d / 'sshd.pid'}",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            f"AllowUsers {h.user}",
            "StrictModes yes",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "AllowStreamLocalForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "PrintMotd no",
            "MaxStartups 50:30:100",
            "MaxSessions 50",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            "SetEnv " + " ".join(f"{k}={v}" for k, v in setenv.items()),
            ""]))
        check = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, timeout=30,
                               check=False)
        if check.returncode != 0:
            raise FleetError(f"{h.name}: sshd -t refused its config: {check.stderr.strip()}")
        log = (self.log_dir / f"{h.name}-sshd.log").open("ab")
        sshd = subprocess.Popen(["ip", "netns", "exec", h.netns, str(SSHD), "-D", "-e", "-f", str(config)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        h.daemons.append(Daemon("sshd", sshd))

        def listening() -> bool:
            if sshd.poll() is not None:
                raise FleetError(f"{h.name}: sshd exited with rc {sshd.returncode}: "
                                 f"{(self.log_dir / f'{h.name}-sshd.log').read_text()[-2000:]}")
            return port_is_open(22, h.address)
        wait_until(listening, 30, interval=0.1, what=f"{h.name}: sshd on {h.address}:22")


    def _teardown_host(self, h: FleetHost) -> list[str]:
        notes: list[str] = []
        if h.gateway is not None:
            h.gateway.stop(timeout=5)
        for _ in range(3):
            procs = {p.pid: p for p in (procs_of_uid(h.uid) if h.uid >= 0 else [])}
            procs.update({p.pid: p for p in procs_in_netns(h.netns)})
            for d in h.daemons:
                if d.alive:
                    with contextlib.suppress(psutil.Error):
                        procs[d.proc.pid] = psutil.Process(d.proc.pid)
            if not procs:
                break
            forced = terminate(list(procs.values()), timeout=5)
            if forced:
                notes.append(f"{h.name}: SIGKILL needed for {forced}")
        for d in h.daemons:
            with contextlib.suppress(Exception):
                d.proc.wait(timeout=5)
        if h.home is not None:
            h.home.telegram.stop()
            h.home.llm.stop()
            for lock in global_lock_files(h.home.state_dir):   # left by a gateway the harness ran as root
                lock.unlink(missing_ok=True)
        if ip("netns", "list", check=False).stdout.find(h.netns) >= 0:
            ip("netns", "del", h.netns, check=False)
        try:
            wait_until(lambda: ip("link", "show", h.veth_root, check=False).returncode != 0, 10, interval=0.2,
                       what=f"{h.veth_root} to go with its namespace")
        except TimeoutError:
            ip("link", "del", h.veth_root, check=False)
            notes.append(f"{h.name}: {h.veth_root} deleted by hand")
        if h.uid >= 0:
            notes += remove_shared_tmp_files(h.uid)
            left = procs_of_uid(h.uid)
            if left:
                notes.append(f"{h.name}: processes of {h.user} survived: {describe(left)}")
        with contextlib.suppress(KeyError):
            pwd.getpwnam(h.user)
            subprocess.run(["userdel", h.user], capture_output=True, timeout=60, check=False)
        with contextlib.suppress(KeyError):
            import grp

            grp.getgrnam(h.user)
            subprocess.run(["groupdel", h.user], capture_output=True, timeout=60, check=False)
        return notes

