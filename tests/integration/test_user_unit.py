"""``moltir contain`` / ``restore`` of a gateway run by a systemd USER unit, through a real user manager.

The unit is the one OpenClaw 2026.9.6 writes itself: ``openclaw gateway install`` run as alice in a
systemd-nspawn machine booted from this host's /usr (tests/harness/nspawn.py), enabled and started in
alice's user manager (linger on: ``user@UID.service``), ``Restart=always``. moltir runs INSIDE as alice,
with the XDG_RUNTIME_DIR and session bus of that manager, like a user who logs in over ssh:

* her keyring is a real gnome-keyring on her session bus (``$XDG_RUNTIME_DIR/bus``, dbus-user-session),
  unlocked with a password at start, run as a transient unit of her manager: the same bus the manager
  hands the gateway (``DBUS_SESSION_BUS_ADDRESS`` in its environment), so moltir's token goes where the
  gateway's exec SecretRef helper reads it;
* the journal is persistent (/var/log/journal, Debian's default): a user reads her user units' journal
  in her own ``user-UID.journal``; in the container's volatile-only journal ``journalctl --user`` shows
  her nothing.

contain stops the unit through the user manager so it stays down (disabled; the runtime mask takes no
effect for a unit file in ~/.config/systemd/user, which outranks /run: moltir says so), the port stays
closed 30 s later although the unit has Restart=always, the DMs are off in her config with owner and mode
kept, the token is rotated (2026.9.6: into the keyring, the config holding moltir's exec SecretRef), and
the unit's journal is in the sealed evidence. restore re-enables and starts the unit through the user
manager; the new token is accepted, the old one refused, the DM policies are back exactly.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.harness import nspawn
from tests.harness.envelope import moltir_json
from tests.harness.faketg import FakeTelegram
from tests.harness.home import egress_env
from tests.harness.hostunit import CLI_UNIT, gateway_config, wait_gateway
from tests.harness.net import free_port, port_is_open, token_status, wait_until
from tests.harness.nspawn import REPO, Machine, NspawnError, boot, python_binds
from tests.harness.prereq import missing_prerequisite
from tests.harness.releases import Release, cache_dir, release
from tests.harness.risk import accept_open_dms

RELEASE = "2026.9.6"
USER = "alice"
BOT = "123456789:AAFakeDefaultFakeDefaultFakeDefault01"
OPS_BOT = "223456789:AAFakeOpsFakeOpsFakeOpsFakeOpsFakeOp02"
EXTRA_CONFIG = {
    # 2026.9.6 fetches a hosted model catalog at start with its own DNS (past the egress guard): off
    "models": {"catalogRefresh": {"enabled": False}},
    "channels": {"telegram": {"enabled": False, "botToken": BOT, "dmPolicy": "open", "allowFrom": ["*"],
                              "accounts": {"ops": {"botToken": OPS_BOT, "dmPolicy": "pairing"}}}},
}
KEYRING_UNIT = "moltir-test-keyring.service"
STAY_DOWN_S = 30.0          # Restart=always, RestartSec=5: six restart periods


# ---- this checkout inside the machine -----------------------------------------------------------
def checkout_binds() -> list[str]:
    """nspawn arguments that make the interpreter inside import THIS checkout's moltir, whichever way it
    is started: the venv's editable install points at one checkout's src/ (``python -I``, as moltir's
    secret helper runs, ignores PYTHONPATH). When the checkout running this test is another one (a git
    worktree), its src/ is bound read-only over the editable install's."""
    found = subprocess.run([sys.executable, "-I", "-c", "import moltir, pathlib; "
                            "print(pathlib.Path(moltir.__file__).resolve().parent.parent)"],
                           capture_output=True, text=True, check=False, cwd="/")
    if found.returncode != 0:
        raise RuntimeError(f"moltir is not installed in {sys.executable}: {found.stderr.strip()}")
    editable = Path(found.stdout.strip())
    if editable == REPO / "src":
        return []
    return [f"--bind-ro={REPO / 'src'}:{editable}"]  # the shipped runbooks are inside src/moltir


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def oc_release() -> Release:
    reason = nspawn.missing() or release(RELEASE).missing()
    if reason:
        missing_prerequisite(reason)
    return release(RELEASE)


