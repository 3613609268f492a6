"""``sudo moltir contain`` / ``restore`` of a gateway run by a SYSTEM unit, against a real systemd.

The unit is OpenClaw's own server installer's (openclaw-ansible ``openclaw-host.service.j2``:
``User=openclaw``, ``PrivateTmp=true``, ``Restart=always``, ``ProtectHome=read-only``; with
``~/.cache`` writable, see tests/harness/hostunit.py), in a systemd-nspawn machine booted from this
host's /usr. moltir runs INSIDE as root, with no selector and no keyring (a headless server):

* contain finds the unit's install (its user, HOME and config) by itself, stops the unit so it stays
  down (disabled + masked at runtime, port closed 30 s later), disables the DMs in that user's config
  with owner and mode kept, rotates the token into that config (no keyring: the boot-safety rule), and
  keeps the private-/tmp file logs, the unit's journal and unit file in the sealed evidence;
* restore unmasks, re-enables and starts the unit exactly as it was; the new token is accepted, the
  old one refused, the DM policies are back.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness import nspawn
from tests.harness.envelope import moltir_json
from tests.harness.faketg import FakeTelegram
from tests.harness.hostunit import HOST_UNIT, OC_HOME, OC_USER, WORKING_RW, install_host_unit, wait_gateway
from tests.harness.net import port_is_open, token_status, wait_until
from tests.harness.nspawn import Machine, boot, python_binds
from tests.harness.prereq import missing_prerequisite
from tests.harness.releases import Release, cache_dir, release
from tests.harness.risk import accept_open_dms

RELEASE = "2026.9.6"
BOT = "123456789:AAFakeDefaultFakeDefaultFakeDefault01"
OPS_BOT = "223456789:AAFakeOpsFakeOpsFakeOpsFakeOpsFakeOp02"
CHANNELS = {"channels": {"telegram": {"enabled": False, "botToken": BOT, "dmPolicy": "open", "allowFrom": ["*"],
                                      "accounts": {"ops": {"botToken": OPS_BOT, "dmPolicy": "pairing"}}}}}


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    reason = nspawn.missing() or release(RELEASE).missing()
    if reason:
        missing_prerequisite(reason)
    m = boot(tmp_path / "machine", binds=[tmp_path], ro_binds=[cache_dir(), *python_binds()], name="moltir-sys")
    try:
        yield m
    finally:
        m.halt()


@pytest.fixture
def egress() -> Iterator[FakeTelegram]:
    proxy = FakeTelegram().start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _moltir(m: Machine, tmp_path: Path, *args: str) -> tuple[int, dict[str, object], str]:
    env = {"MOLTIR_HOME": str(tmp_path / "moltir-home"), "NO_COLOR": "1"}
    proc = m.run([sys.executable, "-m", "moltir", *args, "--json"], env=env, timeout=600)
    try:
        data = moltir_json(proc.stdout)
    except ValueError:
        data = {}
    return proc.returncode, data, proc.stdout + proc.stderr


def _config(m: Machine) -> dict[str, object]:
    data = json.loads(m.read_file(f"{OC_HOME}/.openclaw/openclaw.json"))
    assert isinstance(data, dict)
    return data


def test_sudo_contain_and_restore_a_system_unit(machine: Machine, egress: FakeTelegram, tmp_path: Path) -> None:
    m = machine
    rel: Release = release(RELEASE)
    port, old = install_host_unit(m, rel, egress.url, WORKING_RW, extra_config=CHANNELS)
    m.systemctl("enable", "--now", HOST_UNIT, check=True)
    wait_gateway(m, HOST_UNIT, port, old)
    cfg_path = f"{OC_HOME}/.openclaw/openclaw.json"
    before_stat = m.run(["stat", "-c", "%U:%G %a", cfg_path], check=True).stdout.strip()
    assert before_stat == f"{OC_USER}:{OC_USER} 600"

    # ---- contain, as root, no selector, no keyring -----------------------------------------------
    rc, result, out = _moltir(m, tmp_path, "contain", "--yes", "--reason", "system unit test")
    assert rc == 0, out
    assert f"acting on the install of the system unit {HOST_UNIT}" in out
    steps = {s["id"]: s for s in result["steps"]}  # type: ignore[index, union-attr]
    service = steps["stop-gateway"]["details"]["service"]
    assert service["name"] == HOST_UNIT and service["disabled"] is True
    assert any("system install" in w for w in steps["rotate-token"]["warnings"]), steps["rotate-token"]
    show = m.show(HOST_UNIT, "ActiveState", "UnitFileState")
    # disabled; a runtime mask too where systemd takes one (not for a unit file in /etc, which outranks
    # /run: then the step says so and the record says it was not masked)
    assert show["ActiveState"] in ("inactive", "failed")
    assert show["UnitFileState"] == ("masked-runtime" if service["masked"] else "disabled"), (show, service)
    deadline = time.monotonic() + 30   # Restart=always, RestartSec=10: still down 30 s later, port closed
    while time.monotonic() < deadline:
        assert m.show(HOST_UNIT, "ActiveState")["ActiveState"] in ("inactive", "failed")
        assert not port_is_open(port)
        time.sleep(1)
    contained = _config(m)
    tg = contained["channels"]["telegram"]  # type: ignore[index]
    assert tg["dmPolicy"] == "disabled" and tg["accounts"]["ops"]["dmPolicy"] == "disabled"  # type: ignore[index]
    new = contained["gateway"]["auth"]["token"]  # type: ignore[index]
    assert isinstance(new, str) and new != old   # plaintext in the user's 0600 config (no keyring route)
    assert m.run(["stat", "-c", "%U:%G %a", cfg_path], check=True).stdout.strip() == before_stat
    case = Path(str(result["case_dir"]))
    private = list((case / "volatile" / "private-tmp" / "openclaw").glob("openclaw-*.log"))
    assert private and private[0].stat().st_size > 0, list(case.rglob("*"))
    assert (case / "evidence" / "journald" / f"system-{HOST_UNIT}.json").stat().st_size > 0
    assert "ExecStart=" in (case / "volatile" / f"unit-{HOST_UNIT}.txt").read_text()
    manifest = json.loads((case / "manifest.json").read_text())
    assert any(f["path"].endswith(f"system-{HOST_UNIT}.json") and f.get("last_cursor")
               for f in manifest["files"]), "unit journal with its cursor in the manifest"
    assert old not in out and new not in out
    verify = m.run([sys.executable, "-m", "moltir", "evidence", "verify", str(case)],
                   env={"MOLTIR_HOME": str(tmp_path / "moltir-home")}, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # ---- restore ---------------------------------------------------------------------------------
    rc, result, out = _moltir(m, tmp_path, "restore", "--yes", *accept_open_dms(RELEASE))
    assert rc == 0, out
    wait_until(lambda: token_status(port, new) == 400, 180, what="the unit back on the new token")
    show = m.show(HOST_UNIT, "ActiveState", "UnitFileState", "User")
    assert (show["ActiveState"], show["UnitFileState"], show["User"]) == ("active", "enabled", OC_USER)
    assert token_status(port, old) == 401
    restored = _config(m)
    tg = restored["channels"]["telegram"]  # type: ignore[index]
    assert tg["dmPolicy"] == "open" and tg["accounts"]["ops"]["dmPolicy"] == "pairing"  # type: ignore[index]
    assert m.run(["stat", "-c", "%U:%G %a", cfg_path], check=True).stdout.strip() == before_stat
    leftovers = m.run(["find", f"{OC_HOME}/.openclaw", "-not", "-user", OC_USER], check=True).stdout.split()
    assert leftovers == [], f"files root left in the user's state dir: {leftovers}"
    assert egress.refused == []


def test_a_system_unit_gateway_without_root_is_one_line_naming_the_unit_and_sudo(machine: Machine,
                                                                                egress: FakeTelegram,
                                                                                tmp_path: Path) -> None:
    m = machine
    port, token = install_host_unit(m, release(RELEASE), egress.url, WORKING_RW)
    m.systemctl("start", HOST_UNIT, check=True)
    wait_gateway(m, HOST_UNIT, port, token)
    # the container's own folders above the bound interpreter (e.g. /root of a pyenv python) are 0700:
    # let the openclaw user reach this interpreter, as a user-installed moltir would be reachable
    for bound in python_binds():
        parents = [p for p in bound.parents if p != Path("/")]
        m.run(["chmod", "o+x", *map(str, parents)], check=False)
    proc = m.run([sys.executable, "-m", "moltir", "contain", "--yes"], user=OC_USER, timeout=300,
                 env={"MOLTIR_HOME": f"{OC_HOME}/.moltir-test",
                      "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("moltir:")]
    assert any(HOST_UNIT in ln and "sudo moltir contain" in ln for ln in lines), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert token_status(port, token) == 400   # nothing signalled: still up
