"""harden's bind step refuses when a paired device was seen connecting from a non-loopback address,
read where the real release keeps it: 2026.9.6 -- a row in the ``device_pairing_paired`` table of the
``state/openclaw.sqlite`` the real gateway created (its own schema, not moltir's copy); 2026.1.29 --
``devices/paired.json`` as its ``dist/infra/device-pairing.js`` writes it. ``--force`` binds anyway."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome

ADDRESS = "192.168.77.20"


def _moltir(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _pair_remote_device(home: OpenClawHome) -> None:
    if home.release.facts.sqlite_state:
        gw = Gateway(home).start()  # the real gateway creates its state database
        gw.stop()
        gw.assert_stopped()
        conn = sqlite3.connect(home.state_dir / "state" / "openclaw.sqlite")
        try:
            conn.execute("INSERT INTO device_pairing_paired (device_id, public_key, remote_ip, created_at_ms, "
                         "approved_at_ms) VALUES ('dev-lan', 'pk', ?, 1, 1)", (ADDRESS,))
            conn.commit()
        finally:
            conn.close()
        return
    devices = home.state_dir / "devices"
    devices.mkdir(exist_ok=True)
    (devices / "paired.json").write_text(json.dumps({"dev-lan": {"deviceId": "dev-lan", "publicKey": "pk",
                                                                 "remoteIp": ADDRESS, "approvedAtMs": 1}}))


def test_bind_refused_for_a_device_seen_from_the_lan(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    text = home.config_path.read_text()
    assert 'bind: "loopback",' in text, "the harness config changed shape"
    home.config_path.write_text(text.replace('bind: "loopback",', 'bind: "lan",', 1))
    _pair_remote_device(home)
    env = {**home.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    dry = _moltir(env, home.root, "harden", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    bind = {p["id"]: p for p in moltir_json(dry.stdout)["plan"]}["bind"]
    assert bind["summary"] == "bind: refused", bind
    assert f"paired device dev-lan was seen connecting from {ADDRESS}" in bind["warnings"][0]
    forced = _moltir(env, home.root, "harden", "--dry-run", "--force", "--json")
    assert forced.returncode == 0, forced.stdout[-3000:] + forced.stderr[-3000:]
    bind = {p["id"]: p for p in moltir_json(forced.stdout)["plan"]}["bind"]
    assert '+    bind: "loopback",' in bind["diff"]