@pytest.fixture
def machine(oc_release: Release, tmp_path: Path) -> Iterator[Machine]:
    m = boot(tmp_path / "machine", ro_binds=[cache_dir(), *python_binds()], name="moltir-user",
             extra_args=checkout_binds())
    print(f"\n{m.name}: booted in {m.boot_s:.2f}s ({m.system_state})")
    try:
        yield m
    finally:
        print(f"{m.name}: halted in {m.halt():.2f}s")     # raises when a process of it survived


@pytest.fixture
def egress() -> Iterator[FakeTelegram]:
    """The egress guard the gateway inside uses as HTTP(S) proxy; it lives on the host's loopback."""
    proxy = FakeTelegram().start()
    try:
        yield proxy
    finally:
        proxy.stop()


# ---- the machine's user --------------------------------------------------------------------------
def persistent_journal(m: Machine) -> None:
    """/var/log/journal, as Debian creates it: journald moves to it and keeps each user's entries in a
    ``user-UID.journal`` she may read (the volatile journal is root's and systemd-journal's only)."""
    m.run(["mkdir", "-p", "/var/log/journal"], check=True)
    m.run(["systemd-tmpfiles", "--create", "--prefix", "/var/log/journal"], check=True)
    m.run(["journalctl", "--flush"], check=True, timeout=60)


def reachable_interpreter(m: Machine) -> None:
    """The container's own folders above the bound interpreter (e.g. /root of a pyenv python) are 0700:
    let alice reach this interpreter, as a user-installed moltir would be reachable."""
    for bound in python_binds():
        parents = [p for p in bound.parents if p != Path("/")]
        m.run(["chmod", "o+x", *map(str, parents)], check=False)


