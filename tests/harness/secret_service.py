"""A private D-Bus session bus with an unlocked gnome-keyring, so ``keyring`` uses its real
SecretService backend (shared/research/ir-anchors.md §C.2).

Both daemons run in the foreground as children of the test process (``--nofork`` /
``--foreground``), so they are reaped, not left as zombies, and teardown can prove they are gone.
The keyring lives in a throwaway HOME; the login keyring is created by ``--unlock`` with
:attr:`SecretService.password` read from stdin.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import secretstorage
from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
from tests.harness.net import wait_until

SECRETS_BUS_NAME = "org.freedesktop.secrets"
SECRETS_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
GNOME_INTERNAL_IFACE = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"
START_TIMEOUT_S = 30.0


@dataclass
class SecretService:
    root: Path
    address: str                 # DBUS_SESSION_BUS_ADDRESS of the private bus
    keyring_home: Path           # HOME the keyring daemon stores login.keyring under
    password: str
    bus: subprocess.Popen[str]
    daemon: subprocess.Popen[bytes]
    daemon_env: dict[str, str] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Merge into a child's env: ``{**openclaw_home.env, **secret_service.env}``."""
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def with_keyring(self, base: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k != "PYTHON_KEYRING_BACKEND"}
        env.update(self.env)
        return env

    @staticmethod
    def no_keyring(base: Mapping[str, str]) -> dict[str, str]:
        """``base`` without any bus address: keyring falls back to ``fail.Keyring``."""
        return {k: v for k, v in base.items()
                if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")}

    @property
    def pids(self) -> list[int]:
        return [self.bus.pid, self.daemon.pid]

    # ---- keyring state ----------------------------------------------------------------------
    def lock(self) -> None:
        """Lock the default collection (what a screen lock or reboot does to a login keyring)."""

        with closing(open_dbus_connection(bus=self.address)) as conn:
            collection = secretstorage.get_default_collection(conn)
            collection.lock()
            if not collection.is_locked():
                raise RuntimeError("the default collection did not lock")

    def unlock(self) -> None:
        """Unlock again without a prompt, through gnome-keyring's master-password interface."""

        service = DBusAddress(SECRETS_PATH, bus_name=SECRETS_BUS_NAME, interface="org.freedesktop.Secret.Service")
        internal = DBusAddress(SECRETS_PATH, bus_name=SECRETS_BUS_NAME, interface=GNOME_INTERNAL_IFACE)
        with closing(open_dbus_connection(bus=self.address)) as conn:
            _, session = conn.send_and_get_reply(
                new_method_call(service, "OpenSession", "sv", ("plain", ("s", "")))).body
            (collection,) = conn.send_and_get_reply(
                new_method_call(service, "ReadAlias", "s", ("default",))).body
            secret = (session, b"", self.password.encode(), "text/plain")
            reply = conn.send_and_get_reply(
                new_method_call(internal, "UnlockWithMasterPassword", "o(oayays)", (collection, secret)))
            if reply.header.message_type.name == "error":
                raise RuntimeError(f"unlock failed: {reply.body}")

    def is_locked(self) -> bool:

        with closing(open_dbus_connection(bus=self.address)) as conn:
            return bool(secretstorage.get_default_collection(conn).is_locked())

    # ---- teardown ---------------------------------------------------------------------------
    def helpers(self) -> list[psutil.Process]:
        """Anything else started on this bus (e.g. a D-Bus-activated prompter)."""
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if proc.pid in self.pids or proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get("DBUS_SESSION_BUS_ADDRESS") == self.address:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return [p for p in found if p.pid != os.getpid()]

    def stop(self) -> None:
        for proc in (self.daemon, self.bus):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.daemon, self.bus):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for helper in self.helpers():
            helper.kill()

    def leftovers(self) -> list[int]:
        alive = [pid for pid in self.pids if psutil.pid_exists(pid) and _not_zombie(pid)]
        return alive + [p.pid for p in self.helpers()]


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _secrets_owned(address: str) -> bool:

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    try:
        with closing(open_dbus_connection(bus=address)) as conn:
            reply = conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", (SECRETS_BUS_NAME,)))
            return bool(reply.body[0])
    except (OSError, ConnectionError):
        return False


def start_secret_service(root: Path, password: str = "moltir-test-keyring-password") -> SecretService:
    """Start dbus-daemon + gnome-keyring-daemon under ``root``; stop with :meth:`SecretService.stop`."""
    root = root.resolve()
    home, runtime = root / "keyring-home", root / "run"
    for d in (home, runtime):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path = root / "bus.sock"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(runtime), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}
    if os.environ.get("MOLTIR_TEST_RUN_ID"):
        env["MOLTIR_TEST_RUN_ID"] = os.environ["MOLTIR_TEST_RUN_ID"]
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
         f"--address=unix:path={socket_path}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()     # printed once the bus listens
    if not address:
        bus.kill()
        bus.wait()
        raise RuntimeError(f"dbus-daemon exited with rc {bus.poll()} without printing its address")
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
         f"--control-directory={runtime / 'keyring'}"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert daemon.stdin is not None
    daemon.stdin.write(password.encode())
    daemon.stdin.close()
    service = SecretService(root=root, address=address, keyring_home=home, password=password,
                            bus=bus, daemon=daemon, daemon_env=env)
    try:
        def up() -> bool:
            if daemon.poll() is not None:
                raise RuntimeError(f"gnome-keyring-daemon exited with rc {daemon.returncode}")
            return _secrets_owned(address)
        wait_until(up, START_TIMEOUT_S, what="org.freedesktop.secrets on the private bus")
    except BaseException:
        service.stop()
        raise
    return service
