"""The fleet collection with ``become`` against a gateway run by a SYSTEM unit, on a real systemd.

The fleet lab's hosts (tests/harness/fleet.py) are network namespaces with no systemd, so this test
puts one Ansible host inside a systemd-nspawn machine booted from this host's /usr
(tests/harness/nspawn.py): OpenClaw's own server-installer unit (``openclaw.service``, ``User=openclaw``,
tests/harness/hostunit.py) runs the real 2026.9.6 gateway, and the machine's own sshd (Debian's
openssh-server, on a free loopback port of the shared network namespace) lets in an unprivileged
``ops`` user whose sudo rule (in the machine's /etc overlay, never the host's) is what ``become`` uses.

The controller runs the SHIPPED playbooks (``moltir.openclaw.contain`` / ``restore``, collection built
and installed from this repository) with ``-b``: moltir then runs as root on the machine, finds the
system unit's install by itself, and

* contain: the unit is stopped and stays down, the DMs are disabled in the user's config, the token is
  rotated; the host reports ``changed`` and a second run ``changed: false``;
* restore: the unit is active again, on the new token (the old one refused), DMs back as they were.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.harness import fleet as fleet_lab
from tests.harness import nspawn
from tests.harness.faketg import FakeTelegram
from tests.harness.fleet import Fleet
from tests.harness.hostunit import HOST_UNIT, OC_HOME, WORKING_RW, install_host_unit, wait_gateway
from tests.harness.net import free_port, port_is_open, token_status, wait_until
from tests.harness.nspawn import Machine, boot
from tests.harness.prereq import missing_prerequisite
from tests.harness.releases import cache_dir, release
from tests.harness.risk import open_dm_risks

RELEASE = "2026.9.6"
HOST = "sysunit"
OPS = "ops"
BOT = "123456789:AAFakeDefaultFakeDefaultFakeDefault01"
CHANNELS = {"channels": {"telegram": {"enabled": False, "botToken": BOT, "dmPolicy": "open", "allowFrom": ["*"]}}}


@dataclass
class Lab:
    machine: Machine
    fleet: Fleet
    port: int          # the gateway's
    token: str         # the gateway's token before contain


def _sshd_in(m: Machine, fleet: Fleet) -> tuple[int, str]:
    """Start the machine's own sshd on a free loopback port for ``ops`` (key only); return the port
    and the host key's public line. Its files live in the fleet's folder (bound into the machine)."""
    d = fleet.root / "sysunit-sshd"
    d.mkdir(mode=0o755)
    key = d / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=60)
    auth = d / "authorized_keys"
    auth.write_text(Path(f"{fleet.key}.pub").read_text())
    auth.chmod(0o644)
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {key}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {auth}", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin no", f"AllowUsers {OPS}",
        "AllowTcpForwarding no", "X11Forwarding no", "Subsystem sftp internal-sftp", ""]))
    m.run(["mkdir", "-p", "-m", "0755", "/run/sshd"], check=True)
    m.run(["/usr/sbin/sshd", "-f", str(cfg), "-E", str(d / "sshd.log")], check=True)
    wait_until(lambda: port_is_open(port), 30, what="the machine's sshd")
    kind, blob = Path(f"{key}.pub").read_text().split()[:2]
    return port, f"{kind} {blob}"


def _point_controller_at(fleet: Fleet, ssh_port: int, host_key: str) -> None:
    fleet.known_hosts.write_text(f"[127.0.0.1]:{ssh_port} {host_key}\n")
    fleet.inventory.write_text("\n".join([
        "[openclaw]",
        f"{HOST} ansible_host=127.0.0.1 ansible_port={ssh_port} ansible_user={OPS}",
        "", "[openclaw:vars]", f"ansible_ssh_private_key_file={fleet.key}",
        "ansible_python_interpreter=/usr/bin/python3", ""]))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = nspawn.missing() or fleet_lab.missing() or release(RELEASE).missing()
    if reason:
        missing_prerequisite(reason)
    egress = FakeTelegram().start()
    fleet = Fleet(hosts=0).setup()
    m: Machine | None = None
    try:
        fleet.install_collection()
        m = boot(tmp_path / "machine", binds=[tmp_path, fleet.root], ro_binds=[cache_dir()], name="moltir-fsu")
        m.add_user(OPS)
        m.run(["usermod", "-p", "*", OPS], check=True)   # not locked (sshd without PAM refuses a locked one)
        m.write_file(f"/etc/sudoers.d/{OPS}", f"{OPS} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
        port, token = install_host_unit(m, release(RELEASE), egress.url, WORKING_RW, extra_config=CHANNELS)
        m.systemctl("enable", "--now", HOST_UNIT, check=True)
        wait_gateway(m, HOST_UNIT, port, token)
        ssh_port, host_key = _sshd_in(m, fleet)
        _point_controller_at(fleet, ssh_port, host_key)
        yield Lab(m, fleet, port, token)
    finally:
        if m is not None:
            m.halt()
        fleet.teardown()
        egress.stop()


def _play(lab: Lab, name: str, *extra: str, become: bool = True) -> dict[str, Any]:
    """The shipped playbook NAME (with become); the host's saved result (the module's return values)."""
    results = lab.fleet.results
    for old in results.glob("*.json"):
        old.unlink()
    proc = lab.fleet.playbook(name, *(["-b"] if become else []), "-e", f"moltir_bin={lab.fleet.bin_dir / 'moltir'}",
                              "-e", f"moltir_results_dir={results}", "-e", "moltir_reason=fleet system unit test",
                              *extra)
    saved = results / f"{HOST}.{name}.json"
    log = lab.fleet.root / "sysunit-sshd" / "sshd.log"
    assert saved.exists(), proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")
    data: dict[str, Any] = json.loads(saved.read_text())
    data["_output"] = proc.stdout + proc.stderr
    data["_rc"] = proc.returncode
    return data


def _telegram(m: Machine) -> dict[str, Any]:
    cfg = json.loads(m.read_file(f"{OC_HOME}/.openclaw/openclaw.json"))
    tg: dict[str, Any] = cfg["channels"]["telegram"]
    return tg


def test_become_contains_and_restores_a_system_unit_through_the_shipped_playbooks(lab: Lab) -> None:
    m = lab.machine
    # without become, pointed at the unit's user: moltir as ops names the unit and sudo, changes nothing
    as_ops = _play(lab, "contain", "-e", "moltir_user=openclaw", become=False)
    assert as_ops["_rc"] != 0 and as_ops["failed"] is True and as_ops["changed"] is False, as_ops["_output"]
    assert "needs root" in as_ops["msg"] and "become: true" in as_ops["msg"], as_ops["msg"]
    assert m.show(HOST_UNIT, "ActiveState")["ActiveState"] == "active"
    assert token_status(lab.port, lab.token) == 400

    first = _play(lab, "contain")
    assert first["_rc"] == 0 and first["changed"] is True and not first.get("failed"), first["_output"]
    show = m.show(HOST_UNIT, "ActiveState", "UnitFileState")
    assert show["ActiveState"] in ("inactive", "failed"), show
    assert show["UnitFileState"] in ("disabled", "masked-runtime"), show
    assert not port_is_open(lab.port)
    assert _telegram(m)["dmPolicy"] == "disabled"
    new = json.loads(m.read_file(f"{OC_HOME}/.openclaw/openclaw.json"))["gateway"]["auth"]["token"]
    assert isinstance(new, str) and new != lab.token
    assert lab.token not in first["_output"] and new not in first["_output"]

    second = _play(lab, "contain")
    assert second["_rc"] == 0 and second["changed"] is False, second["_output"]

    restored = _play(lab, "restore", "-e", json.dumps({"moltir_accept_risk": list(open_dm_risks(RELEASE))}))
    assert restored["_rc"] == 0 and restored["changed"] is True, restored["_output"]
    wait_until(lambda: token_status(lab.port, new) == 400, 180, what="the unit back on the new token")
    show = m.show(HOST_UNIT, "ActiveState", "UnitFileState")
    assert (show["ActiveState"], show["UnitFileState"]) == ("active", "enabled"), show
    assert token_status(lab.port, lab.token) == 401
    assert _telegram(m)["dmPolicy"] == "open"