def start_keyring(m: Machine, user: str) -> None:
    """gnome-keyring-daemon (secrets) on the user's session bus, as a transient unit of her manager; its
    login keyring is created and unlocked with a password from a 0600 file (stdin), before anything else
    asks for org.freedesktop.secrets (dbus would activate a locked daemon that cannot create one)."""
    info = m.user(user)
    runtime = f"/run/user/{info.uid}"
    password_file = f"{info.home}/.moltir-test-keyring-password"
    m.write_file(password_file, f"keyring-{secrets.token_hex(8)}", 0o600, owner=user)
    m.run(["systemd-run", "--user", "--quiet", f"--unit={KEYRING_UNIT}", "--collect",
           f"--property=StandardInput=file:{password_file}", "--",
           "/usr/bin/gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
           f"--control-directory={runtime}/moltir-test-keyring"], user=user, check=True)

    def owned() -> bool:
        if m.show(KEYRING_UNIT, "ActiveState", user=user).get("ActiveState") in ("failed", "inactive"):
            raise NspawnError(f"{KEYRING_UNIT} exited:\n{m.journal(KEYRING_UNIT, user=user, lines=20)}")
        has = m.run(["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                     "org.freedesktop.DBus", "NameHasOwner", "s", "org.freedesktop.secrets"], user=user)
        return has.stdout.strip() == "b true"

    wait_until(owned, 30, interval=0.2, what=f"org.freedesktop.secrets on {user}'s session bus")


def install_user_unit(m: Machine, rel: Release, proxy_url: str, user: str) -> tuple[int, str]:
    """Alice's config, then the real ``openclaw gateway install`` (it writes, enables and starts the
    user unit). The egress guard goes into her manager's environment, which the unit inherits (a drop-in
    written first makes the install fail: "Managed service artifacts changed during publication")."""
    info = m.user(user)
    port, token = free_port(), f"test-token-{secrets.token_hex(20)}"
    config = json.dumps({**json.loads(gateway_config(port, token)), **EXTRA_CONFIG}, indent=2) + "\n"
    m.write_file(f"{info.home}/.openclaw/openclaw.json", config, 0o600, owner=user)
    m.systemctl_user(user, "set-environment", *(f"{k}={v}" for k, v in egress_env(proxy_url).items()), check=True)
    env = {"PATH": rel.path_env("/usr/local/bin:/usr/bin:/bin"), **egress_env(proxy_url)}
    proc = m.run(["openclaw", "gateway", "install", "--json"], user=user, env=env, timeout=300)
    assert proc.returncode == 0, f"gateway install exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(proc.stdout)
    assert (result["ok"], result["result"], result["service"]["label"]) == (True, "installed", "systemd")
    return port, token


# ---- moltir inside, as alice ---------------------------------------------------------------------
def moltir(m: Machine, rel: Release, proxy_url: str, *args: str) -> tuple[int, dict[str, Any], str, float]:
    """``python -m moltir ARGS --json`` inside as alice (her XDG_RUNTIME_DIR and session bus, her default
    moltir home ~/.local/state/moltir). Returns (rc, JSON result, stdout + stderr, seconds)."""
    env = {"PATH": rel.path_env("/usr/local/bin:/usr/bin:/bin"), **egress_env(proxy_url)}
    t0 = time.monotonic()
    proc = m.run([sys.executable, "-m", "moltir", *args, "--json"], user=USER, env=env, timeout=900)
    took = time.monotonic() - t0
    try:
        data = moltir_json(proc.stdout)
    except ValueError:
        data = {}
    return proc.returncode, data if isinstance(data, dict) else {}, proc.stdout + proc.stderr, took


def read_config(m: Machine, path: str) -> dict[str, Any]:
    data = json.loads(m.read_file(path, user=USER))
    assert isinstance(data, dict)
    return data


def stat_line(m: Machine, path: str) -> str:
    return m.run(["stat", "-c", "%U:%G %a", path], check=True).stdout.strip()


def keyring_token(m: Machine, backend: str, entry: str) -> str:
    """The value of moltir's keyring entry, read as alice through the backend pinned in her config."""
    script = ("import importlib, sys\n"
              "module, _, cls = sys.argv[1].rpartition('.')\n"
              "kr = getattr(importlib.import_module(module), cls)()\n"
              "print(kr.get_password('moltir', sys.argv[2]) or '')\n")
    proc = m.run([sys.executable, "-c", script, backend, entry], user=USER, check=True)
    return proc.stdout.strip()


def gateway_token(m: Machine, config: dict[str, Any]) -> tuple[str, str]:
    """(token, where) the gateway is configured with: plaintext in the config, or moltir's exec
    SecretRef resolved in the keyring it pins."""
    token = config["gateway"]["auth"]["token"]
    if isinstance(token, str):
        return token, "config"
    assert token["source"] == "exec" and token["provider"] == "moltir", token
    args = config["secrets"]["providers"]["moltir"]["args"]
    backend = args[args.index("--backend") + 1]
    return keyring_token(m, backend, token["id"]), f"keyring ({backend})"


def journal_entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- the test ---------------------------------------------------------------------------------
def test_contain_and_restore_a_user_unit_through_the_user_manager(machine: Machine, oc_release: Release,
                                                                  egress: FakeTelegram) -> None:
    m, t_start = machine, time.monotonic()
    persistent_journal(m)
    reachable_interpreter(m)
    alice = m.add_user(USER)
    start_keyring(m, USER)
    port, old = install_user_unit(m, oc_release, egress.url, USER)
    unit_path = f"{alice.home}/.config/systemd/user/{CLI_UNIT}"
    unit_text = m.read_file(unit_path)
    assert "Restart=always" in unit_text and f"--port {port}" in unit_text and old not in unit_text
    wait_gateway(m, CLI_UNIT, port, old, user=USER)
    setup_s = time.monotonic() - t_start
    before = m.show(CLI_UNIT, "ActiveState", "UnitFileState", "ControlGroup", "MainPID", user=USER)
    assert (before["ActiveState"], before["UnitFileState"]) == ("active", "enabled")
    assert before["ControlGroup"].endswith(f"/user@{alice.uid}.service/app.slice/{CLI_UNIT}")
    cfg_path = f"{alice.home}/.openclaw/openclaw.json"
    cfg_stat = stat_line(m, cfg_path)
    assert cfg_stat == f"{USER}:{USER} 600"
    config_before = read_config(m, cfg_path)
    tg_before = config_before["channels"]["telegram"]
    runtime_mask = f"/run/user/{alice.uid}/systemd/user/{CLI_UNIT}"

    # ---- contain, inside, as alice ---------------------------------------------------------------
    rc, result, out, contain_s = moltir(m, oc_release, egress.url, "contain", "--yes", "--reason", "user unit test")
    assert rc == 0, out
    steps = {s["id"]: s for s in result["steps"]}
    assert all(s["status"] in ("done", "forced") for s in steps.values()), {k: s["status"] for k, s in steps.items()}
    service = steps["stop-gateway"]["details"]["service"]
    assert (service["manager"], service["name"], service["disabled"]) == ("systemd", CLI_UNIT, True), service
    assert "systemctl --user disable " + CLI_UNIT in service["commands"], service
    case_dir = str(result["case_dir"])
    assert case_dir.startswith(f"{alice.home}/.local/state/moltir/cases/"), case_dir
    case = m.host_path(case_dir)
    recorded = json.loads((case / "restore.json").read_text())["gateway"]
    rec_service = recorded["service"]
    assert (rec_service["scope"], rec_service["name"], rec_service["path"]) == ("user", CLI_UNIT, unit_path)
    assert (rec_service["was_enabled"], rec_service["disabled"], recorded["uid"]) == (True, True, alice.uid)
    # The runtime mask (/run/user/UID/systemd/user) is outranked by the unit file in ~/.config/systemd/user:
    # moltir undoes it and says so. restore.json keeps "masked": true, what the stop set out to do (recorded
    # before it, so that a crash after a mask that took is still undone by restore); the unit is disabled.
    assert (service["masked"], rec_service["masked"]) == (False, True), (service, rec_service)
    assert any("runtime mask" in w and "takes no effect" in w for w in steps["stop-gateway"]["warnings"]), steps
    is_enabled = m.run(["systemctl", "--user", "is-enabled", CLI_UNIT], user=USER).stdout.strip()
    assert is_enabled == "disabled", (is_enabled, service, rec_service)
    assert m.run(["test", "-L", runtime_mask]).returncode == 1, "the ineffective runtime mask was left behind"

    # Stopped, and stays stopped: Restart=always (RestartSec=5) must not bring it back, the port stays shut.
    t_down = time.monotonic()
    while time.monotonic() - t_down < STAY_DOWN_S:
        st = m.show(CLI_UNIT, "ActiveState", "SubState", "MainPID", user=USER)
        assert (st["ActiveState"], st["SubState"], st["MainPID"]) == ("inactive", "dead", "0"), st
        assert not port_is_open(port), f"port {port} open again {time.monotonic() - t_down:.1f}s after contain"
        time.sleep(1)
    assert m.run(["systemctl", "--user", "is-enabled", CLI_UNIT], user=USER).stdout.strip() == "disabled"

    # DMs off in alice's config, owner and mode kept; the token rotated where moltir says.
    contained = read_config(m, cfg_path)
    tg = contained["channels"]["telegram"]
    assert tg["dmPolicy"] == "disabled" and tg["accounts"]["ops"]["dmPolicy"] == "disabled", tg
    assert stat_line(m, cfg_path) == cfg_stat
    rotate = steps["rotate-token"]["details"]
    new, where = gateway_token(m, contained)
    assert new and new != old
    assert where == ("config" if rotate["mode"] == "plaintext" else f"keyring ({rotate['backend']})"), (where, rotate)
    assert rotate["mode"] == "keyring-ref" and rotate["backend"] == "keyring.backends.SecretService.Keyring", rotate
    # the gateway is down: its helper was proved in the environment the user manager will start it with
    assert rotate["boot_check"]["ok"] and rotate["boot_check"]["source"] == f"systemd user manager ({CLI_UNIT})", \
        rotate["boot_check"]
    assert old not in out and new not in out

    # The unit's journal (journalctl --user -u) is in the sealed evidence, with its cursor; the unit file too.
    rel = f"evidence/journald/{CLI_UNIT}.json"
    manifest = json.loads((case / "manifest.json").read_text())
    listed = [f for f in manifest["files"] if f["path"] == rel]
    assert listed and listed[0]["source"] == f"journalctl --user -u {CLI_UNIT} -o json", listed
    assert listed[0].get("last_cursor") and listed[0]["sha256"], listed
    assert rel in (case / "SHA256SUMS").read_text()
    entries = journal_entries(case / rel)
    gateway_lines = [e for e in entries if e.get("_SYSTEMD_USER_UNIT") == CLI_UNIT and e.get("_UID") == str(alice.uid)]
    assert any("http server listening" in str(e.get("MESSAGE")) for e in gateway_lines), entries[-5:]
    assert any(e.get("USER_UNIT") == CLI_UNIT and str(e.get("MESSAGE", "")).startswith("Stopped ")
               for e in entries), "the stop through the user manager is in the unit's journal"
    assert "ExecStart=" in (case / f"volatile/unit-{CLI_UNIT}.txt").read_text()
    verify = m.run([sys.executable, "-m", "moltir", "evidence", "verify", case_dir], user=USER, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # ---- restore, inside, as alice ---------------------------------------------------------------
    rc, result, out, restore_s = moltir(m, oc_release, egress.url, "restore", "--yes",
                                       *accept_open_dms(oc_release.id))
    assert rc == 0, out
    assert {s["id"]: s["status"] for s in result["steps"]} == {
        "restore-dms": "done", "restore-pause": "skipped", "start-gateway": "done", "verify-token": "done",
        "final-audit": "done"}, out
    wait_until(lambda: token_status(port, new) == 400, 180, interval=0.3, what="the unit back on the new token")
    after = m.show(CLI_UNIT, "ActiveState", "UnitFileState", "ControlGroup", "MainPID", user=USER)
    assert (after["ActiveState"], after["UnitFileState"]) == ("active", "enabled"), after
    assert after["ControlGroup"] == before["ControlGroup"]
    assert m.run(["systemctl", "--user", "is-enabled", CLI_UNIT], user=USER).stdout.strip() == "enabled"
    host_pid = m.host_pid(int(after["MainPID"]))
    assert host_pid is not None and psutil.Process(host_pid).uids().real == alice.uid
    assert token_status(port, old) == 401
    assert gateway_token(m, read_config(m, cfg_path)) == (new, where)
    config_after = read_config(m, cfg_path)
    restored = config_after["channels"]["telegram"]
    assert restored == tg_before, restored
    assert (restored["dmPolicy"], restored["accounts"]["ops"]["dmPolicy"]) == ("open", "pairing")
    # nothing else of her config changed but the token (now moltir's SecretRef) and moltir's provider
    assert config_after["gateway"]["auth"]["mode"] == "token"
    for cfg in (config_before, config_after):
        cfg["gateway"]["auth"].pop("token")
    assert {k: v for k, v in config_after.items() if k != "secrets"} == config_before
    assert m.read_file(unit_path) == unit_text, "the unit file OpenClaw wrote was changed"
    assert m.run(["test", "-L", runtime_mask]).returncode == 1
    assert stat_line(m, cfg_path) == cfg_stat
    assert egress.refused == []
    print(f"setup (user, keyring, gateway install, ready) {setup_s:.1f}s; contain {contain_s:.1f}s; "
          f"stayed down {STAY_DOWN_S:.0f}s; restore {restore_s:.1f}s; total {time.monotonic() - t_start:.1f}s")
