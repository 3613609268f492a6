"""``moltir contain --dry-run`` against a running real gateway and a real keyring changes nothing.

Snapshots three things before and after: the disk (every file of the OpenClaw home except what
the running gateway itself keeps writing, plus moltir's own state), the keyring (every item in
the private Secret Service, with its secret) and the processes (the gateway tree, and that the
original token still works). The plan itself must show the config diff.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psutil
import pytest
import secretstorage
from jeepney.io.blocking import open_dbus_connection
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.secret_service import SecretService

pytestmark = pytest.mark.integration

# Written by the running gateway on its own, whatever moltir does.
GATEWAY_OWNED = ("logs/", "tmp/", "state/", "cache/", "media/", "telegram/", "agents/", "cron/", "memory/",
                 "canvas/", "update-check.json", "devices/", "identity/", "workspace/", "plugin-skills/")


def _disk(root: Path, home: OpenClawHome) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        srel = path.relative_to(home.state_dir).as_posix() + ("/" if path.is_dir() else "") \
            if path.is_relative_to(home.state_dir) else None
        if srel is not None and srel.startswith(GATEWAY_OWNED):
            continue
        if path.is_relative_to(home.tmpdir) or path == home.log_file or "keyring" in rel or rel.endswith(".log"):
            continue
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        out[rel] = f"{st.st_mode:o}:{digest}"
    return out


def _keyring(service: SecretService) -> list[tuple[str, str, bytes]]:
    with closing(open_dbus_connection(bus=service.address)) as conn:
        items = []
        for collection in secretstorage.get_all_collections(conn):
            if collection.is_locked():
                continue
            for item in collection.get_all_items():
                items.append((collection.collection_path, item.get_label(), item.get_secret()))
        return sorted(items)


def _identity(pid: int) -> tuple[int, float, str]:
    proc = psutil.Process(pid)
    return proc.pid, proc.create_time(), proc.status()


def test_dry_run_touches_no_file_no_keyring_item_no_process(openclaw_home: OpenClawHome,
                                                           secret_service: SecretService) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    gw = Gateway(home).start()
    try:
        # something in the keyring already, so "unchanged" means more than "still empty"
        subprocess.run([sys.executable, "-c", "import keyring; keyring.set_password('other', 'u', 'pre-existing')"],
                       env=home.env, check=True, timeout=60)
        disk, keys, gateway = _disk(home.root, home), _keyring(secret_service), _identity(gw.gateway_pid)
        config_before = home.config_path.read_bytes()

        out = subprocess.run([sys.executable, "-m", "moltir", "contain", "--dry-run"], env=home.env,
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "dry run" in out.stdout
        for action in ("gateway.stop", "dm_policy.set", "token.rotate", "evidence.snapshot", "audit.run"):
            assert action in out.stdout
        assert '+' in out.stdout and 'dmPolicy: "disabled"' in out.stdout  # the config diff is shown
        assert home.token not in out.stdout + out.stderr

        assert home.config_path.read_bytes() == config_before
        assert _disk(home.root, home) == disk
        assert not (home.root / "moltir-home").exists()
        assert _keyring(secret_service) == keys
        assert gw.running and _identity(gw.gateway_pid)[:2] == gateway[:2]  # same process, never signalled
        assert gw.token_status(home.token) == 400
    finally:
        gw.stop()
